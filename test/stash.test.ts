/**
 * The stash: nara's own crypto against STASH.md's vector, the simulated
 * nara's stash routes (their real semantics), and src/stash's pieces with
 * injected clocks (no real waiting).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { fetchStash } from "../src/stash/dump.ts";
import { getStatus, isLoopback, MAX_STASH_BYTES, readCapped, stashBaseUrl, type FetchLike } from "../src/stash/http.ts";
import { canonical, describeDifference, encodeRecord, parseRecord } from "../src/stash/record.ts";
import { restoreStash } from "../src/stash/restore.ts";
import { generateNaras, makeNara } from "./sim/generate.ts";
import { startPeer, type SimPeer } from "./sim/peer.ts";
import { goReencode, naraOpen, naraSeal, naraStashKey } from "./sim/stash.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const naras = generateNaras(5, 77);
const peers: SimPeer[] = [];
afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
});
function nara(opts: Parameters<typeof startPeer>[0]["stash"] = {}): SimPeer {
  const p = startPeer({ nara: naras[0]!, naras, stash: opts });
  peers.push(p);
  return p;
}
const status = async (p: SimPeer) => (await fetch(`${p.url}/api/stash/status`)).text();
const post = (p: SimPeer, body: string) => fetch(`${p.url}/api/stash/update`, { method: "POST", body });

describe("nara's stash crypto (STASH.md §3 vector)", () => {
  const seed = hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657");
  const pt = new TextEncoder().encode('{"hello":"world"}');

  test("soul, nara ID and key from the seed", () => {
    const n = makeNara("test-nara", seed);
    expect(n.soul).toBe("1fAhYWqs6ctsWHNZtpYJNB9BxxQPq4Pa5LkbLC3wpAncZC1GshUmg");
    expect(n.naraId).toBe("5tbxC7xzYJzeqghzTbXXDa1k5xTVRet291XHLSRHcdeZ");
    expect(n.publicKey).toBe("A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=");
    expect(Buffer.from(naraStashKey(seed)).toString("hex")).toBe("55b7ff75e2aff5fc4fab32866ab5709a392cabf876d03d57014775e60d88623a");
  });

  test("seal and open", () => {
    const ct = naraSeal(seed, nonce, pt);
    expect(Buffer.from(ct).toString("hex")).toBe("23114754ddd365b72b794e98c5f23745a7a9dcb7d4918cbebdf923589b3c1aab0d");
    expect(Buffer.from(ct).toString("base64")).toBe("IxFHVN3TZbcreU6YxfI3Raep3LfUkYy+vfkjWJs8GqsN");
    expect(naraOpen(seed, nonce, ct)).toEqual(pt);
    ct[0]! ^= 1;
    expect(() => naraOpen(seed, nonce, ct)).toThrow();
    expect(() => naraOpen(seed, nonce.subarray(0, 12), ct)).toThrow("nonce");
  });
});

describe("the simulated nara's stash routes", () => {
  test("no stash: has_stash false, my_stash null, no confidants", async () => {
    const p = nara();
    expect(await status(p)).toBe(
      '{"confidants":[],"has_stash":false,"metrics":{"stashes_stored":0,"storage_limit":5,"total_bytes":0},"my_stash":null,"target_count":3}',
    );
  });

  test("status re-encodes the stash as Go does: keys sorted, float64 numbers, HTML escaping", async () => {
    const p = nara();
    const res = await post(p, '{"b": 1, "a": {"z": 12345678901234567890, "y": "<&>", "x": 1.50, "w": [1e400]}}');
    expect(await res.json()).toEqual({ success: true, message: "Stash updated and distributed to confidants" });
    const body = JSON.parse(await status(p));
    expect(p.stash.raw).toBe('{"b": 1, "a": {"z": 12345678901234567890, "y": "<&>", "x": 1.50, "w": [1e400]}}');
    expect(goReencode(p.stash.raw!)).toBe('{"a":{"w":[null],"x":1.5,"y":"\\u003c\\u0026\\u003e","z":12345678901234567000},"b":1}');
    expect(body.has_stash).toBe(true);
    expect(body.my_stash.timestamp).toBe(p.stash.timestamp);
    expect(body.confidants.map((c: { name: string }) => c.name)).toEqual(naras.slice(1, 4).map((n) => n.name));
    // Each confidant holds the exact bytes, sealed with nara's scheme under the owner's seed.
    for (const copy of p.stash.held.values()) {
      expect(new TextDecoder().decode(naraOpen(naras[0]!.identity.seedBytes(), copy.nonce, copy.ciphertext))).toBe(p.stash.raw!);
    }
  });

  test("a stash that is not an object: has_stash true, data null", async () => {
    const p = nara();
    await post(p, "[1,2,3]");
    expect(JSON.parse(await status(p)).my_stash).toEqual({ timestamp: p.stash.timestamp!, data: null });
  });

  test("fewer than 3 online peers: HTTP 200 success:false, the stash is kept locally all the same", async () => {
    const p = nara({ onlinePeers: 2 });
    const res = await post(p, '{"a":1}');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: false, message: "Failed to distribute stash: need at least 3 online peers, only found 2" });
    expect(JSON.parse(await status(p)).has_stash).toBe(true);
    expect(p.stash.confidants).toEqual([]);
  });

  test("bad bodies, methods and a nara without -serve-ui", async () => {
    const p = nara();
    const bad = await post(p, "{nope");
    expect([bad.status, await bad.text()]).toEqual([400, "Invalid JSON\n"]);
    expect((await post(p, "")).status).toBe(400);
    expect((await fetch(`${p.url}/api/stash/update`)).status).toBe(405);
    p.stash.serveUi = false;
    const r = await fetch(`${p.url}/api/stash/status`);
    expect([r.status, await r.text()]).toEqual([404, "404 page not found\n"]);
  });

  test("a restart loses the stash; the confidants' push brings it back with their timestamp", async () => {
    const p = nara();
    await post(p, '{"k":"v"}');
    const storedAt = [...p.stash.held.values()][0]!.storedAt;
    p.stash.restart(2);
    expect(JSON.parse(await status(p)).has_stash).toBe(false);
    const back = JSON.parse(await status(p));
    expect(back.my_stash).toEqual({ timestamp: storedAt, data: { k: "v" } });
  });
});

describe("src/stash", () => {
  test("--nara-url forms and loopback addresses", () => {
    expect(stashBaseUrl("localhost:8080")).toBe("http://localhost:8080");
    expect(stashBaseUrl("http://127.0.0.1:8080/api/stash/status")).toBe("http://127.0.0.1:8080");
    expect(stashBaseUrl("https://h/prefix/")).toBe("https://h/prefix");
    expect(() => stashBaseUrl("ftp://h")).toThrow("http");
    for (const u of ["http://localhost:1", "http://127.3.4.5", "http://[::1]:8080", "http://[::ffff:127.0.0.1]"]) expect(isLoopback(u)).toBe(true);
    for (const u of ["http://100.64.0.2:8080", "http://nara.example", "http://[::ffff:a00:1]", "http://128.0.0.1"]) expect(isLoopback(u)).toBe(false);
  });

  test("reads are capped, by Content-Length and while streaming", async () => {
    const big = new Response("x".repeat(2000), { headers: { "content-length": "2000" } });
    await expect(readCapped(big, 1000, "the answer")).rejects.toThrow("larger than");
    let pulled = 0;
    const endless = new ReadableStream<Uint8Array>({
      pull(c) {
        pulled++;
        c.enqueue(new Uint8Array(600));
      },
    });
    await expect(readCapped(new Response(endless), 1000, "the answer")).rejects.toThrow("the answer is larger than");
    // It stopped soon after the cap, not at the end of an endless body.
    expect(pulled).toBeLessThan(5);
    expect(await readCapped(new Response("ok"), 2, "x")).toBe("ok");
    // A status body over the cap is refused, whatever it says.
    const fake: FetchLike = async () => new Response("{}", { headers: { "content-length": String(MAX_STASH_BYTES * 2) } });
    await expect(getStatus("http://127.0.0.1:1", { timeoutMs: 1000, fetch: fake })).rejects.toThrow("larger than");
  });

  test("records: encoded as one line, parsed strictly, compared with keys in any order", () => {
    const r = { timestamp: 1700000000, data: { b: [1, { y: 2, x: 1 }], a: "é" } };
    expect(parseRecord(encodeRecord(r), "f")).toEqual(r);
    expect(canonical(r.data)).toBe('{"a":"é","b":[1,{"x":1,"y":2}]}');
    expect(() => parseRecord('{"id":"a"}\n{"id":"b"}\n', "f")).toThrow("not one JSON object");
    expect(() => parseRecord('{"timestamp":1.5,"data":{}}', "f")).toThrow('integer "timestamp"');
    expect(() => parseRecord('{"timestamp":1,"data":[]}', "f")).toThrow('object "data"');
    expect(describeDifference({ a: 1, b: 2, c: 3 }, { b: 2, c: 4, d: 5 })).toBe(
      '1 key only in the backup ("a"); 1 key only on the nara ("d"); 1 key with other values ("c")',
    );
  });

  test("restore retries success:false with growing backoff until the nara has 3 peers online", async () => {
    const p = nara({ onlinePeers: 1 });
    const sleeps: number[] = [];
    const result = await restoreStash({
      baseUrl: p.url,
      record: { timestamp: 1, data: { a: 1 } },
      force: false,
      timeoutMs: 60_000,
      random: () => 1,
      sleep: async (ms) => {
        sleeps.push(ms);
        if (sleeps.length === 2) p.stash.onlinePeers = 3;
      },
    });
    expect(sleeps).toEqual([1000, 2000]);
    expect(result).toMatchObject({ outcome: "restored", attempts: 3, replaced: false });
    expect(result.after.confidants).toHaveLength(3);
    expect(p.stash.stats).toMatchObject({ updates: 3, failedUpdates: 2 });
  });

  test("the same stash without confidants (never distributed) is sent again; with them, nothing is sent", async () => {
    const p = nara({ onlinePeers: 2 });
    await post(p, '{"b":[1],"a":2}');
    p.stash.onlinePeers = 4;
    let resent = 0;
    const record = { timestamp: 1, data: { a: 2, b: [1] } };
    const first = await restoreStash({ baseUrl: p.url, record, force: false, timeoutMs: 10_000, onResend: () => resent++ });
    expect([first.outcome, first.attempts, resent, p.stash.confidants.length]).toEqual(["restored", 1, 1, 3]);
    const again = await restoreStash({ baseUrl: p.url, record, force: false, timeoutMs: 10_000, onResend: () => resent++ });
    expect([again.outcome, again.attempts, resent]).toEqual(["same", 0, 1]);
    expect(p.stash.stats.updates).toBe(2);
  });

  test("restore gives up with exit 4 when the timeout ends first, and says why", async () => {
    const p = nara({ onlinePeers: 2 });
    let clock = 0;
    const run = restoreStash({
      baseUrl: p.url,
      record: { timestamp: 1, data: { a: 1 } },
      force: false,
      timeoutMs: 10_000,
      random: () => 1,
      now: () => clock,
      sleep: async (ms) => {
        clock += ms;
      },
    });
    await expect(run).rejects.toMatchObject({ exitCode: 4, message: expect.stringContaining("only found 2") });
    // 1 s + 2 s + 4 s of backoff fit in 10 s; the next 8 s would not.
    expect(p.stash.stats.updates).toBe(4);
  });

  test("dump waits for the confidants' push, asking again at each poll", async () => {
    const p = nara();
    await post(p, '{"w":true}');
    p.stash.restart(3);
    const waits: number[] = [];
    let clock = 0;
    const got = await fetchStash({ baseUrl: p.url, timeoutMs: 5000, waitMs: 30_000, now: () => clock, sleep: async (ms) => void (clock += ms), onWaiting: (_s, left) => waits.push(left) });
    expect(got.record.data).toEqual({ w: true });
    expect(got.polls).toBe(3);
    expect(waits).toEqual([30_000, 29_000]);
  });
});
