/**
 * The WAN benchmark: each case's mesh in its own process in the simulator's
 * WAN mode (test/sim/wan.ts), then our client and the Go tool's algorithm
 * (bench/naive.ts with 5 workers, one cursor per peer) alternately, each in a
 * fresh process. Beside each wall time: the one-cursor critical path
 * ((pages of the largest peer + 1) round trips) and the link floor (bytes of
 * the largest peer over its uplink). Prints a Markdown report for bench/RESULTS.md.
 *
 *   bun bench/wan.ts [--rounds 1] [--cases lat200,lat300,bw,cpu] [--big] [--base DIR]
 *
 * --base DIR also runs DIR's bench/client.ts (a checkout of an earlier commit) as "before".
 */
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { mkdtempSync, rmSync } from "node:fs";
import { spawnMesh } from "./mesh-process.ts";

type Case = { key: string; title: string; peers: number; perPeer: number; rtt: number; bandwidth?: number };
const CASES: Case[] = [
  { key: "lat200", title: "8 × 20 000, 200 ms", peers: 8, perPeer: 20000, rtt: 200 },
  { key: "lat300", title: "2 × 45 000 (latency-bound), 300 ms", peers: 2, perPeer: 45000, rtt: 300 },
  { key: "bw", title: "8 × 20 000, 2 MiB/s per peer shared, 50 ms (bandwidth-bound)", peers: 8, perPeer: 20000, rtt: 50, bandwidth: 2 << 20 },
  { key: "cpu", title: "16 × 20 000 on loopback (CPU-bound)", peers: 16, perPeer: 20000, rtt: 0 },
  { key: "big", title: "8 × 150 000 (big mesh), 200 ms", peers: 8, perPeer: 150000, rtt: 200 },
];

const argOf = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
};
const rounds = Number(argOf("rounds") ?? 1);
const base = argOf("base");
const keys = (argOf("cases") ?? "lat200,lat300,bw,cpu").split(",");
if (process.argv.includes("--big")) keys.push("big");
const PAGE = 5000;
/** Server time per page per ledger event: a small machine filtering and sorting its ledger for each page. */
const COST_NS = 100;
const bun = process.execPath;
const here = import.meta.dir;
const dir = mkdtempSync(join(tmpdir(), "nara-wan-bench-"));
const log = (s: string) => process.stderr.write(`${s}\n`);

type MeshInfo = { line: string; unique: number; expectedSha256: string; peers: { events: number; bytes: number }[]; stop(): void };
type Run = { seconds: number; written: number; sha256: string; maxRssMiB: number; cpuSeconds: number; maxPeerPages?: number };

async function startMesh(c: Case): Promise<MeshInfo> {
  const args = ["--peers", c.peers, "--per-peer", c.perPeer, "--rtt", c.rtt, "--jitter", Math.round(c.rtt / 10), "--cost-ns", c.rtt ? COST_NS : 0];
  if (c.bandwidth) args.push("--bandwidth", c.bandwidth);
  const m = await spawnMesh(args.map(String));
  return { line: m.line, ...m.info, stop: m.stop } as MeshInfo;
}

function run(which: "ours" | "go" | "before", mesh: MeshInfo, env: Record<string, string> = {}): Run {
  const out = join(dir, `${which}.jsonl`);
  const client = which === "before" ? join(base!, "bench/client.ts") : join(here, "client.ts");
  const p = Bun.spawnSync([bun, client, which === "before" ? "ours" : which, mesh.line, out], { env: { ...process.env, ...env } });
  rmSync(out, { force: true });
  if (p.exitCode !== 0) throw new Error(`${which} failed: ${p.stderr.toString()}`);
  return JSON.parse(p.stdout.toString()) as Run;
}

/** Pages one cursor needs for n events: each page after the first re-reads its boundary ts (one event, without ties). */
const oneCursorPages = (n: number): number => (n <= PAGE ? 1 : 1 + Math.ceil((n - PAGE) / (PAGE - 1)));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, d = 2) => n.toFixed(d);

const rows: string[] = [];
const notes: string[] = [];
for (const key of keys) {
  const c = CASES.find((x) => x.key === key);
  if (!c) throw new Error(`unknown case ${key}`);
  log(`${c.title}: starting mesh`);
  const mesh = await startMesh(c);
  const largest = mesh.peers.reduce((a, p) => (p.events > a.events ? p : a));
  const critical = ((oneCursorPages(largest.events) + 1) * c.rtt) / 1000;
  const linkFloor = c.bandwidth ? largest.bytes / c.bandwidth : undefined;
  const ours: Run[] = [];
  const go: Run[] = [];
  const before: Run[] = [];
  try {
    // One run not counted: the mesh process's JIT and page caches warm, so that no client's first round pays for them.
    run("ours", mesh);
    for (let r = 0; r < rounds; r++) {
      for (const which of base ? (["ours", "go", "before"] as const) : (["ours", "go"] as const)) {
        const res = run(which, mesh);
        (which === "ours" ? ours : which === "go" ? go : before).push(res);
        log(`  ${which}: ${fmt(res.seconds)} s wall, ${fmt(res.cpuSeconds)} CPU-s, ${res.maxRssMiB} MiB peak RSS`);
      }
    }
  } finally {
    // A client that fails must not leave the mesh process (and the pipe a caller reads) behind.
    mesh.stop();
  }
  const w = median(ours.map((r) => r.seconds));
  const g = median(go.map((r) => r.seconds));
  const correct = ours.every((r) => r.sha256 === mesh.expectedSha256 && r.written === mesh.unique);
  const b = before.length ? `${fmt(median(before.map((r) => r.seconds)))} s, ${fmt(median(before.map((r) => r.cpuSeconds)))} CPU-s, ${median(before.map((r) => r.maxRssMiB))} MiB` : "—";
  rows.push(
    `| ${c.title} | ${fmt(w)} | ${b} | ${fmt(g)} | ${fmt(w / g)} | ${c.rtt ? `${fmt(critical)} (${fmt(w / critical)}×)` : "—"} | ${linkFloor ? `${fmt(linkFloor)} (${fmt(w / linkFloor)}×)` : "—"} | ${fmt(median(ours.map((r) => r.cpuSeconds)))} / ${fmt(median(go.map((r) => r.cpuSeconds)))} | ${median(ours.map((r) => r.maxRssMiB))} / ${median(go.map((r) => r.maxRssMiB))} | ${correct ? "yes" : "**NO**"} |`,
  );
  if (rounds > 1) notes.push(`${c.key}: ours ${ours.map((r) => fmt(r.seconds)).join(", ")}; Go ${go.map((r) => fmt(r.seconds)).join(", ")}${before.length ? `; before ${before.map((r) => fmt(r.seconds)).join(", ")}` : ""}`);
}
rmSync(dir, { recursive: true, force: true });

process.stdout.write(`### ${new Date().toISOString().slice(0, 10)}: WAN cases (\`bun bench/wan.ts --rounds ${rounds} --cases ${keys.join(",")}\`)

Machine: ${cpus().length} cores (${cpus()[0]?.model ?? "unknown"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Bun ${Bun.version}. ${PAGE}-event pages, jitter 10 % of the round trip, server cost ${COST_NS} ns per ledger event per page (WAN cases); medians of ${rounds}; each client a fresh process, the mesh in another.

| case | ours s | before: wall, CPU, peak RSS | Go algorithm s | ratio | one-cursor critical path s (ours ×) | link floor s (ours ×) | CPU-s ours / Go | peak RSS MiB ours / Go | output correct |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join("\n")}
${notes.length ? `\nRuns: ${notes.join("; ")}.\n` : ""}`);
