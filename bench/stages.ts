/**
 * The dump's stages alone, in one thread, without HTTP: the worker's scan
 * of a 5000-event page, and the collector fed 32 peers' pages round robin
 * (add, drain at the lowest peer floor, lines), as in a benchmark dump.
 * For comparing changes to one stage; bench/dump.ts measures the whole.
 *
 *   bun bench/stages.ts [--rounds 5]
 */
import { AFTER_ALL, Collector, lowerFloor, type TsFloor } from "../src/dump/collect.ts";
import type { PageBatch } from "../src/dump/messages.ts";
import { scanSyncPage } from "../src/events/scan.ts";
import { pageBatch } from "../test/sim/batch.ts";
import { generateEvents, generateNaras, Rng, type SimEvent } from "../test/sim/generate.ts";

const i = process.argv.indexOf("--rounds");
const rounds = i === -1 ? 5 : Number(process.argv[i + 1]);
const enc = new TextEncoder();
const PEERS = 32;
const OWN = 10_000;
const PAGE = 5000;

const batch = (events: SimEvent[]): PageBatch => pageBatch(events.map((e) => e.raw));

// The benchmark mesh's holdings: each peer its own 10 000 events and 10 000 of the others'.
const naras = generateNaras(PEERS + 1, 1);
const all = generateEvents({ naras, count: PEERS * OWN, seed: 1 });
const rng = new Rng(1);
const shuffled = rng.shuffle([...all]);
const byTs = (a: SimEvent, b: SimEvent) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0);
const holdings = Array.from({ length: PEERS }, (_, p) => {
  const others = new Set<number>();
  while (others.size < OWN) {
    const j = rng.int(shuffled.length);
    if (Math.floor(j / OWN) !== p) others.add(j);
  }
  return [...shuffled.slice(p * OWN, (p + 1) * OWN), ...[...others].map((j) => shuffled[j]!)].sort(byTs);
});
const pages = PEERS * 2 * (OWN / PAGE);
const batches: PageBatch[] = [];
for (let k = 0; k < pages; k++) {
  const p = k % PEERS;
  const r = Math.floor(k / PEERS);
  batches.push(batch(holdings[p]!.slice(r * PAGE, (r + 1) * PAGE)));
}
const body = enc.encode(`{"from":"x","events":[${holdings[0]!.slice(0, PAGE).map((e) => e.raw).join(",")}],"ts":1,"sig":"x"}\n`);

const best = (f: () => void, n: number): number => {
  let min = Infinity;
  for (let r = 0; r < n; r++) {
    const t = performance.now();
    f();
    min = Math.min(min, performance.now() - t);
  }
  return min;
};

let scanned = scanSyncPage(body);
best(() => (scanned = scanSyncPage(body, scanned)), 100);
const scan = best(() => (scanned = scanSyncPage(body, scanned)), 300);
console.log(`scan: ${scan.toFixed(2)} ms per ${(body.length / 1e6).toFixed(2)} MB page (${(body.length / 1e3 / scan).toFixed(0)} MB/s), best of 300`);

for (let r = 0; r < rounds; r++) {
  const c = new Collector();
  const floors: TsFloor[] = Array.from({ length: PEERS }, () => ({ hi: -Infinity, lo: 0 }));
  let add = 0;
  let drain = 0;
  let lines = 0;
  for (let k = 0; k < batches.length; k++) {
    const b = batches[k]!;
    let t = performance.now();
    c.add(b);
    add += performance.now() - t;
    // A peer's floor after its page: that page's last ts (its last page: done).
    floors[k % PEERS] = k >= batches.length - PEERS ? AFTER_ALL : { hi: b.tsHi[b.count - 1]!, lo: b.tsLo[b.count - 1]! };
    let floor = AFTER_ALL;
    for (const f of floors) if (lowerFloor(f, floor)) floor = f;
    t = performance.now();
    const order = c.drain(floor);
    drain += performance.now() - t;
    t = performance.now();
    for (const _ of c.lines(order));
    lines += performance.now() - t;
  }
  console.log(
    `collector: add ${add.toFixed(0)} ms, drain ${drain.toFixed(0)} ms, lines ${lines.toFixed(0)} ms for ${c.stats.fetched} events ` +
      `(${c.stats.unique} unique); held at most ${(c.stats.peakHeldBytes / 2 ** 20).toFixed(0)} MiB, arena ${(c.arenaBytes / 2 ** 20).toFixed(0)} MiB`,
  );
}
