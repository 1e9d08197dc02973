// The dump's collector on its own: dedup, the signed-copy rule, and draining in ts order floor by floor.
import { describe, expect, test } from "bun:test";
import { AFTER_ALL, BEFORE_ALL, Collector, type TsFloor } from "../src/dump/collect.ts";
import { splitTsInto } from "../src/events/scan.ts";
import { pageBatch } from "./sim/batch.ts";
import { generateEvents, generateNaras, type SimEvent } from "./sim/generate.ts";

const enc = new TextEncoder();
const batch = (raws: string[], floor: TsFloor = BEFORE_ALL) => pageBatch(raws, floor);

const tsFloor = (ts: bigint): TsFloor => {
  const hi = new Float64Array(1);
  const lo = new Float64Array(1);
  const t = enc.encode(ts.toString());
  splitTsInto(t, 0, t.length, hi, lo, 0);
  return { hi: hi[0]!, lo: lo[0]! };
};

function drainText(c: Collector, floor: TsFloor): string {
  let out = "";
  for (const chunk of c.lines(c.drain(floor), 256)) out += new TextDecoder().decode(chunk);
  return out;
}

const byTsId = (a: SimEvent, b: SimEvent) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1);
const linesOf = (evs: SimEvent[]) => evs.map((e) => `${e.raw}\n`).join("");

const naras = generateNaras(4, 5);
const events = generateEvents({ naras, count: 600, seed: 5 });
const sorted = [...events].sort(byTsId);

describe("drain", () => {
  test("floor by floor gives the same bytes as all at once, each drain only what is below its floor", () => {
    const whole = new Collector();
    whole.add(batch(events.map((e) => e.raw)));
    const all = drainText(whole, AFTER_ALL);
    expect(all).toBe(linesOf(sorted));

    // Events arrive in three unordered pages; floors at three timestamps that several events share or not.
    const c = new Collector();
    for (let p = 0; p < 3; p++) c.add(batch(events.filter((_, i) => i % 3 === p).map((e) => e.raw)));
    const cuts = [sorted[100]!.ts, sorted[100]!.ts, sorted[350]!.ts, sorted[599]!.ts];
    let out = "";
    for (const cut of cuts) {
      const part = drainText(c, tsFloor(cut));
      // Strictly below the floor: events at the floor's ts stay held.
      expect(part).toBe(linesOf(sorted.filter((e) => e.ts < cut && !out.includes(e.raw))));
      out += part;
    }
    expect(c.heldEvents).toBe(sorted.filter((e) => e.ts >= cuts.at(-1)!).length);
    out += drainText(c, AFTER_ALL);
    expect(out).toBe(all);
    expect(c.heldEvents).toBe(0);
  });

  test("a copy arriving after its event was drained is a duplicate, never a second line", () => {
    const c = new Collector();
    c.add(batch(sorted.slice(0, 10).map((e) => e.raw)));
    const first = drainText(c, AFTER_ALL);
    c.add(batch(sorted.slice(0, 10).map((e) => e.raw)));
    expect(drainText(c, AFTER_ALL)).toBe("");
    expect(first).toBe(linesOf(sorted.slice(0, 10)));
    expect(c.stats).toMatchObject({ unique: 10, duplicates: 10, late: 0 });
  });

  test("a signed copy replaces a held unsigned one, not a drained one", () => {
    const signed = sorted.filter((e) => e.signed).slice(0, 4);
    expect(signed.length).toBe(4);
    const stripped = signed.map((e) => e.raw.replace(/,"sig":"[^"]*"/, ""));
    const c = new Collector();
    c.add(batch(stripped));
    // The first two are drained unsigned; the last two are still held when the signed copies come.
    const out = drainText(c, tsFloor(signed[2]!.ts));
    c.add(batch(signed.map((e) => e.raw)));
    const rest = drainText(c, AFTER_ALL);
    expect(out).toBe(`${stripped[0]}\n${stripped[1]}\n`);
    expect(rest).toBe(`${signed[2]!.raw}\n${signed[3]!.raw}\n`);
    expect(c.stats).toMatchObject({ unique: 4, duplicates: 4, replaced: 2 });
  });

  test("an event older than what was drained is kept, written, and counted as late", () => {
    const c = new Collector();
    c.add(batch(sorted.slice(5, 20).map((e) => e.raw)));
    const out = drainText(c, tsFloor(sorted[19]!.ts + 1n));
    c.add(batch(sorted.slice(0, 5).map((e) => e.raw)));
    expect(c.stats.late).toBe(5);
    expect(out + drainText(c, AFTER_ALL)).toBe(linesOf([...sorted.slice(5, 20), ...sorted.slice(0, 5)]));
  });

  test("a page out of ts order (a peer breaking the rules) still drains in order", () => {
    const c = new Collector();
    const page = sorted.slice(0, 200);
    const shuffled = [...page].reverse();
    c.add(batch(shuffled.slice(0, 100).map((e) => e.raw)));
    c.add(batch(shuffled.slice(100).map((e) => e.raw)));
    const cut = page[120]!.ts;
    const first = drainText(c, tsFloor(cut));
    expect(first).toBe(linesOf(page.filter((e) => e.ts < cut)));
    expect(first + drainText(c, AFTER_ALL)).toBe(linesOf(page));
  });

  test("drained chunks are reused: memory follows what is held, not what was fetched", () => {
    const many = generateEvents({ naras, count: 40_000, seed: 6 }).sort(byTsId);
    const c = new Collector();
    let written = 0;
    const page = 2000;
    for (let p = 0; p < many.length; p += page) {
      c.add(batch(many.slice(p, p + page).map((e) => e.raw)));
      // The floor trails one page behind: at most two pages are held at once.
      if (p > 0) for (const chunk of c.lines(c.drain(tsFloor(many[p]!.ts)))) written += chunk.length;
    }
    for (const chunk of c.lines(c.drain(AFTER_ALL))) written += chunk.length;
    const total = many.reduce((n, e) => n + Buffer.byteLength(e.raw) + 1, 0);
    expect(written).toBe(total);
    expect(total).toBeGreaterThan(10 << 20);
    expect(c.stats.peakHeldBytes).toBeLessThan(total / 5);
    expect(c.arenaBytes).toBeLessThanOrEqual(3 * (4 << 20));
  });

  test("string ids sort among hex ids as strings, and dedup by their key", () => {
    const raw = (id: string, ts: string) => `{"id":"${id}","ts":${ts},"svc":"zine"}`;
    const c = new Collector();
    c.add(batch([raw("zz", "5"), raw("00000000000000000000000000000000", "5"), raw("AA", "5"), raw("zz", "5")]));
    expect(drainText(c, AFTER_ALL)).toBe(
      `${raw("00000000000000000000000000000000", "5")}\n${raw("AA", "5")}\n${raw("zz", "5")}\n`,
    );
    expect(c.stats.duplicates).toBe(1);
  });
});
