import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dumpMesh, expectedDump, scratchDir, testSettings, type DumpRun } from "./helpers/dump.ts";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dumpEvents } from "../src/dump/dump.ts";
import type { FetchSettings } from "../src/dump/messages.ts";
import { ExitCode } from "../src/errors.ts";
import { signRequest } from "../src/mesh/auth.ts";
import { generateEvents, generateNaras, type SimEvent } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { startPeer } from "./sim/peer.ts";

const scratch = scratchDir("nara-dump-test-");

const dump = (
  mesh: Pick<SimMesh, "peers" | "client">,
  opts: { settings?: Partial<FetchSettings>; workers?: number; concurrency?: number; idsFrom?: string } = {},
): Promise<DumpRun> =>
  dumpMesh(mesh, scratch.fresh("out", ".jsonl"), {
    settings: testSettings(opts.settings),
    workers: opts.workers ?? 1,
    concurrency: opts.concurrency ?? 16,
    idsFrom: opts.idsFrom,
  });

const expected = expectedDump;

const ids = (text: string | undefined): string[] =>
  (text ?? "").split("\n").filter(Boolean).map((l) => /"id":"([^"]*)"/.exec(l)![1]!);

/** A client that follows next_cursor as given: what the boundary trap costs. */
async function naiveCount(mesh: SimMesh, peerIndex: number, pageSize: number): Promise<number> {
  const peer = mesh.peers[peerIndex]!;
  let cursor = "";
  const seen = new Set<string>();
  for (;;) {
    const res = await fetch(`${peer.url}/events/sync`, {
      method: "POST",
      headers: signRequest(mesh.client.identity, "POST", "/events/sync"),
      body: JSON.stringify({ from: mesh.client.name, mode: "page", page_size: pageSize, cursor }),
    });
    const body = (await res.json()) as { events: { id: string }[] | null; next_cursor?: string };
    for (const e of body.events ?? []) seen.add(e.id);
    if (!body.next_cursor) return seen.size;
    cursor = body.next_cursor;
  }
}

describe("a complete dump", () => {
  let mesh: SimMesh;
  beforeAll(async () => {
    mesh = await startMesh({ peers: 4, events: 3000, seed: 7, overlap: 0.5, generate: { sharedTsRate: 0.35, unknownRate: 0.02 } });
  });
  afterAll(() => mesh.stop());

  test("the test data really springs the page boundary trap", async () => {
    const served = mesh.peers[0]!.events.size;
    expect(await naiveCount(mesh, 0, 50)).toBeLessThan(served);
  });

  test("every event of every peer, exactly once, byte for byte, sorted by (ts, id)", async () => {
    const r = await dump(mesh, { settings: { pageSize: 50 } });
    expect(r.summary.exitCode).toBe(ExitCode.ok);
    expect(r.text).toBe(expected(mesh.allEvents));
    expect(r.summary.unique).toBe(mesh.allEvents.length);
    expect(r.summary.written).toBe(mesh.allEvents.length);
    const served = mesh.peers.reduce((n, p) => n + p.events.size, 0);
    expect(r.summary.fetched).toBe(served);
    expect(r.summary.duplicates).toBe(served - mesh.allEvents.length);
    for (const p of r.summary.peers) {
      expect(p.status).toBe("ok");
      expect(p.signatures).toBe("verified");
    }
  });

  test("nanosecond ts above 2^53 survive digit for digit", async () => {
    const r = await dump(mesh);
    const tss = r.text!.split("\n").filter(Boolean).map((l) => /"ts":(-?\d+)/.exec(l)![1]!);
    const lossy = tss.filter((t) => BigInt(Number(t)) !== BigInt(t));
    expect(lossy.length).toBeGreaterThan(tss.length / 2);
    expect(new Set(tss)).toEqual(new Set(mesh.allEvents.map((e) => e.ts.toString())));
  });

  test("Go escapes, unicode and unknown services are kept as served", async () => {
    const r = await dump(mesh);
    expect(r.text).toContain("\\u003c");
    expect(r.text).toContain('"svc":"zine"');
    expect(r.text).toMatch(/[^\x00-\x7f]/);
  });

  test("two dumps with different worker counts are byte-identical", async () => {
    // Pages larger than the biggest same-ts group (64): with smaller ones a group can come back incomplete
    // (warned), depending on which requests the simulator's per-request shuffles fall to.
    const a = await dump(mesh, { workers: 1, concurrency: 1, settings: { pageSize: 67 } });
    const b = await dump(mesh, { workers: 3, concurrency: 8, settings: { pageSize: 5000 } });
    expect(a.text).toBe(b.text!);
  });

  test("--ids-from leaves out what an earlier backup holds, warns about bad lines by number", async () => {
    const all = expected(mesh.allEvents).split("\n").filter(Boolean);
    const earlier = join(scratch.dir, "earlier.jsonl");
    writeFileSync(earlier, `${all[0]}\nnot json\n\n${all.slice(1, 500).join("\n")}\n`);
    const r = await dump(mesh, { idsFrom: earlier });
    expect(r.summary.exitCode).toBe(ExitCode.ok);
    expect(r.text).toBe(all.slice(500).map((l) => `${l}\n`).join(""));
    expect(r.summary.existing).toBeGreaterThanOrEqual(500);
    expect(r.logs.some((l) => l.includes("earlier.jsonl:2:"))).toBe(true);
  });

  test("to a file, events are written once every peer is past them: memory holds pages, not the backup", async () => {
    // One peer: each page moves the floor to its last ts, so about one page is held at a time.
    const one = { peers: [mesh.peers[0]!], client: mesh.client };
    // One cursor: with several, the peer's floor is its lowest stream's and the ranges above it are held.
    const r = await dump(one, { settings: { pageSize: 100, streamsPerPeer: 1 } });
    expect(r.text).toBe(expected(mesh.peers[0]!.events.list()));
    const perEvent = r.summary.bytes / r.summary.unique;
    expect(r.summary.unique).toBeGreaterThan(1000);
    expect(r.summary.peakHeldBytes).toBeGreaterThan(50 * perEvent);
    expect(r.summary.peakHeldBytes).toBeLessThan(200 * perEvent);
    // All peers at once: the floor is the slowest peer's, still short of the whole backup.
    const all = await dump(mesh, { concurrency: 16, settings: { pageSize: 100 } });
    expect(all.text).toBe(expected(mesh.allEvents));
    expect(all.summary.peakHeldBytes).toBeLessThan(all.summary.bytes);
  });

  test("with room for one page in flight, pages go one by one and nothing is lost", async () => {
    const r = await dump(mesh, { settings: { pageSize: 100, inflightBytes: 1 } });
    expect(r.summary.exitCode).toBe(ExitCode.ok);
    expect(r.text).toBe(expected(mesh.allEvents));
  });

  test("a missing --ids-from file skips nothing", async () => {
    const r = await dump(mesh, { idsFrom: join(scratch.dir, "does-not-exist.jsonl") });
    expect(r.text).toBe(expected(mesh.allEvents));
  });
});

describe("more events in one ts than a page holds", () => {
  test("terminates, keeps everything else, and says the peer may be incomplete", async () => {
    const mesh = await startMesh({ peers: 1, events: 400, seed: 3, overlap: 1, generate: { bigGroupSize: 150, sharedTsRate: 0 } });
    try {
      const r = await dump(mesh, { settings: { pageSize: 60 } });
      const big = mesh.allEvents.filter((e) => mesh.allEvents.filter((o) => o.ts === e.ts).length >= 150);
      expect(big.length).toBeGreaterThanOrEqual(150);
      const got = new Set(ids(r.text));
      const others = mesh.allEvents.filter((e) => !big.includes(e));
      expect(others.every((e) => got.has(e.id))).toBe(true);
      expect(r.summary.peers[0]!.status).toBe("incomplete");
      expect(r.summary.exitCode).toBe(ExitCode.partial);
      expect(r.logs.some((l) => l.includes("share ts"))).toBe(true);
    } finally {
      await mesh.stop();
    }
  });
});

describe("faults", () => {
  test("a hanging peer times out alone; its pages so far are kept, the others complete", async () => {
    const mesh = await startMesh({ peers: 3, events: 1500, seed: 11, faults: [{ hangAfterPages: 2 }] });
    try {
      // One cursor: the test knows which pages come first (test/streams.test.ts has a stream that hangs).
      const r = await dump(mesh, { settings: { timeoutMs: 1500, pageSize: 100, streamsPerPeer: 1 } });
      const [hung, ...rest] = r.summary.peers;
      expect(hung!.status).toBe("timeout");
      expect(hung!.pages).toBe(2);
      expect(hung!.error).toContain("2 page(s)");
      expect(rest.map((p) => p.status)).toEqual(["ok", "ok"]);
      expect(r.summary.exitCode).toBe(ExitCode.partial);
      const got = new Set(ids(r.text));
      const firstPages = mesh.peers[0]!.events.list().slice(0, 150);
      expect(firstPages.every((e) => got.has(e.id))).toBe(true);
      for (const p of mesh.peers.slice(1)) expect(p.events.list().every((e) => got.has(e.id))).toBe(true);
    } finally {
      await mesh.stop();
    }
  });

  test("a peer whose next_cursor goes backwards fails at once (not at its deadline); what it sent in order is kept", async () => {
    const mesh = await startMesh({ peers: 3, events: 1500, seed: 12, faults: [{ rewindAfterPages: 3 }] });
    try {
      const r = await dump(mesh, { settings: { timeoutMs: 20_000, pageSize: 100, streamsPerPeer: 1 } });
      const [broken, ...rest] = r.summary.peers;
      expect(broken!.status).toBe("failed");
      expect(broken!.error).toContain("next_cursor went back");
      expect(broken!.pages).toBe(4);
      // At once: not retried until its deadline (the status would say "timeout"); the fourth request was its last.
      expect(mesh.peers[0]!.stats.syncRequests).toBe(4);
      expect(rest.map((p) => p.status)).toEqual(["ok", "ok"]);
      expect(r.summary.exitCode).toBe(ExitCode.partial);
      const got = new Set(ids(r.text));
      // The first three pages (100 events, then 99 new each after the re-read boundary).
      expect(mesh.peers[0]!.events.list().slice(0, 298).every((e) => got.has(e.id))).toBe(true);
      for (const p of mesh.peers.slice(1)) expect(p.events.list().every((e) => got.has(e.id))).toBe(true);
      expect(ids(r.text).length).toBe(got.size);
    } finally {
      await mesh.stop();
    }
  });

  test("5xx, dropped connections, garbage and truncated bodies are retried, re-signed, and nothing is lost", async () => {
    const mesh = await startMesh({
      peers: 4,
      events: 2000,
      seed: 5,
      generate: { sharedTsRate: 0.3 },
      faults: [{ failEvery: 3 }, { dropEvery: 3 }, { garbageEvery: 3 }, { truncateEvery: 3 }],
    });
    try {
      // One cursor, so that each request in the peer's log follows the one before it.
      const r = await dump(mesh, { settings: { pageSize: 80, streamsPerPeer: 1 } });
      expect(r.summary.exitCode).toBe(ExitCode.ok);
      expect(r.text).toBe(expected(mesh.allEvents));
      for (const [i, p] of r.summary.peers.entries()) {
        // This peer's one kind of fault, each one retried once.
        const injected = Object.values(mesh.peers[i]!.stats.faultsInjected);
        expect(injected.length).toBe(1);
        expect(p.retries).toBe(injected[0]!);
        // Each attempt is signed when it is sent: a retry carries a later timestamp than the failure.
        const log = mesh.peers[i]!.stats.syncLog;
        const retried = log.filter((e, k) => k > 0 && log[k - 1]!.fault !== undefined);
        expect(retried.length).toBe(p.retries);
        for (let k = 1; k < log.length; k++) {
          const [prev, cur] = [Number(log[k - 1]!.timestamp), Number(log[k]!.timestamp)];
          if (log[k - 1]!.fault !== undefined) expect(cur).toBeGreaterThan(prev);
          else expect(cur).toBeGreaterThanOrEqual(prev);
        }
      }
    } finally {
      await mesh.stop();
    }
  });

  test("a 401 is not retried and names clock skew or an unknown key", async () => {
    const mesh = await startMesh({ peers: 2, events: 300, seed: 2, faults: [{ status401: true }] });
    try {
      // One cursor: no probe for the newest event beside the first page, so one request is all the peer sees.
      const r = await dump(mesh, { settings: { streamsPerPeer: 1 } });
      const refused = r.summary.peers[0]!;
      expect(refused.status).toBe("failed");
      expect(refused.error).toContain("401");
      expect(refused.hint).toMatch(/clock/);
      expect(refused.hint).toMatch(/public key/);
      expect(mesh.peers[0]!.stats.syncRequests).toBe(1);
      expect(r.summary.peers[1]!.status).toBe("ok");
      expect(r.summary.exitCode).toBe(ExitCode.partial);
    } finally {
      await mesh.stop();
    }
  });

  test("bad response signatures: a warning by default, the peer dropped with --strict", async () => {
    const mesh = await startMesh({ peers: 2, events: 600, seed: 9, overlap: 0, faults: [{ badResponseSig: true }] });
    try {
      const lenient = await dump(mesh);
      expect(lenient.summary.peers[0]!.signatures).toBe("failed");
      expect(lenient.summary.peers[0]!.status).toBe("ok");
      expect(lenient.logs.some((l) => l.startsWith("warn") && l.includes("signature"))).toBe(true);
      expect(lenient.text).toBe(expected(mesh.allEvents));

      const strict = await dump(mesh, { settings: { strict: true } });
      expect(strict.summary.peers[0]!.status).toBe("failed");
      expect(strict.summary.peers[0]!.events).toBe(0);
      expect(strict.summary.exitCode).toBe(ExitCode.partial);
      const got = new Set(ids(strict.text));
      expect(mesh.peers[0]!.events.list().some((e) => got.has(e.id))).toBe(false);
      expect(mesh.peers[1]!.events.list().every((e) => got.has(e.id))).toBe(true);
    } finally {
      await mesh.stop();
    }
  });

  test("an old peer that ignores paging is reported as possibly incomplete", async () => {
    const mesh = await startMesh({ peers: 1, events: 2500, seed: 4, overlap: 1, faults: { legacy: true } });
    try {
      const r = await dump(mesh, { settings: { pageSize: 2000 } });
      expect(r.summary.peers[0]!.status).toBe("incomplete");
      expect(r.logs.some((l) => l.includes("without next_cursor"))).toBe(true);
      expect(r.summary.exitCode).toBe(ExitCode.partial);
    } finally {
      await mesh.stop();
    }
  });

  test("when every peer fails nothing is written, not even a temporary file", async () => {
    const mesh = await startMesh({ peers: 2, events: 100, seed: 1, faults: { status401: true } });
    try {
      const before = readdirSync(scratch.dir).length;
      const r = await dump(mesh);
      expect(r.summary.exitCode).toBe(ExitCode.failed);
      expect(existsSync(r.out)).toBe(false);
      expect(readdirSync(scratch.dir).length).toBe(before);
    } finally {
      await mesh.stop();
    }
  });
});

describe("an abort", () => {
  test("removes the output's temporary file and the spill runs at once; the run ends with an error", async () => {
    const mesh = await startMesh({ peers: 2, events: 2000, seed: 3 });
    const sub = scratch.fresh("abort-");
    mkdirSync(sub);
    const controller = new AbortController();
    const phases: string[] = [];
    let leftAtAbort: string[] | undefined;
    try {
      const run = dumpEvents(
        {
          peers: mesh.peers.map((p) => ({ name: p.name, url: p.url })),
          name: mesh.client.name,
          soul: mesh.client.soul,
          settings: testSettings({ pageSize: 50 }),
          workers: 1,
          concurrency: 2,
          output: join(sub, "b.jsonl"),
          tempDir: sub,
          maxMemory: 64 * 1024,
          signal: controller.signal,
        },
        {
          onOutput: (phase) => phases.push(phase),
          onPage(page) {
            if (page.page < 4 || controller.signal.aborted) return;
            expect(readdirSync(sub).length).toBeGreaterThan(0);
            controller.abort();
            // Synchronously: a caller exits straight after.
            leftAtAbort = readdirSync(sub);
          },
        },
      );
      // Whatever it tripped on (a removed run, the aborted output), it does not end as a backup.
      expect(await run.then(() => "resolved", () => "rejected")).toBe("rejected");
      expect(phases).toEqual(["open"]);
      expect(leftAtAbort).toEqual([]);
    } finally {
      await mesh.stop();
    }
  });
});

describe("dedup", () => {
  test("when two copies differ, the signed copy wins whichever peer answers first", async () => {
    const naras = generateNaras(3, 21);
    const [a, b, client] = naras as [(typeof naras)[0], (typeof naras)[0], (typeof naras)[0]];
    const events = generateEvents({ naras: [a, b], count: 300, seed: 21 }).filter((e) => e.signed);
    expect(events.length).toBeGreaterThan(50);
    // A peer that dropped `sig` from its copies.
    const stripped: SimEvent[] = events.map((e) => ({ ...e, raw: e.raw.replace(/,"sig":"[^"]*"/, ""), signed: false }));
    expect(stripped.every((e, i) => e.raw !== events[i]!.raw)).toBe(true);
    const knownKeys = { [client.name]: client.publicKey };
    const unsignedPeer = startPeer({ nara: a, events: stripped, naras, knownKeys });
    const signedPeer = startPeer({ nara: b, events, naras, knownKeys, faults: { latencyMs: 30 } });
    try {
      const r = await dump({ peers: [unsignedPeer, signedPeer], client });
      expect(r.text).toBe(expected(events));
      expect(r.summary.replaced).toBe(events.length);
      expect(r.summary.duplicates).toBe(events.length);
    } finally {
      await Promise.all([unsignedPeer.stop(), signedPeer.stop()]);
    }
  });
});
