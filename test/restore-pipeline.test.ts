/**
 * The pipelined restore: pass 1 split over a worker, batches prepared while
 * one is with the nara, --in-flight N, and the send passes' trust in the
 * bytes pass 1 validated (a line changed since is caught, not sent).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { mkdtempSync, openSync, rmSync, writeFileSync, writeSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { sha256 } from "../src/identity/crypto.ts";
import { importUrl, type FetchLike } from "../src/restore/import.ts";
import { restoreEvents, type InvalidLine, type RestoreHooks, type RestoreOptions } from "../src/restore/restore.ts";
import { generateEvents, generateNaras, makeNara } from "./sim/generate.ts";
import { rawEventsOf, startPeer, type SimPeer } from "./sim/peer.ts";

const dir = mkdtempSync(join(tmpdir(), "restore-pipeline-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const naras = generateNaras(4, 33);
const events = generateEvents({ naras, count: 2400, seed: 33, heyThereFirst: false });

let fileNo = 0;
function backupFile(lines: readonly string[]): string {
  const path = join(dir, `backup-${++fileNo}.jsonl`);
  writeFileSync(path, lines.map((l) => `${l}\n`).join(""));
  return path;
}

let naraNo = 0;
const freshNara = (extra: Partial<Parameters<typeof startPeer>[0]> = {}): SimPeer =>
  startPeer({ nara: makeNara(`target-${++naraNo}`, sha256(`pipeline:${naraNo}`)), ...extra });

function restore(target: SimPeer, opts: Partial<RestoreOptions>, hooks: RestoreHooks = {}) {
  return restoreEvents(
    {
      inputs: [],
      url: importUrl(target.url),
      signer: { identity: target.identity, bondChecked: true, source: "env" },
      batchSize: 200,
      timeoutMs: 10_000,
      retries: 3,
      sleep: async () => {},
      ...opts,
    },
    hooks,
  );
}

const stored = (p: SimPeer) =>
  p.events
    .list()
    .map((e) => e.raw)
    .sort();

describe("pass 1 on two threads", () => {
  test("a split file gives what one reader gives: counts, invalid lines in order with their numbers, dedup, what is imported", async () => {
    const signed = events.filter((e) => e.signed);
    const early = signed[10]!;
    // An unsigned copy of a signed event in the first part; the signed one comes late, in the worker's part.
    const unsigned = early.raw.replace(/,"emitter":"[^"]*"/, "").replace(/,"emitter_id":"[^"]*"/, "").replace(/,"sig":"[^"]*"/, "");
    expect(unsigned).not.toBe(early.raw);
    const lines = events.filter((e) => e !== early).map((e) => e.raw);
    lines.splice(5, 0, unsigned);
    lines.splice(40, 0, "not json");
    lines.splice(41, 0, "");
    lines.splice(1900, 0, '{"id":"x","ts":1,"svc":"social"}'); // a known service without its payload
    lines.splice(2100, 0, "[1,2]");
    const long = `{"id":"${"a".repeat(100_000)}"}`; // over --max-line-bytes, in the worker's part
    lines.splice(2150, 0, long);
    lines.push(early.raw, lines[3]!); // the signed copy, and a plain repeat
    const file = backupFile(lines);

    const runs = [];
    for (const parallelCheckBytes of [Infinity, 1]) {
      const target = freshNara();
      const invalid: InvalidLine[] = [];
      try {
        const s = await restore(target, { inputs: [file], skipInvalid: true, parallelCheckBytes, maxLineBytes: 64 << 10 }, { onInvalid: (b) => invalid.push(b) });
        expect(s.exitCode).toBe(ExitCode.ok);
        runs.push({ s, invalid, stored: stored(target) });
      } finally {
        await target.stop();
      }
    }
    const [one, two] = runs as [(typeof runs)[0], (typeof runs)[0]];
    const bad = ["not json", '{"id":"x","ts":1,"svc":"social"}', "[1,2]", long].map((l) => lines.indexOf(l) + 1);
    expect(bad[2]).toBeGreaterThan(2000); // in the worker's part
    expect(one.invalid.map((b) => b.line)).toEqual(bad);
    expect(two.invalid[3]!.reason).toBe(`line of ${long.length} bytes, longer than any event (limit 64 KiB)`);
    expect(two.invalid).toEqual(one.invalid);
    for (const k of ["lines", "valid", "invalid", "duplicatesInInput", "unique", "toSend", "sent", "imported", "warnings"] as const) {
      expect(`${k}=${two.s[k]}`).toBe(`${k}=${one.s[k]}`);
    }
    expect(two.s.services).toEqual(one.s.services);
    expect(one.s.duplicatesInInput).toBe(2);
    expect(one.s.unique).toBe(events.length);
    expect(two.stored).toEqual(one.stored);
    expect(two.stored).toContain(early.raw); // the signed copy won, from the worker's part
    expect(two.stored).not.toContain(unsigned);
  });
});

describe("sending", () => {
  test("each batch is signed when it is sent, not when it is prepared (the clock moves while one is in flight)", async () => {
    const target = freshNara();
    let clock = Date.now();
    const seen: { bodyTs: number; clockS: number }[] = [];
    const spy: FetchLike = async (url, init) => {
      const body = new TextDecoder().decode(init.body as Uint8Array);
      seen.push({ bodyTs: Number(/"ts":(\d+),"sig"/.exec(body.slice(-120))![1]), clockS: Math.floor(clock / 1000) });
      const res = await fetch(url, init);
      clock += 2000; // two seconds per request: a batch signed ahead of its turn carries an older ts
      return res;
    };
    try {
      const s = await restore(target, { inputs: [backupFile(events.map((e) => e.raw))], fetch: spy, now: () => clock });
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(seen.length).toBe(Math.ceil(events.length / 200));
      expect(seen.every((x) => x.bodyTs === x.clockS)).toBe(true);
      expect(target.events.size).toBe(events.length);
    } finally {
      await target.stop();
    }
  });

  test("--in-flight 3: everything arrives once; a batch that fails leaves a --skip that resumes after the accepted prefix", async () => {
    const file = backupFile(events.map((e) => e.raw));
    const target = freshNara({ faults: { importFailEvery: 5 } });
    try {
      const s = await restore(target, { inputs: [file], inFlight: 3, retries: 0 });
      expect(s.exitCode).toBe(ExitCode.partial);
      expect(s.resumeSkip).toBeDefined();
      const skip = s.resumeSkip!;
      expect(skip % 200).toBe(0);
      expect(skip).toBeGreaterThanOrEqual(200);
      expect(skip).toBeLessThan(events.length);
      expect(s.failure?.hint).toContain(`--skip ${skip}`);
      target.faults.importFailEvery = undefined;
      const resumed = await restore(target, { inputs: [file], inFlight: 3, skip });
      expect(resumed.exitCode).toBe(ExitCode.ok);
      expect(resumed.sent).toBe(events.length - skip);
      expect(target.events.size).toBe(events.length);
      expect(stored(target)).toEqual(events.map((e) => e.raw).sort());
    } finally {
      await target.stop();
    }
  });

  test("a line changed after validation is caught by its bytes, and never sent (an input read again, not held)", async () => {
    const lines = events.map((e) => e.raw);
    const file = backupFile(lines);
    // Same length, same ID, still valid JSON: only the bytes tell.
    const at = 1500;
    const victim = lines[at]!;
    const k = victim.lastIndexOf('"') - 1;
    const changed = victim.slice(0, k) + (victim[k] === "a" ? "b" : "a") + victim.slice(k + 1);
    let offset = 0;
    for (let i = 0; i < at; i++) offset += Buffer.byteLength(lines[i]!) + 1;
    const target = freshNara();
    const sent: string[] = [];
    const spy: FetchLike = async (url, init) => {
      sent.push(...(rawEventsOf(new TextDecoder().decode(init.body as Uint8Array)) ?? []));
      return fetch(url, init);
    };
    try {
      const run = restore(target, { inputs: [file], fetch: spy, holdBytes: 0 }, {
        onPlan() {
          const fd = openSync(file, "r+");
          writeSync(fd, Buffer.from(changed), 0, Buffer.byteLength(changed), offset);
          closeSync(fd);
        },
      });
      await expect(run).rejects.toThrow(`${file}:${at + 1} changed while restoring`);
      expect(sent).not.toContain(changed);
      expect(sent.length).toBeLessThan(events.length);
    } finally {
      await target.stop();
    }
  });
});

describe("the command", () => {
  const run = (args: string[], env: Record<string, string>) =>
    runCli(["restore-events", ...args], { env: { HOME: process.env.HOME ?? "", ...env } });

  test("--in-flight N sends N batches at once; 0 is a usage error", async () => {
    const target = freshNara();
    const file = backupFile(events.slice(0, 900).map((e) => e.raw));
    try {
      const env = { NARA_SOUL: target.nara.soul };
      const ok = await run(["--nara-url", target.url, "--name", target.name, "--in-flight", "3", "--batch-size", "100", "--json", file], env);
      expect(ok.code).toBe(0);
      const j = JSON.parse(ok.stderr.trim().split("\n").pop()!) as { imported: number; batches: number };
      expect(j).toMatchObject({ imported: 900, batches: 9 });
      expect(target.events.size).toBe(900);
      const bad = await run(["--nara-url", target.url, "--name", target.name, "--in-flight", "0", file], env);
      expect(bad.code).toBe(ExitCode.usage);
      expect(bad.stderr).toContain("--in-flight");
      expect(target.stats.imports).toBe(9);
    } finally {
      await target.stop();
    }
  });
});
