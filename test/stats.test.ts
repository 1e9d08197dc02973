// stats: expectations come from the generated events (what the simulated mesh serves), never from stats' own output.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { backupStats, findEmitter, type StatsReport } from "../src/backup/stats.ts";
import { autoBucket, parseBucket, rfc3339Nanos } from "../src/backup/timeline.ts";
import { inputList } from "../src/backup/inputs.ts";
import { MAX_INPUTS } from "../src/events/idindex.ts";
import { columns } from "../src/cli/table.ts";
import { bar, formatSpan, renderStats } from "../src/cli/render/backup.ts";
import { generateEvents, generateNaras, type SimEvent } from "./sim/generate.ts";

let dir: string;
let seq = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nara-stats-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (content: string | Uint8Array, ext = "jsonl"): string => {
  const path = join(dir, `in-${++seq}.${ext}`);
  writeFileSync(path, content);
  return path;
};
const lines = (events: readonly SimEvent[]): string => `${events.map((e) => e.raw).join("\n")}\n`;

const cli = (args: string[]) => runCli(args, { env: { ...process.env, NARA_SOUL: undefined } });

const count = <T,>(items: readonly T[], key: (t: T) => string | undefined): Map<string, number> => {
  const m = new Map<string, number>();
  for (const it of items) {
    const k = key(it);
    if (k !== undefined) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
};

const HOUR_NS = 3_600_000_000_000n;

describe("the numbers of a generated history", () => {
  const naras = generateNaras(8, 31);
  // Two days and a bit, a shuffled file (stats does not need order), unknown services, unicode and <>& emitters.
  const events = generateEvents({ naras, count: 4000, seed: 31, unknownRate: 0.03, meanGapNs: 50_000_000_000 });
  const shuffled = [...events].sort((a, b) => (a.id < b.id ? -1 : 1));
  let path: string;
  let r: StatsReport;
  beforeAll(async () => {
    path = file(lines(shuffled));
    r = await backupStats({ inputs: [path], top: 5 });
  });

  test("events, bytes, signed, per service: as generated", () => {
    expect(r.events).toBe(events.length);
    expect(r.duplicates + r.malformed).toBe(0);
    expect(r.bytes).toBe(Buffer.byteLength(lines(events)));
    expect(r.signed).toBe(events.filter((e) => e.signed).length);
    const want = count(events, (e) => e.svc);
    for (const [svc, n] of Object.entries(r.services)) expect({ svc, n }).toEqual({ svc, n: want.get(svc) ?? 0 });
    expect(Object.keys(r.services).length).toBe(8); // the seven known (zeros included) and zine
    expect(r.unknownServices).toEqual(["zine"]);
  });

  test("per emitter: the top 5 and the rest, names decoded from Go's escapes", () => {
    const want = [...count(events, (e) => e.emitter)].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    expect(r.emitters.distinct).toBe(want.length);
    expect(r.emitters.top).toEqual(want.slice(0, 5).map(([name, n]) => ({ name, events: n })));
    expect(r.emitters.others).toBe(want.slice(5).reduce((n, [, c]) => n + c, 0));
    expect(r.emitters.none).toBe(events.filter((e) => e.emitter === undefined).length);
    expect(want.map(([n]) => n)).toContain("a<b>&c"); // raw lines say a\u003cb\u003e\u0026c
  });

  test("first and last: exact nanoseconds, as RFC 3339", () => {
    const tss = events.map((e) => e.ts).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const first = tss[0]!;
    const last = tss[tss.length - 1]!;
    expect(r.first!.ts).toBe(first.toString());
    expect(r.last!.ts).toBe(last.toString());
    expect(r.spanNs).toBe((last - first).toString());
    // 2026-01-01T00:00:00Z is 1767225600 s: the digits after it are the time of day and the nanoseconds.
    const nanos = (ts: bigint) => (ts % 1_000_000_000n).toString().padStart(9, "0");
    expect(r.first!.time).toMatch(new RegExp(`^2026-01-0[1-3]T\\d\\d:\\d\\d:\\d\\d\\.${nanos(first)}Z$`));
    expect(r.last!.time).toMatch(new RegExp(`^2026-01-0[1-9]T\\d\\d:\\d\\d:\\d\\d\\.${nanos(last)}Z$`));
  });

  test("events over time: one bucket per day for this span, every event counted in its UTC day, empty days kept", () => {
    expect(BigInt(r.spanNs) > 2n * 24n * HOUR_NS).toBe(true);
    expect(r.timeline.by).toBe("day");
    const want = count(events, (e) => new Date(Number((e.ts / (24n * HOUR_NS)) * 24n * 3600n) * 1000).toISOString().replace(".000Z", "Z"));
    expect(r.timeline.buckets.reduce((n, b) => n + b.events, 0)).toBe(events.length);
    for (const b of r.timeline.buckets) expect({ at: b.start, n: b.events }).toEqual({ at: b.start, n: want.get(b.start) ?? 0 });
    for (let i = 1; i < r.timeline.buckets.length; i++) {
      expect(Date.parse(r.timeline.buckets[i]!.start) - Date.parse(r.timeline.buckets[i - 1]!.start)).toBe(86_400_000);
    }
  });

  test("--by hour: counts per UTC hour", async () => {
    const h = await backupStats({ inputs: [path], by: "hour" });
    const want = count(events, (e) => new Date(Number((e.ts / HOUR_NS) * 3600n) * 1000).toISOString().replace(".000Z", "Z"));
    expect(h.timeline.by).toBe("hour");
    expect(h.timeline.buckets.filter((b) => b.events > 0).length).toBe(want.size);
    for (const b of h.timeline.buckets) expect(b.events).toBe(want.get(b.start) ?? 0);
  });

  test("two overlapping inputs: each event once, the repeats are duplicates", async () => {
    const a = file(lines(events.slice(0, 3000)));
    const b = file(lines(events.slice(2000)));
    const two = await backupStats({ inputs: [a, b] });
    expect(two.events).toBe(events.length);
    expect(two.duplicates).toBe(1000);
    expect(two.files.map((f) => [f.events, f.duplicates])).toEqual([
      [3000, 0],
      [2000, 1000],
    ]);
    expect(two.services).toEqual(r.services);
  });

  test("gzip and zstd inputs give the same numbers", async () => {
    const plain = Buffer.from(lines(shuffled));
    for (const [data, compression] of [
      [Bun.gzipSync(plain), "gzip"],
      [Bun.zstdCompressSync(plain), "zstd"],
    ] as const) {
      const z = await backupStats({ inputs: [file(data, `jsonl.${compression}`)], top: 5 });
      expect(z.files[0]!.compression).toBe(compression);
      expect({ ...z, files: [], seconds: 0 }).toEqual({ ...r, files: [], seconds: 0 });
    }
  });

  test("CLI: text on stdout with the chart; --json is one object; --top; --by", async () => {
    const text = await cli(["stats", path, "--top", "3"]);
    expect(text.code).toBe(0);
    expect(text.stderr).toBe("");
    expect(text.stdout).toMatch(new RegExp(`^events +${events.length.toLocaleString("en")}$`, "m"));
    expect(text.stdout).toMatch(/^first +2026-01-0\dT\d\d:\d\d:\d\d\.\d{9}Z {2}\(\d{19}\)$/m);
    expect(text.stdout).toContain("events per day (UTC)");
    expect(text.stdout).toMatch(/^ {2}2026-01-01 +[\d,]+ +█+/m);
    expect(text.stdout).toMatch(/^emitters \(\d+, top 3\)$/m);
    const json = await cli(["stats", path, "--json", "--by", "hour"]);
    expect(json.code).toBe(0);
    const obj = JSON.parse(json.stdout) as StatsReport;
    expect(obj.events).toBe(events.length);
    expect(obj.timeline.by).toBe("hour");
    expect(obj.emitters.top.length).toBe(10);
    const bad = await cli(["stats", path, "--by", "week"]);
    expect(bad.code).toBe(ExitCode.usage);
  });
});

describe("details", () => {
  test("RFC 3339 with nanoseconds, exact for values a double cannot hold", () => {
    expect(rfc3339Nanos("1767225600123456789")).toBe("2026-01-01T00:00:00.123456789Z");
    expect(rfc3339Nanos("9007199254740993")).toBe("1970-04-15T05:59:59.254740993Z");
    expect(rfc3339Nanos("0")).toBe("1970-01-01T00:00:00.000000000Z");
    expect(rfc3339Nanos("-1")).toBe("1969-12-31T23:59:59.999999999Z");
    expect(rfc3339Nanos("9223372036854775807")).toBe("2262-04-11T23:47:16.854775807Z");
    expect(rfc3339Nanos("-9223372036854775808")).toBe("1677-09-21T00:12:43.145224192Z");
  });

  test("spans and bucket choice", () => {
    expect(formatSpan("0")).toBe("0s");
    expect(formatSpan("1500000000")).toBe("1.5s");
    expect(formatSpan("59999000000")).toBe("59.999s");
    expect(formatSpan("60000000000")).toBe("1m 00s");
    expect(formatSpan("500000000")).toBe("0.5s");
    expect(formatSpan(String(3 * 86400e9 + 4 * 3600e9 + 5 * 60e9 + 6e9))).toBe("3d 04h 05m 06s");
    expect(autoBucket(2 * 86400)).toBe("hour");
    expect(autoBucket(2 * 86400 + 1)).toBe("day");
    expect(autoBucket(92 * 86400)).toBe("day");
    expect(autoBucket(93 * 86400)).toBe("month");
  });

  test("the emitter is found wherever it is, and only at the top level", () => {
    const enc = new TextEncoder();
    const find = (line: string): string | null => {
      const b = enc.encode(line);
      const svcAt = line.indexOf('"svc":"');
      const svcEnd = svcAt < 0 ? -1 : line.indexOf('"', svcAt + 7);
      const span = findEmitter(b, 0, b.length, svcEnd);
      return span && new TextDecoder().decode(b.subarray(span[0], span[1]));
    };
    expect(find('{"id":"x","ts":1,"svc":"seen","emitter":"bob","sig":"s"}')).toBe("bob");
    expect(find('{"id":"x","ts":1,"svc":"seen","sig":"s", "emitter" : "b\\"ob"}')).toBe('b\\"ob');
    expect(find('{"emitter":"first","id":"x","ts":1,"svc":"seen"}')).toBe("first");
    expect(find('{"id":"x","ts":1,"svc":"zine","zine":{"emitter":"inner"}}')).toBeNull();
    expect(find('{"id":"x","ts":1,"svc":"seen","seen":{"via":"emitter"}}')).toBeNull();
  });

  test("malformed lines are counted, left out and named; the rest is counted", async () => {
    const naras = generateNaras(3, 2);
    const events = generateEvents({ naras, count: 50, seed: 2 });
    const text = `${events.slice(0, 20).map((e) => e.raw).join("\n")}\nnot json\n{"id":"a","ts":"12","svc":"seen"}\n${events.slice(20).map((e) => e.raw).join("\n")}\n{"id":"cut","ts":17672256`;
    const path = file(text);
    const r = await backupStats({ inputs: [path] });
    expect(r.events).toBe(50);
    expect(r.malformed).toBe(3);
    expect(r.malformedLines.map((m) => m.line)).toEqual([21, 22, 53]);
    const run = await cli(["stats", path]);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`${path}:21: malformed line`);
    expect(run.stderr).toContain("3 malformed line(s) left out of the statistics");
  });

  test("a long history is charted by month; an empty input has no chart", async () => {
    const naras = generateNaras(3, 4);
    const events = generateEvents({ naras, count: 300, seed: 4, meanGapNs: 86_400_000_000_000 }); // ~a day apart
    const r = await backupStats({ inputs: [file(lines(events))] });
    expect(r.timeline.by).toBe("month");
    expect(r.timeline.buckets.reduce((n, b) => n + b.events, 0)).toBe(300);
    expect(r.timeline.buckets[0]!.start).toBe("2026-01-01T00:00:00Z");
    expect(r.timeline.buckets[1]!.start).toBe("2026-02-01T00:00:00Z");
    const empty = await backupStats({ inputs: [file("")] });
    expect(empty.events).toBe(0);
    expect(empty.first).toBeNull();
    expect(renderStats(empty)).not.toContain("events per");
  });

  test("bars: proportional, in eighths, never empty for a non-zero count", () => {
    expect(bar(10, 10, 4)).toBe("████");
    expect(bar(5, 10, 4)).toBe("██");
    expect(bar(1, 80, 10)).toBe("▏");
    expect(bar(0, 10, 4)).toBe("");
    expect(bar(3, 8, 1)).toBe("▍");
  });
});

describe("shared pieces", () => {
  test("columns: first column left, numbers right, two spaces apart, no trailing blanks; any alignment", () => {
    expect(columns([["a", "1", ""], ["bbb", "22", "x"]], { indent: "  " })).toEqual(["  a     1", "  bbb  22  x"]);
    expect(columns([["NAME", "ADDR"], ["alice", "h:1"]], { align: () => "left" })).toEqual(["NAME   ADDR", "alice  h:1"]);
  });

  test("inputList: none is stdin, stdin once, at most MAX_INPUTS", () => {
    expect(inputList([])).toEqual(["-"]);
    expect(inputList(["a", "-"])).toEqual(["a", "-"]);
    expect(() => inputList(["-", "-"])).toThrow("stdin (-) can be read only once");
    expect(() => inputList(Array.from({ length: MAX_INPUTS + 1 }, (_, i) => `f${i}`))).toThrow(`too many inputs (at most ${MAX_INPUTS})`);
  });

  test("parseBucket: hour, day or month", () => {
    expect(parseBucket("day")).toBe("day");
    expect(() => parseBucket("week")).toThrow('--by: "week" is not hour, day or month');
  });
});
