/**
 * restore-events into a nara that does a real nara's import work, beside the
 * Go tool's algorithm, in the same run:
 *
 *   bun bench/restore.ts [--events 180670] [--rounds 1] [--in-flight 1] [--only ours,go,go-raw] [--before PATH]
 *
 * --before PATH also measures another nara-backup entry point (an older
 * checkout's src/cli.ts), to compare before and after in one run.
 *
 * The backup is 16 naras' history from test/sim/generate.ts (hey-there events
 * scattered through it, as when naras restart), sorted by ts as a dump
 * writes it, cached in $TMPDIR. Each client run gets a fresh nara
 * (bench/serve-nara.ts) in its own process: it learns keys from hey-there
 * events, verifies signatures, recomputes IDs, one batch at a time. Per run:
 * wall, client CPU (user+sys) and peak RSS of the client process
 * (/usr/bin/time), and the nara's CPU during the run (/proc/<pid>/stat,
 * before and after). The Go algorithm is bench/go-restore.ts: "go" decodes
 * and re-encodes as the Go tool does, "go-raw" sends the lines as read.
 */
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateEvents, generateNaras } from "../test/sim/generate.ts";

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
};
const count = Number(arg("events", "180670"));
const rounds = Number(arg("rounds", "1"));
const inFlight = arg("in-flight", "");
const only = arg("only", "");
const before = arg("before", "");
const seed = 9;
const here = import.meta.dir;
const bun = process.execPath;
const log = (m: string) => process.stderr.write(`${m}\n`);

// ---- the backup
const file = join(tmpdir(), `nara-bench-restore-${count}-${seed}.jsonl`);
if (!existsSync(file)) {
  log(`generating ${count} events -> ${file}`);
  const naras = generateNaras(16, seed);
  const events = generateEvents({ naras, count, seed, heyThereFirst: false });
  const sink = Bun.file(`${file}.tmp`).writer();
  for (const e of events) sink.write(`${e.raw}\n`);
  await sink.end();
  renameSync(`${file}.tmp`, file);
}
const fileBytes = Bun.file(file).size;

// ---- one run
const TICK_S = 0.01; // USER_HZ on Linux
function procCpu(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_S; // utime, stime (fields 14, 15)
}

type Client = "ours" | "before" | "go" | "go-raw";
type Run = { wall: number; cpu: number; rssMiB: number; naraCpu: number; imported: number; warnings: number; held: number; ok: boolean };

async function run(client: Client): Promise<Run> {
  const nara = Bun.spawn([bun, join(here, "serve-nara.ts")], { stdout: "pipe", stderr: "inherit" });
  try {
    const reader = nara.stdout.getReader();
    let text = "";
    while (!text.includes("\n")) {
      const r = await reader.read();
      if (r.done) throw new Error("the nara exited");
      text += new TextDecoder().decode(r.value);
    }
    const info = JSON.parse(text) as { url: string; stats: string; name: string; soul: string };
    const cmd =
      client === "ours" || client === "before"
        ? [bun, client === "ours" ? join(here, "../src/cli.ts") : before, "restore-events", "--nara-url", info.url, "--name", info.name, "--json", ...(inFlight && client === "ours" ? ["--in-flight", inFlight] : []), file]
        : [bun, join(here, "go-restore.ts"), info.url, info.name, file, ...(client === "go-raw" ? ["--raw"] : [])];
    const timeFile = join(tmpdir(), `nara-bench-restore-time-${process.pid}`);
    const cpu0 = procCpu(nara.pid);
    const t0 = performance.now();
    const proc = Bun.spawn(["/usr/bin/time", "-f", "%U %S %M", "-o", timeFile, ...cmd], { stdout: "pipe", stderr: "pipe", env: { ...process.env, NARA_SOUL: info.soul } });
    const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    await proc.exited;
    const wall = (performance.now() - t0) / 1000;
    const naraCpu = procCpu(nara.pid) - cpu0;
    const [user, sys, maxKb] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(" ").map(Number) as [number, number, number];
    rmSync(timeFile, { force: true });
    if (proc.exitCode !== 0) throw new Error(`${client} exited ${proc.exitCode}: ${err.slice(-2000)}`);
    const summary = JSON.parse(client === "ours" || client === "before" ? err.trim().split("\n").pop()! : out) as { imported: number; warnings: number };
    const stats = (await (await fetch(info.stats)).json()) as { held: number; warnings: number; refused: number; idMismatches: number };
    return {
      wall,
      cpu: user + sys,
      rssMiB: maxKb / 1024,
      naraCpu,
      imported: summary.imported,
      warnings: stats.warnings,
      held: stats.held,
      // The re-encoding client rounds ts (see go-restore.ts): its IDs no longer match, as expected.
      ok: stats.held === count && stats.refused === 0 && (client === "go" || stats.idMismatches === 0),
    };
  } finally {
    nara.kill();
    await nara.exited;
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const results: Record<Client, Run[]> = { ours: [], before: [], go: [], "go-raw": [] };
const clients = (only ? only.split(",") : ["ours", "go", "go-raw"]) as Client[];
if (before) clients.splice(1, 0, "before");
for (let r = 0; r < rounds; r++) {
  for (const c of clients) {
    const x = await run(c);
    results[c].push(x);
    log(
      `round ${r + 1} ${c}: wall ${x.wall.toFixed(2)} s, client cpu ${x.cpu.toFixed(2)} s, rss ${x.rssMiB.toFixed(0)} MiB, ` +
        `nara cpu ${x.naraCpu.toFixed(2)} s (wall/nara ${(x.wall / x.naraCpu).toFixed(3)}), warnings ${x.warnings}, held ${x.held}${x.ok ? "" : " NOT OK"}`,
    );
  }
}

const row = (name: string, rs: Run[]) =>
  `| ${name} | ${median(rs.map((x) => x.wall)).toFixed(2)} | ${median(rs.map((x) => x.cpu)).toFixed(2)} | ${median(rs.map((x) => x.naraCpu)).toFixed(2)} | ` +
  `${median(rs.map((x) => x.wall / x.naraCpu)).toFixed(3)} | ${median(rs.map((x) => x.rssMiB)).toFixed(0)} | ${median(rs.map((x) => x.warnings))} | ${rs.every((x) => x.ok) ? "yes" : "NO"} |`;
const lines = [
  `${count} events (${(fileBytes / 1048576).toFixed(1)} MiB), medians of ${rounds} run(s), a fresh nara for each:`,
  "",
  "| client | wall s | client CPU s | nara CPU s | wall / nara CPU | peak RSS MiB | nara warnings | all imported |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...(results.ours.length ? [row(`restore-events${inFlight ? ` --in-flight ${inFlight}` : ""}`, results.ours)] : []),
  ...(results.before.length ? [row(`restore-events before (${before})`, results.before)] : []),
  ...(results.go.length ? [row("Go algorithm: decode, re-encode, batches of 2000 one after another", results.go)] : []),
  ...(results["go-raw"].length ? [row("Go algorithm, raw lines sent (no re-encoding)", results["go-raw"])] : []),
];
for (const other of ["before", "go", "go-raw"] as const) {
  if (!results.ours.length || !results[other].length) continue;
  const ratios = results.ours.map((x, i) => x.cpu / results[other][i]!.cpu);
  lines.push("", `Client CPU, ours / ${other}, round by round: ${ratios.map((x) => x.toFixed(2)).join(", ")} (median ${median(ratios).toFixed(2)}).`);
}
process.stdout.write(`${lines.join("\n")}\n`);
