/**
 * Runs one client once against a running bench mesh and prints one JSON
 * line: { seconds, fetchSeconds, written, sha256, maxRssMiB, cpuSeconds, peakHeldMiB, maxPeerPages }. `ours` is dumpEvents with
 * its defaults; `naive` is bench/naive.ts with every peer at once, `go` the same
 * with the Go tool's 5 workers (one cursor per peer).
 *
 *   bun bench/client.ts ours|naive|go MESH_JSON OUT
 */
import { dumpEvents } from "../src/dump/dump.ts";
import { defaultWorkers } from "../src/commands/dump-events.ts";
import { parseSoul } from "../src/identity/soul.ts";
import { naiveDump } from "./naive.ts";

const [which, meshJson, out] = process.argv.slice(2) as [string, string, string];
const mesh = JSON.parse(meshJson) as { peers: { name: string; url: string }[]; name: string; soul: string };
const t0 = performance.now();
let written: number;
let fetchSeconds: number | undefined;
/** The most event bytes our client held in memory at once. */
let peakHeldMiB: number | undefined;
/** Pages of the peer that needed the most (the latency floor is that many round trips). */
let maxPeerPages: number | undefined;
if (which === "ours") {
  const s = await dumpEvents(
    {
      peers: mesh.peers,
      name: mesh.name,
      soul: mesh.soul,
      settings: { timeoutMs: 600_000, pageSize: Number(process.env.BENCH_PAGE_SIZE ?? 5000), strict: false, backoffMs: 250, maxBackoffMs: 5000, inflightBytes: process.env.BENCH_INFLIGHT ? Number(process.env.BENCH_INFLIGHT) : undefined, streamsPerPeer: process.env.BENCH_STREAMS ? Number(process.env.BENCH_STREAMS) : undefined },
      workers: Number(process.env.BENCH_WORKERS ?? defaultWorkers()),
      concurrency: 64,
      output: out,
    },
    { onPeerDone: (_, p) => { if (p.peersDone === p.peersTotal) fetchSeconds = (performance.now() - t0) / 1000; } },
  );
  if (s.exitCode !== 0) throw new Error(`dump exit ${s.exitCode}: ${JSON.stringify(s.peers.filter((p) => p.status !== "ok"))}`);
  written = s.written;
  peakHeldMiB = Math.round(s.peakHeldBytes / 2 ** 20);
  maxPeerPages = Math.max(...s.peers.map((p) => p.pages));
} else {
  written = (await naiveDump(mesh.peers, parseSoul(mesh.soul, mesh.name), out, 5000, which === "go" ? 5 : mesh.peers.length)).written;
}
const seconds = (performance.now() - t0) / 1000;
// Peak RSS before checking the output: reading it back is the harness's cost, not the client's.
const usage = process.resourceUsage();
const maxRssMiB = Math.round(usage.maxRSS / 1024);
const cpuSeconds = (usage.userCPUTime + usage.systemCPUTime) / 1e6;
const hasher = new Bun.CryptoHasher("sha256");
for await (const chunk of Bun.file(out).stream()) hasher.update(chunk);
const sha256 = hasher.digest("hex");
process.stdout.write(`${JSON.stringify({ which, seconds, fetchSeconds, written, sha256, maxRssMiB, cpuSeconds, peakHeldMiB, maxPeerPages })}\n`);
