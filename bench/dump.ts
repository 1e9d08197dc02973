/**
 * The dump benchmark: a simulated mesh in its own process, then our client
 * and the naive one (bench/naive.ts) alternately, each in a fresh process.
 * Prints a Markdown report for bench/RESULTS.md.
 *
 *   bun bench/dump.ts [--peers 32] [--per-peer 20000] [--rounds 3] [--latency-page-size 500] [--outputs]
 *
 * --outputs also runs the CLI once per output kind (plain, --encrypt,
 * .zst, .zst --encrypt) on the same mesh: wall time and peak RSS.
 */
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawnMesh } from "./mesh-process.ts";

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const peers = arg("peers", 32);
const perPeer = arg("per-peer", 20000);
const rounds = arg("rounds", 3);
const bun = process.execPath;
const here = import.meta.dir;
const dir = mkdtempSync(join(tmpdir(), "nara-bench-"));

type Mesh = { line: string; unique: number; uniqueBytes: number; expectedSha256: string; peers: { events: number }[]; stop(): void };
type Run = {
  which: string;
  seconds: number;
  fetchSeconds?: number;
  written: number;
  sha256: string;
  maxRssMiB: number;
  peakHeldMiB?: number;
  maxPeerPages?: number;
};

async function startMesh(latency: number): Promise<Mesh> {
  const m = await spawnMesh(["--peers", String(peers), "--per-peer", String(perPeer), "--latency", String(latency)]);
  return { line: m.line, ...m.info, stop: m.stop } as Mesh;
}

function run(which: "ours" | "naive", mesh: Mesh, env: Record<string, string> = {}): Run {
  const out = join(dir, `${which}.jsonl`);
  const p = Bun.spawnSync([bun, join(here, "client.ts"), which, mesh.line, out], { env: { ...process.env, ...env } });
  if (p.exitCode !== 0) throw new Error(`${which} failed: ${p.stderr.toString()}`);
  rmSync(out, { force: true });
  return JSON.parse(p.stdout.toString()) as Run;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(`${s}\n`);

log(`starting mesh: ${peers} peers x ${perPeer} events`);
const mesh = await startMesh(0);
const fetched = mesh.peers.reduce((n, p) => n + p.events, 0);
log(`mesh up: ${mesh.unique} unique events, ${fetched} served in all, ${(mesh.uniqueBytes / 2 ** 20).toFixed(1)} MiB unique`);
run("ours", mesh); // warm the mesh's page caches: both clients then see the same server
const results: Record<string, Run[]> = { ours: [], naive: [] };
for (let r = 0; r < rounds; r++) {
  for (const which of ["ours", "naive"] as const) {
    const res = run(which, mesh);
    results[which]!.push(res);
    log(`${which}: ${res.seconds.toFixed(2)} s, ${res.written} written, ${res.maxRssMiB} MiB peak RSS`);
  }
}
type OutputRun = { kind: string; seconds: number; maxRssMiB: number; bytes: number };
const outputRuns: OutputRun[] = [];
if (process.argv.includes("--outputs")) {
  const m = JSON.parse(mesh.line) as { peers: { name: string; url: string }[]; name: string; soul: string };
  const peerList = m.peers.map((p) => `${p.name}=${new URL(p.url).host}`).join(",");
  for (const [kind, file, extra] of [
    ["-o FILE", "out.jsonl", []],
    ["-o FILE --encrypt", "out.jsonl", ["--encrypt"]],
    ["-o FILE.zst", "out.jsonl.zst", []],
    ["-o FILE.zst --encrypt", "out.jsonl.zst", ["--encrypt"]],
  ] as const) {
    const out = join(dir, file);
    const t0 = performance.now();
    const p = Bun.spawnSync([bun, join(here, "../src/cli.ts"), "dump-events", "--name", m.name, "--peers", peerList, "-o", out, ...extra, "--quiet"], {
      env: { ...process.env, NARA_SOUL: m.soul },
    });
    const seconds = (performance.now() - t0) / 1000;
    if (p.exitCode !== 0) throw new Error(`dump-events ${kind} failed: ${p.stderr.toString()}`);
    const bytes = Bun.file(out).size;
    rmSync(out, { force: true });
    outputRuns.push({ kind, seconds, maxRssMiB: Math.round((p.resourceUsage?.maxRSS ?? 0) / 2 ** 20), bytes });
    log(`dump-events ${kind}: ${seconds.toFixed(2)} s, ${outputRuns.at(-1)!.maxRssMiB} MiB peak RSS`);
  }
}
mesh.stop();

const latencyPageSize = arg("latency-page-size", 500);
log(`starting mesh with 50 ms latency (page size ${latencyPageSize})`);
const slow = await startMesh(50);
const latencyRuns: Run[] = [];
for (let r = 0; r < rounds; r++) {
  const out = join(dir, "latency.jsonl");
  const p = Bun.spawnSync([bun, join(here, "client.ts"), "ours", slow.line, out], { env: { ...process.env, BENCH_PAGE_SIZE: String(latencyPageSize) } });
  if (p.exitCode !== 0) throw new Error(p.stderr.toString());
  latencyRuns.push(JSON.parse(p.stdout.toString()));
  rmSync(out, { force: true });
}
slow.stop();
rmSync(dir, { recursive: true, force: true });

const ours = results.ours!;
const naive = results.naive!;
const oursRate = fetched / median(ours.map((r) => r.seconds));
const naiveRate = fetched / median(naive.map((r) => r.seconds));
const oursCorrect = ours.every((r) => r.sha256 === mesh.expectedSha256 && r.written === mesh.unique);
const naiveCorrect = naive.every((r) => r.sha256 === mesh.expectedSha256);
const maxPeer = Math.max(...slow.peers.map((p) => p.events));
// The slowest peer's pages, one after the other, each one round trip (its /ping goes out with the first page).
const requests = Math.max(...latencyRuns.map((r) => r.maxPeerPages ?? 0));
const latencyFloor = (requests * 50) / 1000;

const cpu = cpus()[0]?.model ?? "unknown";
const fmt = (n: number, d = 2) => n.toFixed(d);
process.stdout.write(`### ${new Date().toISOString().slice(0, 10)}: ${peers} peers x ${perPeer} events, 50 % overlap

Machine: ${cpus().length} cores (${cpu}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Bun ${Bun.version}.
Command: \`bun bench/dump.ts --peers ${peers} --per-peer ${perPeer} --rounds ${rounds}\` (medians of ${rounds} runs, each client in a fresh process, the mesh in another).

Mesh: ${mesh.unique} unique events (${fmt(mesh.uniqueBytes / 2 ** 20, 1)} MiB as JSON Lines), ${fetched} served in all, 5000-event pages.

| client | wall s | events/s (served) | peak RSS MiB | output correct |
| --- | --- | --- | --- | --- |
| nara-backup | ${fmt(median(ours.map((r) => r.seconds)))} | ${Math.round(oursRate)} | ${median(ours.map((r) => r.maxRssMiB))} (events held at once: ${median(ours.map((r) => r.peakHeldMiB ?? 0))}) | ${oursCorrect ? "yes (sha256 matches the mesh)" : "**NO**"} |
| naive (JSON.parse, Map, stringify) | ${fmt(median(naive.map((r) => r.seconds)))} | ${Math.round(naiveRate)} | ${median(naive.map((r) => r.maxRssMiB))} | ${naiveCorrect ? "yes" : `no (${naive[0]!.written} of ${mesh.unique} events; bytes re-encoded)`} |

- Speed-up: ${fmt(oursRate / naiveRate)}x the naive client's events/s (target ≥ 1.8x); round by round (each pair run back to back): ${ours.map((r, i) => fmt(naive[i]!.seconds / r.seconds)).join(", ")}.
- Peak RSS: ${median(ours.map((r) => r.maxRssMiB))} MiB = ${fmt((median(ours.map((r) => r.maxRssMiB)) * 2 ** 20) / mesh.uniqueBytes)}x the unique output bytes (target < 2x).
- With 50 ms latency on every response and ${latencyPageSize}-event pages: the slowest peer (${maxPeer} events) took ${requests} pages, one after the other = ${fmt(latencyFloor)} s of latency alone. Fetch phase ${fmt(median(latencyRuns.map((r) => r.fetchSeconds ?? r.seconds)))} s, whole dump ${fmt(median(latencyRuns.map((r) => r.seconds)))} s: ${fmt((median(latencyRuns.map((r) => r.seconds)) / latencyFloor - 1) * 100, 0)} % over that floor for the whole dump (target within 15 %).
`);
if (outputRuns.length > 0) {
  process.stdout.write(`
The CLI on the same mesh, one run per output (wall includes starting the process; peak RSS of the whole process):

| output | wall s | peak RSS MiB | file MB |
| --- | --- | --- | --- |
${outputRuns.map((r) => `| \`${r.kind}\` | ${fmt(r.seconds)} | ${r.maxRssMiB} | ${fmt(r.bytes / 1e6, 1)} |`).join("\n")}
`);
}
