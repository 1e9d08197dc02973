import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FAN_IN, mergeBackups, type MergeOptions, type MergeSummary } from "../src/backup/merge.ts";
import { dumpEvents } from "../src/dump/dump.ts";
import { NaraError } from "../src/errors.ts";
import { encryptBytes } from "./helpers/encrypt.ts";
import { openInput } from "../src/io/input.ts";
import { openOutput } from "../src/io/output.ts";
import { distribute, generateEvents, generateNaras, Rng, type SimEvent } from "./sim/generate.ts";
import { startMesh } from "./sim/mesh.ts";

const root = join(import.meta.dir, "..");
let dir: string;
let seq = 0;
const path = (name: string) => join(dir, name);
const fresh = (name: string) => join(dir, `${++seq}-${name}`);

/** The lines of a JSON Lines text (without the final empty one). */
const linesOf = (text: string): string[] => text.split("\n").filter((l) => l.length > 0);
const tsOf = (line: string): bigint => BigInt(/"ts":(-?\d+)/.exec(line)![1]!);
const idOf = (line: string): string => /"id":"([^"]*)"/.exec(line)![1]!;

/**
 * What a merge must write, computed independently: one line per id (the
 * given preference decides which), ordered by ts as a BigInt, then id.
 */
function expectedOf(lines: readonly string[], prefer: (a: string, b: string) => string = (a) => a): string {
  const byId = new Map<string, string>();
  for (const l of lines) {
    const had = byId.get(idOf(l));
    byId.set(idOf(l), had === undefined ? l : prefer(had, l));
  }
  const sorted = [...byId.values()].sort((a, b) => {
    const x = tsOf(a);
    const y = tsOf(b);
    if (x !== y) return x < y ? -1 : 1;
    return idOf(a) < idOf(b) ? -1 : idOf(a) > idOf(b) ? 1 : 0;
  });
  return sorted.map((l) => `${l}\n`).join("");
}

const write = (name: string, lines: readonly string[]): string => {
  const p = fresh(name);
  writeFileSync(p, lines.map((l) => `${l}\n`).join(""));
  return p;
};

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rng = new Rng(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

async function merge(opts: Omit<MergeOptions, "output"> & { output?: string }, warnings: string[] = []): Promise<{ summary: MergeSummary; text: string }> {
  const output = opts.output ?? fresh("out.jsonl");
  const summary = await mergeBackups({ ...opts, output }, { onWarn: (m) => warnings.push(m), onInfo: (m) => warnings.push(m) });
  return { summary, text: readFileSync(output, "utf8") };
}

type Result = { code: number; stdout: string; stderr: string };
const cli = (args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Promise<Result> =>
  runCli(args, { cwd: dir, env: { TMPDIR: path("tmp"), ...opts.env }, stdin: opts.stdin === undefined ? undefined : new TextEncoder().encode(opts.stdin) });

// One history, two overlapping shares of it (two "meshes"), each written sorted as a dump would.
let events: SimEvent[];
let shareA: string[];
let shareB: string[];
let union: string;
let fileA: string;
let fileB: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nara-merge-test-"));
  mkdirSync(path("tmp"));
  events = generateEvents({ naras: generateNaras(4, 21), count: 2500, seed: 21, sharedTsRate: 0.4, unknownRate: 0.05 });
  const [a, b] = distribute(events, 2, { overlap: 0.5, seed: 4 });
  shareA = linesOf(expectedOf(a!.map((e) => e.raw)));
  shareB = linesOf(expectedOf(b!.map((e) => e.raw)));
  union = expectedOf(events.map((e) => e.raw));
  fileA = write("a.jsonl", shareA);
  fileB = write("b.jsonl", shareB);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("merge of sorted backups (streaming k-way merge)", () => {
  test("two dumps of overlapping simulated meshes merge to exactly one dump of the union", async () => {
    const settings = { timeoutMs: 20_000, pageSize: 300, strict: false, backoffMs: 10, maxBackoffMs: 100 };
    const [a, b] = distribute(events, 2, { overlap: 0.6, seed: 9 });
    const meshes = await Promise.all([
      startMesh({ peers: 2, events: a!, seed: 31 }),
      startMesh({ peers: 2, events: b!, seed: 32 }),
      startMesh({ peers: 3, events, seed: 33 }),
    ]);
    try {
      const dumps: string[] = [];
      for (const mesh of meshes) {
        const out = fresh("dump.jsonl");
        const s = await dumpEvents({
          peers: mesh.peers.map((p) => ({ name: p.name, url: p.url })),
          name: mesh.client.name,
          soul: mesh.client.soul,
          settings,
          workers: 1,
          concurrency: 4,
          output: out,
        });
        expect(s.exitCode).toBe(0);
        dumps.push(out);
      }
      const { summary, text } = await merge({ inputs: [dumps[0]!, dumps[1]!] });
      expect(text).toBe(readFileSync(dumps[2]!, "utf8"));
      expect(text).toBe(union);
      expect(summary.written).toBe(events.length);
      expect(summary.runs).toBe(0);
      expect(summary.restarts).toBe(0);
      expect(summary.duplicates).toBe(a!.length + b!.length - events.length);
      expect(summary.inputs.map((i) => i.sorted)).toEqual([true, true]);
    } finally {
      await Promise.all(meshes.map((m) => m.stop()));
    }
  });

  test("three inputs, one of them twice, and an input holding everything", async () => {
    const all = write("all.jsonl", linesOf(union));
    const { summary, text } = await merge({ inputs: [fileA, fileB, fileA, all], presorted: true });
    expect(text).toBe(union);
    expect(summary.read).toBe(2 * shareA.length + shareB.length + events.length);
    expect(summary.written).toBe(events.length);
  });

  test("blank lines and CRLF line ends are read; the output has the events' bytes and LF", async () => {
    const crlf = fresh("crlf.jsonl");
    writeFileSync(crlf, `\r\n${shareA.slice(0, 50).join("\r\n")}\r\n\n  \n${shareA.slice(50).join("\r\n")}`);
    const { text } = await merge({ inputs: [crlf, fileB] });
    expect(text).toBe(union);
  });
});

describe("the signed copy of an event wins", () => {
  const strip = (line: string) => line.replace(/,"sig":"[^"]*"/, "");
  const signedLines = () => shareA.filter((l) => /"sig":"[^"]+"/.test(l) && /"emitter":"[^"]+"/.test(l));

  test("whichever input holds it, and the order of the inputs does not matter", async () => {
    expect(signedLines().length).toBeGreaterThan(100);
    const unsigned = write("unsigned.jsonl", shareA.map(strip));
    const expected = expectedOf([...shareA, ...shareB]);
    const first = await merge({ inputs: [unsigned, fileA, fileB] });
    const second = await merge({ inputs: [fileA, unsigned, fileB] });
    expect(first.text).toBe(expected);
    expect(second.text).toBe(expected);
    // Unsigned copies came first: each was replaced once its signed copy arrived.
    expect(first.summary.replaced).toBeGreaterThanOrEqual(signedLines().length);
    expect(second.summary.replaced).toBe(0);
  });

  test("also when both copies sit in one unsorted input, in the same run or in different runs", async () => {
    const mixed = shuffled([...shareA.map(strip), ...shareA], 5);
    const input = write("mixed.jsonl", mixed);
    const expected = expectedOf(shareA);
    // A signed copy replaces a kept one only when the unsigned copy comes first.
    const at = new Map(mixed.map((l, i) => [l, i]));
    const unsignedFirst = signedLines().filter((l) => at.get(strip(l))! < at.get(l)!).length;
    expect(unsignedFirst).toBeGreaterThan(100);
    for (const maxMemory of [1 << 30, 8 << 10]) {
      const { summary, text } = await merge({ inputs: [input], presorted: false, maxMemory, tempDir: path("tmp") });
      expect(text).toBe(expected);
      expect(summary.replaced).toBe(unsignedFirst);
      expect(summary.duplicates).toBe(shareA.length);
      if (maxMemory === 1 << 30) expect(summary.runs).toBe(0);
      else expect(summary.runs).toBeGreaterThan(1);
    }
  });
});

describe("unsorted inputs: bounded-memory sort", () => {
  test("a tiny --max-memory spills many runs, gives the same bytes as sorted input, leaves no temporary file", async () => {
    const input = write("shuffled.jsonl", shuffled([...shareA, ...shareB], 7));
    const tempDir = fresh("runs");
    mkdirSync(tempDir);
    const { summary, text } = await merge({ inputs: [input], presorted: false, maxMemory: 32 << 10, tempDir });
    expect(text).toBe(union);
    expect(summary.runs).toBeGreaterThan(5);
    expect(summary.inputs[0]!.sorted).toBe(false);
    expect(readdirSync(tempDir)).toEqual([]);
  });

  test(`more runs than the fan-in (${FAN_IN}) are merged in rounds`, async () => {
    const input = write("shuffled.jsonl", shuffled([...shareA, ...shareB], 8));
    const tempDir = fresh("runs");
    mkdirSync(tempDir);
    const { summary, text } = await merge({ inputs: [input, fileB], presorted: false, maxMemory: 4 << 10, tempDir });
    expect(summary.runs).toBeGreaterThan(FAN_IN);
    expect(text).toBe(union);
    expect(readdirSync(tempDir)).toEqual([]);
  });

  test("by default an input found out of order is sorted and the merge starts again", async () => {
    const appended = write("appended.jsonl", [...shareA, ...shareB.slice(0, 300)]);
    const notes: string[] = [];
    const { summary, text } = await merge({ inputs: [fileB, appended], maxMemory: 64 << 10, tempDir: path("tmp") }, notes);
    expect(text).toBe(union);
    expect(summary.restarts).toBe(1);
    expect(summary.inputs.map((i) => i.sorted)).toEqual([true, false]);
    expect(notes.join("\n")).toContain(`${appended}:${shareA.length + 1} is out of order`);
  });

  test("--presorted refuses an unsorted input with file:line, and writes nothing", async () => {
    const swapped = [...shareA];
    [swapped[10], swapped[11]] = [swapped[11]!, swapped[10]!];
    const input = write("swapped.jsonl", swapped);
    const output = fresh("out.jsonl");
    const err = await mergeBackups({ inputs: [fileB, input], output, presorted: true }).catch((e) => e);
    expect(err).toBeInstanceOf(NaraError);
    expect((err as NaraError).exitCode).toBe(2);
    expect((err as NaraError).message).toContain(`${input}:12: not sorted`);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  test("stdin (-) is read once, through runs", async () => {
    const r = await cli(["merge", "-", fileB, "--max-memory", "16K", "--json"], { stdin: shuffled(shareA, 3).join("\n") });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(union);
    const summary = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    expect(summary.inputs[0].name).toBe("stdin");
    expect(summary.runs).toBeGreaterThan(0);
    expect(readdirSync(path("tmp"))).toEqual([]);
  });
});

test("an input that cannot be read twice (a pipe given by path) is sorted through runs from the start", async () => {
  // By default a sorted-looking input is streamed and re-read if it turns out unsorted: a pipe cannot be.
  const fifo = fresh("fifo");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  const source = write("shuffled-a.jsonl", shuffled(shareA, 12));
  const feeder = Bun.spawn(["sh", "-c", 'cat "$0" > "$1"', source, fifo]);
  const proc = Bun.spawn([process.execPath, join(root, "src/cli.ts"), "merge", fifo, fileB, "--json"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", TMPDIR: path("tmp") },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(await feeder.exited).toBe(0);
  expect(code).toBe(0);
  expect(stdout).toBe(union);
  const summary = JSON.parse(stderr.trim().split("\n").at(-1)!);
  expect(summary.restarts).toBe(0);
  expect(summary.inputs[0]).toMatchObject({ name: fifo, sorted: false });
});

test("a UTF-8 byte order mark before the first line is not part of the event", async () => {
  const p = fresh("bom.jsonl");
  writeFileSync(p, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), readFileSync(fileA)]));
  const { text } = await merge({ inputs: [p, fileB] });
  expect(text).toBe(union);
});

describe("order of timestamps", () => {
  // ids in lowercase hex; ts values that a double would confuse.
  const ev = (id: string, ts: string) => `{"id":"${id.padStart(32, "0")}","ts":${ts},"svc":"seen"}`;
  const tss = [
    "1767225600000000002",
    "1767225600000000001",
    "1767225600000000010",
    "9007199254740993",
    "9007199254740992",
    "9007199254740994",
    "123456789012345678901234567891",
    "123456789012345678901234567890",
    "123456789012345678901234567899",
    // High parts (all but the last nine digits) that one double cannot tell apart, low parts in the other order.
    "123456789012345678901000000005",
    "123456789012345678902000000001",
    "0",
    "-5",
    "-1000000001",
    "-1000000000",
    "1767225600000000001",
  ];
  const lines = tss.map((ts, i) => ev((i * 7919).toString(16), ts));

  test("ts above 2^53 that differ only in the last digits (also beyond 2^53 * 1e9, negative) sort as integers", async () => {
    const expected = expectedOf(lines);
    // Number() would merge neighbours: the test data must be able to catch that.
    expect(new Set(tss.map((t) => Number(t))).size).toBeLessThan(new Set(tss).size - 1);
    const unsorted = await merge({ inputs: [write("ts.jsonl", lines)], presorted: false, maxMemory: 600, tempDir: path("tmp") });
    expect(unsorted.text).toBe(expected);
    expect(unsorted.summary.runs).toBeGreaterThan(1);
    const sortedHalves = linesOf(expected);
    const odd = write("odd.jsonl", sortedHalves.filter((_, i) => i % 2 === 1));
    const even = write("even.jsonl", sortedHalves.filter((_, i) => i % 2 === 0));
    const streamed = await merge({ inputs: [odd, even], presorted: true });
    expect(streamed.text).toBe(expected);
  });

  test("the same id under two timestamps: the first in order is kept, the other counted and named", async () => {
    const a = ev("abc", "1767225600000000005");
    const b = ev("abc", "1767225600000000007");
    const c = ev("abd", "1767225600000000006");
    const warnings: string[] = [];
    const input = write("conflict.jsonl", [a, c, b]);
    const { summary, text } = await merge({ inputs: [input] }, warnings);
    expect(text).toBe(`${a}\n${c}\n`);
    expect(summary.conflicts).toBe(1);
    expect(warnings.join("\n")).toContain(`${input}:3: left out: id ${"abc".padStart(32, "0")}`);
    const unchecked = await merge({ inputs: [input], checkIds: false });
    expect(unchecked.text).toBe(`${a}\n${c}\n${b}\n`);
    expect(unchecked.summary.idCheck).toBe("off");
  });
});

describe("malformed lines", () => {
  test("are reported with file:line and nothing is written (exit 2), in both paths", async () => {
    const bad = [...shareA];
    bad.splice(2, 0, '{"id":"x","ts":12');
    const input = write("bad.jsonl", bad);
    for (const presorted of ["--presorted", "--presorted=false"]) {
      const out = fresh("out.jsonl");
      const r = await cli(["merge", fileB, input, "-o", out, presorted]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`error: ${input}:3: not a valid event line`);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    }
  });

  test("a line without id, or with a ts that is not an integer, is malformed too", async () => {
    for (const [line, reason] of [
      ['{"ts":1767225600000000000,"svc":"seen"}', "no string id"],
      ['{"id":"ab","ts":1.5e18,"svc":"seen"}', "ts is not an integer"],
      ['{"id":"ab","ts":"1767225600000000000"}', "ts is not an integer"],
      ['{"id":"ab","ts":17} trailing', "unexpected data after the event"],
    ] as const) {
      const input = write("bad.jsonl", [shareA[0]!, line]);
      const err = await mergeBackups({ inputs: [input], output: fresh("out.jsonl") }).catch((e) => e);
      expect(err).toBeInstanceOf(NaraError);
      expect((err as Error).message).toContain(`${input}:2: not a valid event line: ${reason}`);
    }
  });

  test("--skip-invalid leaves them out with a warning naming file:line", async () => {
    const bad = [...shareA];
    bad.splice(5, 0, "not json at all");
    const input = write("bad.jsonl", bad);
    const r = await cli(["merge", input, fileB, "--skip-invalid", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(union);
    expect(r.stderr).toContain(`${input}:6: left out, not a valid event line`);
    const summary = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    expect(summary.invalid).toBe(1);
    expect(summary.inputs[0]).toMatchObject({ name: input, invalid: 1, events: shareA.length });
  });
});

describe("outputs and inputs", () => {
  test("stdout carries only the merged backup; the summary goes to stderr", async () => {
    const r = await cli(["merge", fileA, fileB]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(union);
    expect(r.stderr).toContain(`${events.length.toLocaleString("en")} events from 2 input(s) to stdout`);
    const j = await cli(["merge", fileA, fileB, "-q", "--json", "-o", fresh("out.jsonl")]);
    expect(j.stdout).toBe("");
    const summary = JSON.parse(j.stderr.trim());
    for (const key of ["complete", "exitCode", "output", "inputs", "read", "written", "duplicates", "replaced", "conflicts", "runs", "seconds"]) {
      expect(summary).toHaveProperty(key);
    }
    expect(summary.written).toBe(events.length);
  });

  test("-o is atomic: a missing input leaves neither the file nor a temporary one, and an old file stays", async () => {
    const out = fresh("out.jsonl");
    writeFileSync(out, "old\n");
    const r = await cli(["merge", fileA, path("missing.jsonl"), "-o", out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing.jsonl: no such file");
    expect(readFileSync(out, "utf8")).toBe("old\n");
    // A malformed line at the very end, found after most of the output was written.
    const late = write("late.jsonl", [...shareB, "{broken"]);
    const r2 = await cli(["merge", fileA, late, "-o", out]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`${late}:${shareB.length + 1}:`);
    expect(readFileSync(out, "utf8")).toBe("old\n");
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    // Nothing reaches stdout either when an input turns out malformed.
    const r3 = await cli(["merge", fileA, late]);
    expect(r3.code).toBe(2);
    expect(r3.stdout).toBe("");
  });

  test("compressed and encrypted inputs, compressed output by extension", async () => {
    const [nara] = generateNaras(1, 77);
    const seed = nara!.identity.seedBytes();
    const zst = fresh("a.jsonl.zst");
    const o = openOutput(zst);
    await o.write(readFileSync(fileA));
    await o.commit();
    const enc = fresh("b.jsonl.enc");
    writeFileSync(enc, encryptBytes(seed, readFileSync(fileB)));
    const out = fresh("out.jsonl.gz");
    const r = await cli(["merge", zst, enc, "-o", out, "--json"], { env: { NARA_SOUL: nara!.soul } });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    expect(summary.inputs.map((i: { compression: string; encrypted: boolean }) => [i.compression, i.encrypted])).toEqual([
      ["zstd", false],
      ["none", true],
    ]);
    expect(r.stderr).toContain("is encrypted, the merged output is not");
    const back = await openInput(out);
    expect(back.kind.compression).toBe("gzip");
    expect(await new Response(back.stream).text()).toBe(union);
    const noSoul = await cli(["merge", zst, enc]);
    expect(noSoul.code).toBe(2);
    expect(noSoul.stdout).toBe("");
  });

  test("the library stops on its AbortSignal: temporary runs and partial output removed at once, then a rejection with exit code 130", async () => {
    const input = write("shuffled.jsonl", shuffled([...shareA, ...shareB], 12));
    const tempDir = fresh("runs");
    mkdirSync(tempDir);
    const out = fresh("out.jsonl");
    const controller = new AbortController();
    let atAbort: string[] | undefined;
    const onDebug = (m: string) => {
      if (!m.startsWith("spilled run 2:")) return;
      controller.abort();
      atAbort = readdirSync(tempDir);
    };
    const err = await mergeBackups({ inputs: [input], output: out, presorted: false, maxMemory: 8 << 10, tempDir, signal: controller.signal }, { onDebug }).catch((e) => e);
    expect(atAbort).toEqual([]);
    expect(err).toBeInstanceOf(NaraError);
    expect((err as NaraError).exitCode).toBe(130);
    expect(readdirSync(tempDir)).toEqual([]);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const before = await mergeBackups({ inputs: [fileA], output: out, signal: AbortSignal.abort() }).catch((e) => e);
    expect((before as NaraError).exitCode).toBe(130);
    expect(existsSync(out)).toBe(false);
  });

  test("Ctrl-C removes the temporary runs and the partial output (exit 130)", async () => {
    const big = write("big.jsonl", shuffled([...shareA, ...shareB, ...shareA], 11));
    const tempDir = fresh("runs");
    mkdirSync(tempDir);
    const out = fresh("out.jsonl");
    // stdin stays open: the merge cannot finish before the signal, whatever the machine's speed.
    const proc = Bun.spawn(
      [process.execPath, join(root, "src/cli.ts"), "merge", big, "-", "--presorted=false", "--max-memory", "8K", "--temp-dir", tempDir, "-o", out, "--verbose"],
      { cwd: dir, env: { PATH: process.env.PATH ?? "" }, stdin: "pipe", stdout: "pipe", stderr: "pipe" },
    );
    const reader = proc.stderr.getReader();
    let seen = "";
    while (!seen.includes("spilled run 2:")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    expect(seen).toContain("spilled run 2:");
    expect(readdirSync(tempDir).length).toBe(1);
    proc.kill("SIGINT");
    expect(await proc.exited).toBe(130);
    expect(readdirSync(tempDir)).toEqual([]);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  test("usage errors: no input, stdin twice, a bad --max-memory", async () => {
    expect((await cli(["merge"])).code).toBe(2);
    const twice = await cli(["merge", "-", "-"]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("stdin (-) can be read only once");
    const mem = await cli(["merge", fileA, "--max-memory", "lots"]);
    expect(mem.code).toBe(2);
    expect(mem.stderr).toContain('--max-memory: "lots" is not a size');
  });
});
