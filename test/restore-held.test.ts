/**
 * Inputs held in memory from pass 1 to the send passes (src/restore/held.ts):
 * a plain file within the budget is read once and its batches are cut out of
 * the checked bytes; anything else is read again per pass and trusted by
 * CRC. Both must send exactly the same requests.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { sha256 } from "../src/identity/crypto.ts";
import { forEachLine, forEachLineIn } from "../src/events/lines.ts";
import { holdInput } from "../src/restore/held.ts";
import { importUrl, type FetchLike } from "../src/restore/import.ts";
import { restoreEvents, type InvalidLine, type RestoreHooks, type RestoreOptions, type RestoreSummary } from "../src/restore/restore.ts";
import { generateEvents, generateNaras, makeNara } from "./sim/generate.ts";
import { rawEventsOf, startPeer, type SimPeer } from "./sim/peer.ts";

const dir = mkdtempSync(join(tmpdir(), "restore-held-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const naras = generateNaras(4, 47);
const events = generateEvents({ naras, count: 1500, seed: 47, heyThereFirst: false });

let fileNo = 0;
function write(bytes: string | Uint8Array, ext = "jsonl"): string {
  const path = join(dir, `backup-${++fileNo}.${ext}`);
  writeFileSync(path, bytes);
  return path;
}

let naraNo = 0;
const freshNara = (): SimPeer => startPeer({ nara: makeNara(`held-${++naraNo}`, sha256(`held:${naraNo}`)) });

type Run = { s: RestoreSummary; bodies: string[][]; invalid: InvalidLine[] };

/** A restore into a fresh nara, with every request's events in order. */
async function run(opts: Partial<RestoreOptions>, hooks: RestoreHooks = {}): Promise<Run> {
  const target = freshNara();
  const bodies: string[][] = [];
  const invalid: InvalidLine[] = [];
  const spy: FetchLike = async (url, init) => {
    bodies.push(rawEventsOf(new TextDecoder().decode(init.body as Uint8Array)) ?? []);
    return fetch(url, init);
  };
  try {
    const s = await restoreEvents(
      {
        inputs: [],
        url: importUrl(target.url),
        signer: { identity: target.identity, bondChecked: true, source: "env" },
        batchSize: 128,
        timeoutMs: 10_000,
        retries: 3,
        sleep: async () => {},
        fetch: spy,
        ...opts,
      },
      { ...hooks, onInvalid: (b) => invalid.push(b) },
    );
    return { s, bodies, invalid };
  } finally {
    await target.stop();
  }
}

const counts = (s: RestoreSummary) => {
  const { lines, valid, invalid, duplicatesInInput, unique, filtered, skipped, toSend, sent, imported, batches, services } = s;
  return { lines, valid, invalid, duplicatesInInput, unique, filtered, skipped, toSend, sent, imported, batches, services };
};

/** Lines that take every branch of pass 1: BOM, CRLF, blank and blank-looking lines, invalid, repeated, not plain, too long. */
function trickyLines(): string[] {
  const signed = events.find((e) => e.signed && e.svc !== "hey-there")!;
  const unsigned = signed.raw.replace(/,"emitter":"[^"]*"/, "").replace(/,"emitter_id":"[^"]*"/, "").replace(/,"sig":"[^"]*"/, "");
  const lines = events.filter((e) => e !== signed).map((e) => e.raw);
  lines[0] = `\uFEFF${lines[0]}`;
  lines.splice(3, 0, unsigned);
  lines.splice(10, 0, "", "  \t", "not json");
  lines[20] = `${lines[20]}\r`;
  // An escaped key: valid for a Go peer, but not plain (validated again when sent).
  lines[30] = lines[30]!.replace('"ts":', '"\\u0074s":');
  lines.splice(700, 0, `{"id":"${"a".repeat(5000)}"}`); // over the line cap below
  // IDs that are not plain ASCII: escaped (sent by the decoded ID) and UTF-8 (by their bytes).
  lines.splice(800, 0, '{"id":"\\u0041bc-escaped","ts":5,"svc":"zine"}', '{"id":"\u00e9t\u00e9-\u96ea","ts":6,"svc":"zine"}');
  lines.push(signed.raw, lines[5]!);
  return lines;
}

describe("held inputs", () => {
  test("held, read again, over the budget and compressed: the same requests, byte for byte", async () => {
    const text = `${trickyLines().join("\n")}\n`;
    const plain = write(text);
    const gz = write(Bun.gzipSync(Buffer.from(text)), "jsonl.gz");
    const common = { skipInvalid: true, maxLineBytes: 4096, skip: 20 };
    const held = await run({ inputs: [plain], ...common });
    expect(held.s.exitCode).toBe(ExitCode.ok);
    expect(held.invalid.map((b) => b.line)).toEqual([13, 701]);
    expect(held.s.duplicatesInInput).toBe(2);
    expect(held.bodies.length).toBe(Math.ceil((events.length - 20) / 128));
    for (const other of [
      await run({ inputs: [plain], ...common, holdBytes: 0 }),
      await run({ inputs: [plain], ...common, holdBytes: Buffer.byteLength(text) - 1 }), // just over the budget
      await run({ inputs: [gz], ...common }),
    ]) {
      expect(counts(other.s)).toEqual(counts(held.s));
      expect(other.invalid.map(({ line, reason }) => ({ line, reason }))).toEqual(held.invalid.map(({ line, reason }) => ({ line, reason })));
      expect(other.bodies).toEqual(held.bodies);
    }
    // Hey-there events first, then the rest in file order.
    const sent = held.bodies.flat();
    expect(sent).toContain('{"id":"\\u0041bc-escaped","ts":5,"svc":"zine"}');
    expect(sent).toContain('{"id":"\u00e9t\u00e9-\u96ea","ts":6,"svc":"zine"}');
    const hey = sent.filter((r) => r.includes('"svc":"hey-there"')).length;
    expect(sent.slice(0, hey).every((r) => r.includes('"svc":"hey-there"'))).toBe(true);
    expect(hey).toBeGreaterThan(0);
  });

  test("several inputs, the budget holding only the first: none held, the same requests as with both held", async () => {
    const half = events.length >> 1;
    const a = write(`${events.slice(0, half).map((e) => e.raw).join("\n")}\n`);
    const b = write(`${events.slice(half - 50).map((e) => e.raw).join("\n")}`); // overlapping, no final newline
    const both = await run({ inputs: [a, b] });
    const onlyFirstFits = { inputs: [a, b], holdBytes: Bun.file(a).size + 10 };
    const first = await run(onlyFirstFits);
    expect(both.s.exitCode).toBe(ExitCode.ok);
    expect(both.s.imported).toBe(events.length);
    expect(both.s.duplicatesInInput).toBe(50);
    expect(counts(first.s)).toEqual(counts(both.s));
    expect(first.bodies).toEqual(both.bodies);
    // Not held: a line of the first input changed after pass 1 is caught when it is read again.
    const original = await Bun.file(a).text();
    const changeFirst = () => writeFileSync(a, original.replace(events[100]!.raw, events[100]!.raw.replace(/"ts":(\d)/, '"ts":9')));
    await expect(run(onlyFirstFits, { onPlan: changeFirst })).rejects.toThrow(/\.jsonl:101 changed while restoring/);
    writeFileSync(a, original);
    const held = await run({ inputs: [a, b] }, { onPlan: changeFirst });
    expect(held.s.exitCode).toBe(ExitCode.ok);
    expect(held.bodies).toEqual(both.bodies);
  });

  test("hey-there lines of a compressed input: copied in pass 1 within their budget, else read again; the same requests", async () => {
    const lines = trickyLines();
    const text = `${lines.join("\n")}\n`;
    const plain = write(text);
    const gz = write(Bun.gzipSync(Buffer.from(text)), "jsonl.gz");
    const common = { skipInvalid: true, maxLineBytes: 4096, skip: 5 };
    const copied = await run({ inputs: [gz], ...common });
    expect(copied.s.exitCode).toBe(ExitCode.ok);
    // No room, or room for a few lines only (that input then keeps none); a plain file (read again: cheap).
    for (const other of [
      await run({ inputs: [gz], ...common, keepHeyThereBytes: 0 }),
      await run({ inputs: [gz], ...common, keepHeyThereBytes: 1000 }),
      await run({ inputs: [plain], ...common, holdBytes: 0 }),
    ]) {
      expect(counts(other.s)).toEqual(counts(copied.s));
      expect(other.bodies).toEqual(copied.bodies);
    }
    // Which run read the file again shows when a hey-there line changes after pass 1: a copy sends the checked bytes.
    const k = lines.findIndex((l, i) => i > 40 && l.includes('"svc":"hey-there"'));
    const changed = text.replace(lines[k]!, lines[k]!.replace(/"ts":(\d)/, '"ts":9'));
    const changeHey = (path: string, bytes: string | Uint8Array) => () => writeFileSync(path, bytes);
    const fromCopies = await run({ inputs: [gz], ...common }, { onPlan: changeHey(gz, Bun.gzipSync(Buffer.from(changed))) });
    expect(fromCopies.bodies).toEqual(copied.bodies);
    for (const [path, opts, bytes] of [
      [gz, { keepHeyThereBytes: 0 }, Bun.gzipSync(Buffer.from(changed))],
      [gz, { keepHeyThereBytes: 1000 }, Bun.gzipSync(Buffer.from(changed))],
      [plain, { holdBytes: 0 }, changed],
    ] as const) {
      writeFileSync(gz, Bun.gzipSync(Buffer.from(text)));
      writeFileSync(plain, text);
      await expect(run({ inputs: [path], ...common, ...opts }, { onPlan: changeHey(path, bytes) })).rejects.toThrow(`${path}:${k + 1} changed while restoring`);
    }
  });

  test("a held input sends the bytes it checked, even when the file changes after pass 1", async () => {
    const lines = events.map((e) => e.raw);
    const file = write(`${lines.join("\n")}\n`);
    const at = 900;
    const victim = lines[at]!;
    const k = victim.lastIndexOf('"') - 1;
    const changed = victim.slice(0, k) + (victim[k] === "a" ? "b" : "a") + victim.slice(k + 1);
    let offset = 0;
    for (let i = 0; i < at; i++) offset += Buffer.byteLength(lines[i]!) + 1;
    const r = await run({ inputs: [file] }, {
      onPlan() {
        const fd = openSync(file, "r+");
        writeSync(fd, Buffer.from(changed), 0, Buffer.byteLength(changed), offset);
        closeSync(fd);
      },
    });
    expect(r.s.exitCode).toBe(ExitCode.ok);
    const sent = r.bodies.flat();
    expect(sent).toContain(victim);
    expect(sent).not.toContain(changed);
    expect(sent.length).toBe(events.length);
  });

  test("holdInput: plain files within the budget only", () => {
    const text = `${events[0]!.raw}\n`;
    const plain = write(text);
    expect(Buffer.from(holdInput(plain, 1 << 20)!).toString()).toBe(text);
    expect(holdInput(plain, text.length)).toBeDefined();
    expect(holdInput(plain, text.length - 1)).toBeUndefined();
    expect(holdInput(write(Bun.gzipSync(Buffer.from(text)), "jsonl.gz"), 1 << 20)).toBeUndefined();
    expect(holdInput(join(dir, "missing.jsonl"), 1 << 20)).toBeUndefined();
    expect(holdInput(dir, 1 << 20)).toBeUndefined();
  });
});

async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const p of parts) yield p;
}

describe("forEachLineIn", () => {
  test("the lines forEachLine gives: numbers, blank lines, CR, the cap, a last line without newline", async () => {
    const text = 'a\n\n  \n{"x":1}\r\nlong-long-long\n\t\r\nb\r\nlast';
    const bytes = new TextEncoder().encode(text);
    const seen = (into: string[]) => ({
      visit: (buf: Uint8Array, s: number, e: number, n: number) => void into.push(`${n}:${Buffer.from(buf.subarray(s, e)).toString()}`),
      onLong: (n: number, len: number) => void into.push(`${n}:long ${len}`),
    });
    const streamed: string[] = [];
    const a = seen(streamed);
    const n1 = await forEachLine(chunks(bytes.subarray(0, 7), bytes.subarray(7)), a.visit, { maxLineBytes: 10, onLong: a.onLong });
    const held: string[] = [];
    const b = seen(held);
    const n2 = forEachLineIn(bytes, 0, bytes.length, b.visit, { maxLineBytes: 10, onLong: b.onLong });
    expect(held).toEqual(streamed);
    expect(n2).toBe(n1);
    expect(held).toEqual(["1:a", '4:{"x":1}', "5:long 14", "7:b", "8:last"]);
    // A range from the middle, numbered from firstLine.
    const from = text.indexOf("long");
    const part: string[] = [];
    const c = seen(part);
    expect(forEachLineIn(bytes, from, bytes.length, c.visit, { maxLineBytes: 10, onLong: c.onLong, firstLine: 5 })).toBe(4);
    expect(part).toEqual(["5:long 14", "7:b", "8:last"]);
  });
});
