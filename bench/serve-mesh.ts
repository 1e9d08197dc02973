/**
 * The benchmark's mesh, in its own process so that serving does not share a
 * thread with the client being measured. Prints one JSON line on stdout:
 * { peers: [{name,url}], name, soul, unique, expectedSha256 } and serves until killed.
 *
 *   bun bench/serve-mesh.ts --peers 32 --per-peer 20000 --latency 0
 *   bun bench/serve-mesh.ts --peers 8 --per-peer 20000 --rtt 200 --jitter 20 --bandwidth 2097152 --cost-ns 100
 *
 * --rtt/--jitter (ms), --bandwidth (bytes/s per peer, shared by its responses) and
 * --cost-ns (server time per page per ledger event) put every peer in the
 * simulator's WAN mode (test/sim/wan.ts).
 *
 * Each peer holds per-peer/2 events of its own and per-peer/2 drawn from the
 * other peers' own events: half of what a peer serves is served elsewhere too.
 */
import { generateEvents, generateNaras, Rng } from "../test/sim/generate.ts";
import { startPeer } from "../test/sim/peer.ts";

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};
const peerCount = arg("peers", 32);
const perPeer = arg("per-peer", 20000);
const latencyMs = arg("latency", 0);
const seed = arg("seed", 1);
const wanArgs = { rttMs: arg("rtt", 0), jitterMs: arg("jitter", 0), bytesPerSec: arg("bandwidth", 0) || undefined, costNsPerEvent: arg("cost-ns", 0) };
const wan = wanArgs.rttMs || wanArgs.jitterMs || wanArgs.bytesPerSec || wanArgs.costNsPerEvent ? wanArgs : undefined;

const naras = generateNaras(peerCount + 1, seed);
const client = naras[peerCount]!;
const own = perPeer / 2;
const events = generateEvents({ naras, count: peerCount * own, seed });
const rng = new Rng(seed);
const shuffled = rng.shuffle([...events]);
const holdings = naras.slice(0, peerCount).map((_, i) => {
  const mine = shuffled.slice(i * own, (i + 1) * own);
  const others = new Set<number>();
  while (others.size < perPeer - own) {
    const j = rng.int(shuffled.length);
    if (Math.floor(j / own) !== i) others.add(j);
  }
  return [...mine, ...[...others].map((j) => shuffled[j]!)];
});
const knownKeys = { [client.name]: client.publicKey };
// --first-faults '{"hangAfterPages":3}': a broken first peer (bench/hostile.ts).
const firstFaults = process.argv.includes("--first-faults") ? JSON.parse(process.argv[process.argv.indexOf("--first-faults") + 1]!) : {};
const peers = holdings.map((evs, i) =>
  startPeer({ nara: naras[i]!, events: evs, naras, knownKeys, seed: seed + i, faults: { latencyMs, ...(i === 0 ? firstFaults : {}) }, wan, logLimit: 10 }),
);
const sorted = [...events].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1));
const hasher = new Bun.CryptoHasher("sha256");
let bytes = 0;
for (const e of sorted) {
  const line = `${e.raw}\n`;
  hasher.update(line);
  bytes += Buffer.byteLength(line);
}
process.stdout.write(
  `${JSON.stringify({
    // bytes: what a peer serves of its events (their raw bytes), for the link floor.
    peers: peers.map((p, i) => ({ name: p.name, url: p.url, events: p.events.size, bytes: holdings[i]!.reduce((n, e) => n + Buffer.byteLength(e.raw) + 1, 0) })),
    name: client.name,
    soul: client.soul,
    unique: events.length,
    uniqueBytes: bytes,
    expectedSha256: hasher.digest("hex"),
  })}\n`,
);
process.on("SIGTERM", () => process.exit(0));
