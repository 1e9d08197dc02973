/**
 * The line cap (--max-line-bytes): every JSON Lines reader treats a longer
 * line as an invalid line, names it FILE:LINE with its real length, and goes
 * on at the next newline. Lines of a few hundred KiB against a small cap
 * prove it; the 150 MB case is in bench/long-line.ts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync, zstdCompressSync } from "node:zlib";
import { JsonlCursor, StreamSource, type InvalidLine } from "../src/backup/cursor.ts";
import { mergeBackups } from "../src/backup/merge.ts";
import { backupStats } from "../src/backup/stats.ts";
import { verifyBackups } from "../src/backup/verify.ts";
import { parseMaxLineBytes } from "../src/cli/args.ts";
import { readIds } from "../src/dump/dump.ts";
import { ExitCode, NaraError } from "../src/errors.ts";
import { DEFAULT_MAX_LINE_BYTES, forEachLine, formatLimit, longLineReason } from "../src/events/lines.ts";
import { encryptBytes } from "./helpers/encrypt.ts";
import { importUrl } from "../src/restore/import.ts";
import { restoreEvents, type InvalidLine as RestoreInvalid } from "../src/restore/restore.ts";
import { generateEvents, generateNaras, makeNara } from "./sim/generate.ts";
import { sha256 } from "../src/identity/crypto.ts";

const dir = mkdtempSync(join(tmpdir(), "nara-long-lines-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const file = (content: string | Uint8Array, ext = "jsonl"): string => {
  const path = join(dir, `in-${++seq}.${ext}`);
  writeFileSync(path, content);
  return path;
};

const CAP = 64 << 10;
/** 300 KiB: longer than CAP, longer than a 64 KiB stream chunk, shorter than the cursor's 1 MiB buffer. */
const LONG = 300 << 10;
const longLine = (n = LONG): string => `{"id":"${"a".repeat(n - 9)}"}`;

const naras = generateNaras(3, 13);
const events = generateEvents({ naras, count: 40, seed: 13 }).map((e) => e.raw);
/** Line 21 is the long one. */
const withLong = (last = false): string => {
  const lines = last ? [...events, longLine()] : [...events.slice(0, 20), longLine(), ...events.slice(20)];
  return lines.join("\n") + (last ? "" : "\n");
};
const expected = (line: number, n = LONG, cap = CAP) => `line of ${n} bytes, longer than any event (limit ${formatLimit(cap)})`;

/** An async source cutting `bytes` into chunks of `size`. */
async function* chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, Math.min(bytes.length, i + size));
}
const enc = (s: string) => new TextEncoder().encode(s);

describe("forEachLine", () => {
  const run = async (text: string, chunk: number, max: number) => {
    const seen: string[] = [];
    const long: [number, number][] = [];
    const total = await forEachLine(chunked(enc(text), chunk), (b, s, e, n) => void seen.push(`${n}:${new TextDecoder().decode(b.subarray(s, e))}`), {
      maxLineBytes: max,
      onLong: (n, bytes) => void long.push([n, bytes]),
    });
    return { seen, long, total };
  };

  // Chunk sizes: inside one chunk, across a few chunks, across many, and one byte at a time.
  for (const chunk of [1, 7, 16, 4096]) {
    test(`chunks of ${chunk}: a long line is counted whole and skipped, its neighbours kept`, async () => {
      const text = `aa\n${"x".repeat(50)}\nbb\r\n${"y".repeat(16)}\n${"z".repeat(17)}\ncc`;
      const r = await run(text, chunk, 16);
      expect(r.seen).toEqual(["1:aa", "3:bb", `4:${"y".repeat(16)}`, "6:cc"]);
      expect(r.long).toEqual([
        [2, 50],
        [5, 17],
      ]);
      expect(r.total).toBe(6);
    });
    test(`chunks of ${chunk}: a long last line without a newline`, async () => {
      const r = await run(`aa\n${"x".repeat(40)}`, chunk, 16);
      expect(r.seen).toEqual(["1:aa"]);
      expect(r.long).toEqual([[2, 40]]);
      expect(r.total).toBe(2);
    });
  }

  test("random chunkings of random lines give what a plain split gives (lines joined across chunks, long ones by length)", async () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
    for (let round = 0; round < 40; round++) {
      const lines = Array.from({ length: 1 + rand(30) }, () => (rand(5) === 0 ? "" : "q".repeat(rand(4) === 0 ? 20 + rand(60) : rand(20))));
      const text = lines.map((l, i) => l + (rand(6) === 0 ? "\r" : "")).join("\n") + (rand(2) ? "\n" : "");
      const parts = text.split("\n");
      if (parts.at(-1) === "") parts.pop();
      const max = 24;
      const want = { seen: [] as string[], long: [] as [number, number][] };
      parts.forEach((p, i) => {
        if (p.length > max) want.long.push([i + 1, p.length]);
        else if (p.replace(/\r$/, "").length > 0) want.seen.push(`${i + 1}:${p.replace(/\r$/, "")}`);
      });
      const r = await run(text, 1 + rand(40), max);
      expect({ seen: r.seen, long: r.long }).toEqual(want);
      expect(r.total).toBe(parts.length);
    }
  });

  test("the default cap is 1 MiB; a line of exactly the cap is a line", async () => {
    expect(DEFAULT_MAX_LINE_BYTES).toBe(1 << 20);
    const r = await run(`${"x".repeat(1 << 20)}\n${"y".repeat((1 << 20) + 1)}\n`, 65536, DEFAULT_MAX_LINE_BYTES);
    expect(r.seen.map((s) => s.length)).toEqual([2 + (1 << 20)]);
    expect(r.long).toEqual([[2, (1 << 20) + 1]]);
  });

  // Chunks larger than the cap (each alone is too long) and smaller (the line grows across them).
  for (const [chunkMiB, count] of [
    [8, 32],
    [0.5, 128],
  ] as const) {
    test(`a line of ${chunkMiB * count} MiB in chunks of ${chunkMiB} MiB streams past, never held`, async () => {
      // One reused chunk of "a"s: the source costs nothing, so what grows is what the reader holds.
      const piece = new Uint8Array(chunkMiB * (1 << 20)).fill(0x61);
      async function* source() {
        yield enc("first\n");
        for (let i = 0; i < count; i++) yield piece;
        yield enc("\nlast\n");
      }
      const before = process.memoryUsage.rss();
      let grown = -1;
      const seen: number[] = [];
      await forEachLine(source(), (_b, _s, _e, n) => void seen.push(n), {
        onLong: (n, bytes) => {
          grown = process.memoryUsage.rss() - before;
          seen.push(-n, bytes);
        },
      });
      expect(seen).toEqual([1, -2, piece.length * count, 3]);
      expect(grown).toBeLessThan(32 << 20);
    });
  }

  test("the message and the limit's name", () => {
    expect(longLineReason(157286400, 1 << 20)).toBe("line of 157286400 bytes, longer than any event (limit 1 MiB)");
    expect(formatLimit(512 << 10)).toBe("512 KiB");
    expect(formatLimit(1000)).toBe("1000 bytes");
  });
});

describe("--max-line-bytes", () => {
  test("sizes as the other size flags take them; the default is 1 MiB", () => {
    expect(parseMaxLineBytes({})).toBe(1 << 20);
    expect(parseMaxLineBytes({ "max-line-bytes": "512k" })).toBe(512 << 10);
    expect(parseMaxLineBytes({ "max-line-bytes": "2M" })).toBe(2 << 20);
    expect(parseMaxLineBytes({ "max-line-bytes": "4096" })).toBe(4096);
    expect(() => parseMaxLineBytes({ "max-line-bytes": "lots" })).toThrow(/--max-line-bytes: "lots" is not a size/);
  });
});

describe("JsonlCursor (merge's reader)", () => {
  const read = async (source: ConstructorParameters<typeof JsonlCursor>[0], bufferSize: number, skip = true) => {
    const bad: InvalidLine[] = [];
    const cur = new JsonlCursor(source, { origin: 0, name: "in", checkOrder: "note", onInvalid: (b) => (bad.push(b), skip), maxLineBytes: CAP }, bufferSize);
    const lines: number[] = [];
    while (await cur.advance()) lines.push(cur.head.line);
    await cur.close();
    return { bad, lines, cur };
  };
  const stream = (text: string, chunk: number) => {
    const it = chunked(enc(text), chunk)[Symbol.asyncIterator]();
    return new StreamSource(
      new ReadableStream<Uint8Array>({
        async pull(ctl) {
          const r = await it.next();
          if (r.done) ctl.close();
          else ctl.enqueue(r.value);
        },
      }),
    );
  };
  const want = [...Array(40).keys()].map((i) => (i < 20 ? i + 1 : i + 2));

  // A 4 KiB buffer: the long line starts in one fill and ends many fills later; 1 MiB: it lies inside one.
  for (const [bufferSize, chunk] of [
    [4096, 1000],
    [4096, 65536],
    [1 << 20, 65536],
  ] as const) {
    test(`buffer ${bufferSize}, chunks of ${chunk}: the long line is one invalid line, the others all events`, async () => {
      const r = await read(stream(withLong(), chunk), bufferSize);
      expect(r.lines).toEqual(want);
      expect(r.bad).toEqual([{ input: "in", line: 21, column: 0, reason: expected(21), bytes: LONG }]);
      expect(r.cur.invalid).toBe(1);
      expect(r.cur.lines).toBe(41);
    });
    test(`buffer ${bufferSize}, chunks of ${chunk}: a long last line without a newline`, async () => {
      const r = await read(stream(withLong(true), chunk), bufferSize);
      expect(r.lines).toEqual([...Array(40).keys()].map((i) => i + 1));
      expect(r.bad.map((b) => [b.line, b.bytes])).toEqual([[41, LONG]]);
    });
  }

  test("a 256 MiB line streams past: the buffer does not grow to hold it", async () => {
    const total = 256 << 20;
    let given = 0;
    const tail = Buffer.from(`\n${events[0]}\n`);
    // A source of "a"s written straight into the cursor's buffer: nothing is allocated but what the cursor asks for.
    const source = {
      read(into: Buffer, at: number, max: number): number {
        if (given >= total + tail.length) return 0;
        if (given < total) {
          const n = Math.min(max, total - given);
          into.fill(0x61, at, at + n);
          given += n;
          return n;
        }
        const n = Math.min(max, total + tail.length - given);
        tail.copy(into, at, given - total, given - total + n);
        given += n;
        return n;
      },
      close: async () => {},
    };
    const before = process.memoryUsage.rss();
    let grown = -1;
    const bad: InvalidLine[] = [];
    const cur = new JsonlCursor(source, {
      origin: 0,
      name: "in",
      checkOrder: "note",
      onInvalid: (b) => {
        grown = process.memoryUsage.rss() - before;
        return bad.push(b) > 0;
      },
    });
    const lines: number[] = [];
    while (await cur.advance()) lines.push(cur.head.line);
    expect(bad.map((b) => [b.line, b.bytes, b.reason])).toEqual([[1, total, "line of 268435456 bytes, longer than any event (limit 1 MiB)"]]);
    expect(lines).toEqual([2]);
    expect(grown).toBeLessThan(64 << 20);
  });

  test("refused (onInvalid false): a NaraError naming FILE:LINE", async () => {
    const err = await read(stream(withLong(), 65536), 4096, false).catch((e) => e);
    expect(err).toBeInstanceOf(NaraError);
    expect((err as NaraError).message).toBe(`in:21: ${expected(21)}`);
  });
});

// Every form an input can take: the cap is on the decoded bytes.
const seed = sha256("long-lines");
const forms: [string, (text: string) => string][] = [
  ["plain", (t) => file(t)],
  ["zstd", (t) => file(zstdCompressSync(Buffer.from(t)), "jsonl.zst")],
  ["gzip", (t) => file(gzipSync(Buffer.from(t)), "jsonl.gz")],
  ["encrypted", (t) => file(encryptBytes(seed, enc(t), { chunkLog2: 12 }), "jsonl.enc")],
  ["encrypted zstd", (t) => file(encryptBytes(seed, zstdCompressSync(Buffer.from(t)), { chunkLog2: 12 }), "jsonl.zst.enc")],
];
const soul = () => ({ seed });

describe.each(forms)("%s input", (_form, make) => {
  test("verify: a malformed line, named with its length", async () => {
    const r = await verifyBackups({ inputs: [make(withLong())], threads: 0, soul, maxLineBytes: CAP });
    expect(r.malformed).toBe(1);
    expect(r.total.events).toBe(40);
    expect(r.ok).toBe(false);
    const it = r.issues.find((i) => i.kind === "malformed")!;
    expect([it.line, it.message, it.error]).toEqual([21, expected(21), true]);
    expect(r.files[0]!.lines).toBe(41);
  });

  test("stats: left out, named", async () => {
    const r = await backupStats({ inputs: [make(withLong(true))], soul, maxLineBytes: CAP });
    expect(r.events).toBe(40);
    expect(r.malformed).toBe(1);
    expect(r.malformedLines).toEqual([{ file: expect.any(String), line: 41, reason: expected(41), bytes: LONG }]);
  });

  test("merge: stops, or leaves it out with --skip-invalid", async () => {
    const input = make(withLong());
    const err = await mergeBackups({ inputs: [input], output: join(dir, `m-${++seq}.jsonl`), soul, maxLineBytes: CAP }).catch((e) => e);
    expect(err).toBeInstanceOf(NaraError);
    expect((err as NaraError).message).toEndWith(`:21: ${expected(21)}`);
    const warnings: string[] = [];
    const out = join(dir, `m-${++seq}.jsonl`);
    const s = await mergeBackups({ inputs: [input], output: out, soul, maxLineBytes: CAP, skipInvalid: true }, { onWarn: (m) => warnings.push(m) });
    expect([s.written, s.invalid]).toEqual([40, 1]);
    expect(warnings.filter((w) => w.includes(expected(21)))).toHaveLength(1);
    expect(readFileSync(out, "utf8")).toBe(events.map((l) => `${l}\n`).join(""));
  });

  test("--ids-from: every id but the long line's", async () => {
    const warnings: string[] = [];
    const ids = await readIds(make(withLong()), (m) => warnings.push(m), soul, CAP);
    expect(ids.size).toBe(40);
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`:21: ${expected(21).replace(/[()]/g, "\\$&")}; its id, if any, is not skipped$`))]);
  });
});

describe("restore-events", () => {
  const target = makeNara("target", sha256("long-lines-target"));
  const restore = (inputs: string[], skipInvalid: boolean) => {
    const invalid: RestoreInvalid[] = [];
    const sent: number[] = [];
    const p = restoreEvents(
      {
        inputs,
        url: importUrl("http://127.0.0.1:9"),
        signer: { identity: target.identity, bondChecked: true, source: "env" },
        batchSize: 1000,
        timeoutMs: 10_000,
        retries: 0,
        dryRun: true,
        skipInvalid,
        maxLineBytes: CAP,
        decryptSoul: soul,
      },
      { onInvalid: (b) => void invalid.push(b), onBatch: (b) => void sent.push(b.events) },
    );
    return p.then((summary) => ({ summary, invalid, sent }));
  };

  test.each(forms)("%s: nothing is sent; the line is named", async (_form, make) => {
    const input = make(withLong());
    const r = await restore([input], false);
    expect(r.summary.exitCode).toBe(ExitCode.usage);
    expect(r.invalid).toEqual([{ input, line: 21, reason: expected(21) }]);
    expect(r.sent).toEqual([]);
    expect([r.summary.lines, r.summary.valid, r.summary.invalid]).toEqual([41, 40, 1]);
  });

  test("--skip-invalid: every other event is batched, the long last line left out", async () => {
    const r = await restore([file(withLong(true))], true);
    expect(r.summary.exitCode).toBe(ExitCode.ok);
    expect(r.invalid.map((b) => b.line)).toEqual([41]);
    expect(r.sent).toEqual([40]);
  });
});

describe("the commands", () => {
  const cli = (args: string[]) =>
    runCli(args, { env: { ...process.env, NARA_SOUL: makeNara("cli", sha256("long-lines-cli")).soul, NO_COLOR: "1" } });
  const input = file(withLong());
  const named = `${input}:21: ${expected(21, LONG, 64 << 10)}`;

  test("verify --max-line-bytes 64k: corrupt, the line named", async () => {
    const r = await cli(["verify", "--max-line-bytes", "64k", "--workers", "0", input]);
    expect(r.code).toBe(ExitCode.corrupt);
    expect(r.stderr).toContain(`${named}\n`);
    expect(r.stdout).toContain("malformed lines: 1\n");
  });

  test("stats -max-line-bytes 64KiB: left out, the line named", async () => {
    const r = await cli(["stats", "-max-line-bytes", "64KiB", input]);
    expect(r.code).toBe(ExitCode.ok);
    expect(r.stderr).toContain(named);
    expect(r.stderr).not.toContain("malformed line: line of");
  });

  test("merge: stops (exit 2) naming the line; the default 1 MiB cap lets it through", async () => {
    const r = await cli(["merge", "--max-line-bytes", "64k", input, "-o", join(dir, "cli-merge.jsonl")]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain(named);
    // 300 KiB is under the default cap: the line is read (and refused for what it is, not for its length).
    const d = await cli(["merge", input, "-o", join(dir, "cli-merge.jsonl")]);
    expect(d.stderr).not.toContain("longer than any event");
  });

  test("restore-events --dry-run: nothing sent, the line named", async () => {
    const r = await cli(["restore-events", "--nara-url", "http://127.0.0.1:9", "--dry-run", "--max-line-bytes", "64k", input]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain(`${named}\n`);
    expect(r.stderr).toContain("nothing was sent");
  });

  test("a bad size is a usage error", async () => {
    const r = await cli(["verify", "--max-line-bytes", "huge", input]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toContain('--max-line-bytes: "huge" is not a size');
  });
});
