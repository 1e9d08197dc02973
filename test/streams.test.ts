// Range-split paging: several cursors per peer give exactly the bytes of one cursor.
import { describe, expect, test } from "bun:test";
import { dumpMesh, expectedDump, scratchDir, testSettings, type DumpRun } from "./helpers/dump.ts";
import type { FetchSettings } from "../src/dump/messages.ts";
import { AFTER_ALL, lowerFloor } from "../src/dump/floor.ts";
import { markOf, MIN_TRIMMED_PAGE, newStream, pageSizeFor, peerFloor, steal } from "../src/dump/streams.ts";
import { ExitCode } from "../src/errors.ts";
import { generateEvents, generateNaras } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";

const scratch = scratchDir("nara-streams-test-");

const dump = (mesh: Pick<SimMesh, "peers" | "client">, over: Partial<FetchSettings> = {}): Promise<DumpRun> =>
  // farMs 0: on loopback every peer counts as far, so that ranges are split.
  dumpMesh(mesh, scratch.fresh("out", ".jsonl"), { settings: testSettings({ farMs: 0, ...over }), workers: 1, concurrency: 16 });

const expected = expectedDump;

/** The split edges the dump logged, by peer: "stream N takes ts X to …". */
const edges = (logs: string[]): { peer: string; ts: bigint }[] =>
  logs.flatMap((l) => {
    const m = /^debug (\S+): stream \d+ takes ts (\d+) to/.exec(l);
    return m ? [{ peer: m[1]!, ts: BigInt(m[2]!) }] : [];
  });

describe("split bookkeeping", () => {
  test("a steal halves the widest range; the edge belongs to the stream above; the floor is the lowest stream's", () => {
    const a = newStream(1, 100n);
    const b = newStream(2, 1000n, 1100n);
    a.end = 1000n;
    a.endMark = markOf(1000n);
    const [c, ...more] = steal([a, b], 3, 5000n, 10n);
    expect(more).toEqual([]);
    expect([c!.from, c!.end, a.end]).toEqual([550n, 1000n, 550n]);
    // Re-reads the edge: "strictly after 549".
    expect(c!.cursor).toBe("549");
    expect(a.endMark).toEqual(c!.startMark);
    expect(peerFloor([c!, b])).toEqual(markOf(550n));
    expect(peerFloor([a, b, c!])).toEqual(markOf(100n));
    expect(peerFloor([])).toEqual(AFTER_ALL);
    // An open range counts up to the newest ts; ranges under two pages' span are left alone.
    const open = newStream(1, 0n);
    expect(steal([open], 2, 100n, 60n)).toEqual([]);
    const [top] = steal([open], 2, 100n, 50n);
    expect([top!.from, top!.end, open.end]).toEqual([50n, undefined, 50n]);
    // Two free slots cut a range in thirds, each numbered; fewer when the pieces would be too narrow.
    const whole = newStream(1, 0n);
    const thirds = steal([whole], 2, 300n, 1n, 2);
    expect(thirds.map((t) => [t.n, t.from, t.end])).toEqual([[2, 100n, 200n], [3, 200n, undefined]]);
    expect(whole.end).toBe(100n);
    expect(steal([newStream(1, 0n)], 2, 300n, 120n, 2).length).toBe(1);
    // A stream that has not seen its first page cannot be split (it may be an old peer that ignores cursors).
    expect(steal([newStream(1)], 2, 10n ** 18n, 1n)).toEqual([]);
    expect(lowerFloor(markOf(549n), c!.startMark)).toBe(true);
  });
});

describe("trimmed pages near a range's end", () => {
  test("the events a range has left, with a margin, when fewer than a full page; never below the minimum", () => {
    // 10 ns per event: 1000 ns left is ~100 events, asked as 100 * 1.15 + 16.
    expect(pageSizeFor(newStream(2, 5000n, 6000n), 5000, 10)).toBe(131);
    expect(pageSizeFor(newStream(2, 5000n, 5010n), 5000, 10)).toBe(MIN_TRIMMED_PAGE);
    // A full page's worth or more left, no end (the top stream), no density yet: full pages.
    expect(pageSizeFor(newStream(2, 0n, 60_000n), 5000, 10)).toBeUndefined();
    expect(pageSizeFor(newStream(2, 5000n), 5000, 10)).toBeUndefined();
    expect(pageSizeFor(newStream(2, 5000n, 6000n), 5000, 0)).toBeUndefined();
    const once = newStream(2, 5000n, 6000n);
    once.untrimmed = true;
    expect(pageSizeFor(once, 5000, 10)).toBeUndefined();
  });

  test("a far peer bound by its link: two cursors, the lower one's last page trimmed, few events served twice", async () => {
    // Evenly spread events: the density estimate holds. 1 MiB/s and 500-event pages: the link is the bottleneck.
    const mesh = await startMesh({ peers: 1, events: 4000, seed: 31, generate: { sharedTsRate: 0 }, wan: { rttMs: 20, bytesPerSec: 1 << 20 } });
    try {
      const r = await dump(mesh, { pageSize: 500 });
      const one = await dump(mesh, { pageSize: 500, streamsPerPeer: 1 });
      expect(r.summary.exitCode).toBe(ExitCode.ok);
      expect(r.text).toBe(one.text!);
      expect(r.text).toBe(expected(mesh.allEvents));
      const [peer] = r.summary.peers;
      expect(peer!.streams).toBeGreaterThanOrEqual(2);
      const sizes = mesh.peers[0]!.stats.syncLog.filter((e) => e.mode === "page").map((e) => Number(e.pageSize));
      expect(sizes.some((n) => n < 500)).toBe(true);
      // Served by the two runs together: the one-cursor dump serves every event once, plus its last empty page.
      const twice = mesh.peers[0]!.stats.eventsServed - 2 * 4000;
      expect(twice).toBeLessThan(500);
    } finally {
      await mesh.stop();
    }
  });

  test("a trimmed page inside a group of same-ts events bigger than it: full pages from there, nothing lost", async () => {
    // Nearly every event in a group of 9..490 sharing one ts, 500-event pages: trimmed pages (100 and up) that
    // start inside a group left by the page before are often all that group.
    const mesh = await startMesh({
      peers: 6,
      events: 12000,
      seed: 2,
      generate: { sharedTsRate: 0.99, bigGroupRate: 1, bigGroupMax: 490, meanGapNs: 1000 },
    });
    try {
      const r = await dump(mesh, { pageSize: 500, streamsPerPeer: 3 });
      const one = await dump(mesh, { pageSize: 500, streamsPerPeer: 1 });
      expect(r.summary.exitCode).toBe(ExitCode.ok);
      expect(r.text).toBe(one.text!);
      expect(r.text).toBe(expected(mesh.allEvents));
      expect(r.logs.some((l) => /held ts \d+ only; full pages from here/.test(l))).toBe(true);
      expect(r.logs.some((l) => l.includes("events share ts"))).toBe(false);
    } finally {
      await mesh.stop();
    }
  });
});

describe("several cursors per peer", () => {
  test("split edges inside same-ts groups: every event once, byte-identical to one cursor, through the WAN simulator", async () => {
    // Every ts is shared (groups of 2..8) and 1–2 ns apart: any split edge falls on a group.
    const mesh = await startMesh({
      peers: 3,
      events: 6000,
      seed: 21,
      generate: { sharedTsRate: 1, meanGapNs: 1 },
      wan: { rttMs: 2, jitterMs: 3, bytesPerSec: 20 << 20, costNsPerEvent: 50 },
    });
    try {
      const many = await dump(mesh, { streamsPerPeer: 3 });
      const one = await dump(mesh, { streamsPerPeer: 1 });
      expect(many.summary.exitCode).toBe(ExitCode.ok);
      expect(many.text).toBe(expected(mesh.allEvents));
      expect(many.text).toBe(one.text!);
      // Nothing forwarded twice by one peer's streams.
      expect(many.summary.fetched).toBe(mesh.peers.reduce((n, p) => n + p.events.size, 0));
      expect(many.summary.peers.map((p) => p.streams).every((s) => s >= 3)).toBe(true);
      expect(one.summary.peers.map((p) => p.streams)).toEqual([1, 1, 1]);
      // Edges that fell inside a group of same-ts events.
      const inGroup = edges(many.logs).filter(({ peer, ts }) => mesh.peer(peer).events.list().filter((e) => e.ts === ts).length >= 2);
      expect(inGroup.length).toBeGreaterThan(0);
    } finally {
      await mesh.stop();
    }
  });

  test("ledgers clustered in time: the ranges that come back empty are split again, nothing lost", async () => {
    const naras = generateNaras(2, 5);
    const month = 30n * 86_400n * 1_000_000_000n;
    const clusters = [0n, 3n, 7n].flatMap((k, i) =>
      generateEvents({ naras, count: 1500, seed: 40 + i, startNs: 1767225600000000000n + k * month, meanGapNs: 1_000_000, heyThereFirst: i === 0 }),
    );
    const mesh = await startMesh({ peers: naras, events: clusters, seed: 5, overlap: 0.6 });
    try {
      const r = await dump(mesh, { streamsPerPeer: 3 });
      expect(r.summary.exitCode).toBe(ExitCode.ok);
      expect(r.text).toBe(expected(mesh.allEvents));
      expect(r.summary.fetched).toBe(mesh.peers.reduce((n, p) => n + p.events.size, 0));
      expect(r.summary.peers.every((p) => p.streams > 1)).toBe(true);
    } finally {
      await mesh.stop();
    }
  });

  test("a peer failing on one stream: retried there; a peer hanging on its streams keeps what they gave, once", async () => {
    const mesh = await startMesh({
      peers: 3,
      events: 3000,
      seed: 23,
      generate: { sharedTsRate: 0.5 },
      faults: [{ failEvery: 4 }, { hangAfterPages: 5 }, undefined],
    });
    try {
      const r = await dump(mesh, { streamsPerPeer: 3, timeoutMs: 2000 });
      const [retried, hung, fine] = r.summary.peers;
      expect(retried!.status).toBe("ok");
      expect(retried!.retries).toBe(mesh.peers[0]!.stats.faultsInjected.fail!);
      expect(retried!.streams).toBeGreaterThan(1);
      expect(hung!.status).toBe("timeout");
      // Five pages served before it hangs: the probe for its newest event and four of the streams' pages.
      expect(hung!.pages).toBe(4);
      expect(fine!.status).toBe("ok");
      expect(r.summary.exitCode).toBe(ExitCode.partial);
      const lines = r.text!.split("\n").filter(Boolean);
      const got = new Set(lines.map((l) => JSON.parse(l).id as string));
      expect(got.size).toBe(lines.length);
      for (const p of [mesh.peers[0]!, mesh.peers[2]!]) expect(p.events.list().every((e) => got.has(e.id))).toBe(true);
      // What the hung peer gave is its own events, each once, in order with the rest.
      const hungIds = new Set(mesh.peers[1]!.events.list().map((e) => e.id));
      const others = new Set([mesh.peers[0]!, mesh.peers[2]!].flatMap((p) => p.events.list().map((e) => e.id)));
      expect([...got].every((id) => hungIds.has(id) || others.has(id))).toBe(true);
      expect(r.text).toBe(expected(mesh.allEvents.filter((e) => got.has(e.id))));
    } finally {
      await mesh.stop();
    }
  });

  test("a peer older than one cursor supports is paged by one stream and reported as before", async () => {
    const mesh = await startMesh({ peers: 2, events: 1200, seed: 24, faults: [{ legacy: true }, undefined] });
    try {
      const many = await dump(mesh, { streamsPerPeer: 3 });
      const one = await dump(mesh, { streamsPerPeer: 1 });
      const [old, current] = many.summary.peers;
      expect(old!.streams).toBe(1);
      expect(old!.pages).toBe(1);
      expect(current!.streams).toBeGreaterThan(1);
      expect(many.text).toBe(one.text!);
      expect(many.summary.peers.map((p) => p.status)).toEqual(one.summary.peers.map((p) => p.status));
      expect(many.text).toBe(expected(mesh.allEvents));
    } finally {
      await mesh.stop();
    }
  });
});
