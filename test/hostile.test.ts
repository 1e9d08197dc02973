import { describe, expect, test } from "bun:test";
import { dumpMesh, expectedDump, scratchDir, testSettings, type DumpRun } from "./helpers/dump.ts";
import { mkdtempSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { FetchSettings } from "../src/dump/messages.ts";
import { ExitCode } from "../src/errors.ts";
import { BodyIdle, BodyTooLarge, readBody } from "../src/io/body.ts";
import { signRequest } from "../src/mesh/auth.ts";
import { generateEvents, generateNaras, type SimEvent, type SimNara } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { startPeer } from "./sim/peer.ts";

const scratch = scratchDir("nara-hostile-test-");

const dump = (mesh: SimMesh, over: Partial<FetchSettings>, extra: { maxMemory?: number; tempDir?: string } = {}): Promise<DumpRun> =>
  dumpMesh(mesh, scratch.fresh("out", ".jsonl"), { settings: testSettings(over), workers: 1, concurrency: 16, ...extra });

const ids = (text: string | undefined): Set<string> =>
  new Set((text ?? "").split("\n").filter(Boolean).map((l) => /"id":"([^"]*)"/.exec(l)![1]!));

const expected = expectedDump;

/** A streamed body (no Content-Length) of these pieces, then silence when `stall` is set. */
function streamed(pieces: Uint8Array[], stall = false): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (i < pieces.length) c.enqueue(pieces[i++]!);
      else if (!stall) c.close();
      else return new Promise(() => {});
    },
  });
  return new Response(body);
}

describe("readBody", () => {
  const piece = (n: number, v: number) => new Uint8Array(n).fill(v);

  test("a streamed body of exactly the cap is read whole; one byte more is cut off and the request aborted", async () => {
    const whole = await readBody(streamed([piece(600, 1), piece(400, 2)]), { maxBytes: 1000 });
    expect(whole.length).toBe(1000);
    expect(whole[599]).toBe(1);
    expect(whole[600]).toBe(2);
    let aborted = 0;
    const err = await readBody(streamed([piece(600, 1), piece(401, 2)]), { maxBytes: 1000, abort: () => aborted++ }).catch((e) => e);
    expect(err).toBeInstanceOf(BodyTooLarge);
    expect((err as BodyTooLarge).message).toBe("body larger than 1000 bytes");
    expect(aborted).toBe(1);
  });

  test("a body announced larger than the cap is refused before it is read", async () => {
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(piece(10, 0));
      },
    });
    const res = new Response(body, { headers: { "Content-Length": "2048" } });
    const err = await readBody(res, { maxBytes: 1024 }).catch((e) => e);
    expect(err).toBeInstanceOf(BodyTooLarge);
    expect((err as BodyTooLarge).announced).toBe(2048);
    expect((err as Error).message).toBe("body larger than 1 KiB (Content-Length 2048)");
    expect(pulled).toBeLessThanOrEqual(1);
  });

  test("a body that stops sending is abandoned after the idle timeout, counting what came", async () => {
    let aborted = 0;
    const err = await readBody(streamed([piece(300, 7)], true), { maxBytes: 1 << 20, idleMs: 50, abort: () => aborted++ }).catch((e) => e);
    expect(err).toBeInstanceOf(BodyIdle);
    expect((err as BodyIdle).received).toBe(300);
    expect(aborted).toBe(1);
  });
});

describe("hostile and broken peers", () => {
  test("a peer whose body never ends is cut off at --max-page-bytes; its earlier pages are kept, the others complete", async () => {
    const mesh = await startMesh({ peers: 3, events: 1500, seed: 21, faults: [{ endlessAfterPages: 2 }] });
    try {
      const cap = 256 << 10;
      // One cursor: the count of pages before the endless one is then exact (a newest-event probe is a request too).
      const r = await dump(mesh, { maxPageBytes: cap, streamsPerPeer: 1 });
      const [hostile, ...rest] = r.summary.peers;
      expect(hostile!.status).toBe("failed");
      expect(hostile!.pages).toBe(2);
      expect(hostile!.error).toBe("page larger than 256 KiB: cut off");
      expect(hostile!.hint).toContain("--max-page-bytes");
      // Failed, not retried: another attempt would read the same endless page.
      expect(hostile!.retries).toBe(0);
      expect(mesh.peers[0]!.stats.faultsInjected.endless).toBe(1);
      expect(rest.map((p) => p.status)).toEqual(["ok", "ok"]);
      expect(r.summary.exitCode).toBe(ExitCode.partial);
      const got = ids(r.text);
      expect(mesh.peers[0]!.events.list().slice(0, 199).every((e) => got.has(e.id))).toBe(true);
      for (const p of mesh.peers.slice(1)) expect(p.events.list().every((e) => got.has(e.id))).toBe(true);
      await mesh.peers[0]!.stop();
      // The connection was closed, not read on: the peer sent little more than the cap (its socket buffers).
      expect(mesh.peers[0]!.hostile.endlessBytes).toBeLessThan(cap + (4 << 20));
    } finally {
      await mesh.stop();
    }
  });

  test("a page one byte over the cap fails its peer before the page is read; at the cap it is taken", async () => {
    const mesh = await startMesh({ peers: 2, events: 600, seed: 22 });
    try {
      const peer = mesh.peers[0]!;
      const res = await fetch(`${peer.url}/events/sync`, {
        method: "POST",
        headers: signRequest(mesh.client.identity, "POST", "/events/sync"),
        body: JSON.stringify({ from: mesh.client.name, mode: "page", page_size: 100, cursor: "" }),
      });
      const first = (await res.arrayBuffer()).byteLength;
      const over = await dump({ ...mesh, peers: [peer] }, { maxPageBytes: first - 1 });
      expect(over.summary.peers[0]!.status).toBe("failed");
      expect(over.summary.peers[0]!.pages).toBe(0);
      expect(over.summary.peers[0]!.error).toBe(`page larger than ${first - 1} bytes (the peer announced ${first} bytes): not read`);
      expect(over.summary.exitCode).toBe(ExitCode.failed);
      expect(over.text).toBeUndefined();
      const at = await dump({ ...mesh, peers: [peer] }, { maxPageBytes: first });
      expect(at.summary.peers[0]!.pages).toBeGreaterThanOrEqual(1);
    } finally {
      await mesh.stop();
    }
  });

  test("a peer that stalls mid-body is abandoned after --idle-timeout and retried within its time: nothing lost", async () => {
    const mesh = await startMesh({ peers: 3, events: 1200, seed: 23, faults: [{ stallEvery: 3 }] });
    try {
      const r = await dump(mesh, { idleMs: 200 });
      expect(r.summary.peers.map((p) => p.status)).toEqual(["ok", "ok", "ok"]);
      expect(r.summary.exitCode).toBe(ExitCode.ok);
      const stalls = mesh.peers[0]!.hostile.stalls;
      expect(stalls).toBeGreaterThan(0);
      expect(r.summary.peers[0]!.retries).toBe(stalls);
      expect(r.logs.some((l) => l.includes("the peer went silent: nothing received for 200 ms"))).toBe(true);
      expect(r.text).toBe(expected(mesh.allEvents));
    } finally {
      await mesh.stop();
    }
  });
});

describe("--max-memory", () => {
  test("a hanging peer with a small budget: held events spill to sorted runs, the output is byte-identical to an unconstrained run", async () => {
    const mesh = await startMesh({ peers: 4, events: 4000, seed: 24, generate: { sharedTsRate: 0.2 }, faults: [{ hangAfterPages: 2 }] });
    try {
      const free = await dump(mesh, { timeoutMs: 1000 });
      const temp = mkdtempSync(join(scratch.dir, "spill-"));
      // The hang counts pages served: the same two pages again.
      mesh.peers[0]!.resetStats();
      const tight = await dump(mesh, { timeoutMs: 1000 }, { maxMemory: 400_000, tempDir: temp });
      expect(free.summary.spilledRuns).toBe(0);
      expect(tight.summary.spilledRuns).toBeGreaterThan(1);
      expect(tight.summary.spilledEvents).toBeGreaterThan(0);
      // Bounded: held bytes pass the threshold (a quarter of the budget here) by one page at most.
      expect(tight.summary.peakHeldBytes).toBeLessThan(100_000 + 100 * 1000);
      expect(free.summary.peakHeldBytes).toBeGreaterThan(400_000);
      expect(tight.summary.exitCode).toBe(ExitCode.partial);
      expect(tight.summary.peers.map((p) => p.status)).toEqual(["timeout", "ok", "ok", "ok"]);
      expect(tight.summary.written).toBe(free.summary.written);
      expect(tight.text).toBe(free.text!);
      expect(readdirSync(temp)).toEqual([]);
    } finally {
      await mesh.stop();
    }
  });

  test("a spilled unsigned copy is replaced by a signed one that comes later: the merge writes the signed copy once", async () => {
    const naras = generateNaras(3, 25);
    const [a, b, client] = naras as [SimNara, SimNara, SimNara];
    const events = generateEvents({ naras: [a, b], count: 400, seed: 25 }).filter((e) => e.signed);
    const stripped: SimEvent[] = events.map((e) => ({ ...e, raw: e.raw.replace(/,"sig":"[^"]*"/, ""), signed: false }));
    const knownKeys = { [client.name]: client.publicKey };
    // The unsigned peer answers first; the signed one only once the unsigned copies have spilled.
    const unsignedPeer = startPeer({ nara: a, events: stripped, naras, knownKeys });
    const signedPeer = startPeer({ nara: b, events, naras, knownKeys, faults: { latencyMs: 300 } });
    const temp = mkdtempSync(join(scratch.dir, "spill-signed-"));
    try {
      const mesh = { peers: [unsignedPeer, signedPeer], client } as unknown as SimMesh;
      const r = await dump(mesh, { pageSize: 50 }, { maxMemory: 40_000, tempDir: temp });
      expect(r.summary.spilledRuns).toBeGreaterThan(0);
      expect(r.summary.replaced).toBe(events.length);
      expect(r.text).toBe(expected(events));
      expect(readdirSync(temp)).toEqual([]);
    } finally {
      await Promise.all([unsignedPeer.stop(), signedPeer.stop()]);
    }
  });
});
