import { describe, expect, test } from "bun:test";
import { ScanError } from "../src/events/scan.ts";
import { parseSoul } from "../src/identity/soul.ts";
import { ExitCode, NaraError } from "../src/errors.ts";
import { Batch, buildBody, joinEvents, signBatch } from "../src/restore/batch.ts";
import { formatNs, matches, parseFilter, parseTime } from "../src/restore/filter.ts";
import { IdIndex, LineBits } from "../src/events/idindex.ts";
import { displayUrl, importUrl } from "../src/restore/import.ts";
import { backoffDelay } from "../src/io/retry.ts";
import { countChangedError, interrupted, invalidInputError, refusalCause, refusalError } from "../src/restore/diagnose.ts";
import { checkSendSettings, PARALLEL_CHECK_BYTES, parallelCheckBytes } from "../src/restore/options.ts";
import { emptySummary } from "../src/restore/summary.ts";
import { isPlainFile } from "../src/restore/sources.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keypairFromSoul } from "../src/identity/signer.ts";
import { fastCheck } from "../src/events/fastcheck.ts";
import { bomLength, slowCheck, validateLine } from "../src/events/validate.ts";
import { plannedServices } from "../src/restore/plan.ts";
import { edVerify, sha256 } from "../src/identity/crypto.ts";
import { rawEventsOf } from "./sim/peer.ts";
import { generateEvents, generateNaras, Rng } from "./sim/generate.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const vectorsDir = new URL("../../shared/vectors/", import.meta.url);
const importVectors = (await Bun.file(new URL("import_auth.json", vectorsDir)).json()) as {
  cases: { signer_name: string; public_key: string; ts: number; event_ids: string[]; preimage: string; sha256_hex: string; signature: string; request_body?: string }[];
  responses: Record<string, string>;
};
const soulVectors = (await Bun.file(new URL("souls.json", vectorsDir)).json()) as { valid: { name: string; soul: string; public_key: string; nara_id: string }[] };
const eventVectors = (await Bun.file(new URL("event_ids.json", vectorsDir)).json()) as {
  cases: { name: string; json: string; ts_decimal: string; id: string; service: string; signed: boolean }[];
  decode_cases: { input: string; canonical?: string; go_error?: string; note: string }[];
  payload_missing: { input: string };
};

const soulOf = (name: string) => {
  const v = soulVectors.valid.find((s) => s.name === name);
  if (!v) throw new Error(`no soul vector for ${name}`);
  return v;
};

const check = (line: string, opts: { withNaras?: boolean } = {}) => {
  const b = enc.encode(line);
  return validateLine(b, 0, b.length, opts);
};

describe("batch bodies and signatures (vectors/import_auth.json)", () => {
  test("every case: the signature over ts + ids is byte for byte Go's", () => {
    expect(importVectors.cases.length).toBeGreaterThanOrEqual(4);
    for (const c of importVectors.cases) {
      const identity = parseSoul(soulOf(c.signer_name).soul, c.signer_name);
      expect(identity.publicKey).toBe(c.public_key);
      const batch = new Batch();
      for (const id of c.event_ids) batch.add(enc.encode("{}"), 0, 2, id, "x");
      const signed = signBatch(batch, identity, c.ts * 1000 + 999);
      expect(signed.ts).toBe(c.ts);
      expect(Buffer.from(sha256(c.preimage)).toString("hex")).toBe(c.sha256_hex);
      expect(signed.sig).toBe(c.signature);
      expect(edVerify(signed.sig, sha256(c.preimage), c.public_key)).toBe(true);
    }
  });

  test("request bodies are the raw events joined, exactly as in the vectors", () => {
    const withBody = importVectors.cases.filter((c) => c.request_body !== undefined);
    expect(withBody.length).toBeGreaterThanOrEqual(2);
    for (const c of withBody) {
      const identity = parseSoul(soulOf(c.signer_name).soul, c.signer_name);
      const raws = rawEventsOf(c.request_body!) ?? [];
      expect(raws.length).toBe(c.event_ids.length);
      const batch = new Batch(16); // tiny: forces the buffer to grow
      raws.forEach((raw, i) => {
        // Surrounded by other bytes, as a line inside a read buffer is.
        const buf = enc.encode(`xx${raw}\n`);
        batch.add(buf, 2, buf.length - 1, c.event_ids[i]!, "svc");
      });
      const { body } = signBatch(batch, identity, c.ts * 1000);
      expect(dec.decode(body)).toBe(c.request_body!);
    }
  });

  test("buildBody keeps ts digits beyond 2^53 and any bytes untouched", () => {
    const raw = '{"id":"a","ts":1767225600123456789,"svc":"x","t":"caf\\u00e9 <&> é"}';
    const body = dec.decode(buildBody(joinEvents([raw, raw]), 2, 1767225600, "c2ln"));
    expect(body).toBe(`{"events":[${raw},${raw}],"ts":1767225600,"sig":"c2ln"}`);
  });

  test("a retried batch is signed again with the new time", () => {
    const id = parseSoul(soulOf("alice").soul, "alice");
    const batch = new Batch();
    batch.add(enc.encode("{}"), 0, 2, "f1fae8ee53be92ec033ea00bf23f8877", "ping");
    const a = signBatch(batch, id, 1767225600_000);
    const b = signBatch(batch, id, 1767225601_000);
    expect(a.ts).toBe(1767225600);
    expect(b.ts).toBe(1767225601);
    expect(a.sig).not.toBe(b.sig);
  });
});

describe("the soul without a name", () => {
  test("gives the same keypair as the bonded identity", () => {
    for (const v of soulVectors.valid) {
      const k = keypairFromSoul(v.soul);
      expect(k.publicKey).toBe(v.public_key);
      expect(k.sign("x")).toBe(parseSoul(v.soul, v.name).sign("x"));
    }
  });
  test("rejects what is not a soul, without echoing it", () => {
    expect(() => keypairFromSoul("0OIl")).toThrow(/Base58/);
    try {
      keypairFromSoul("abc");
      throw new Error("no error");
    } catch (err) {
      expect(String((err as Error).message)).toMatch(/40/);
      expect(String((err as Error).message)).not.toContain("abc");
    }
  });
});

describe("validation", () => {
  test("every Go-encoded vector event is valid with its id, ts text and service", () => {
    for (const c of eventVectors.cases) {
      const v = check(c.json);
      if (!v.ok) throw new Error(`${c.name}: ${v.reason}`);
      expect(v.id).toBe(c.id);
      expect(v.tsText).toBe(c.ts_decimal);
      expect(v.svc).toBe(c.service);
      expect(v.signed).toBe(c.signed);
    }
  });

  test("decode cases: Go's case-insensitive keys and last-wins, and its refusals", () => {
    for (const c of eventVectors.decode_cases) {
      const v = check(c.input);
      if (c.go_error) {
        expect(v.ok).toBe(false);
      } else {
        if (!v.ok) throw new Error(`${c.note}: ${v.reason}`);
        const want = JSON.parse(c.canonical!.replace(/"ts":(\d+)/, '"ts":"$1"')) as { id: string; ts: string; svc: string };
        expect(v.id).toBe(want.id);
        expect(v.tsText).toBe(want.ts);
        expect(v.svc).toBe(want.svc);
      }
    }
  });

  test("a known service without its payload is invalid (real peers drop the connection)", () => {
    const v = check(eventVectors.payload_missing.input);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toContain("social");
    const nulled = check('{"id":"a","ts":1,"svc":"ping","ping":null}');
    expect(nulled.ok).toBe(false);
    // The last duplicate wins: a null after the object removes the payload.
    expect(check('{"id":"a","ts":1,"svc":"ping","ping":{"rtt":1},"Ping":null}').ok).toBe(false);
    // An unknown service needs no payload.
    expect(check('{"id":"a","ts":1,"svc":"zine"}').ok).toBe(true);
  });

  test("bad lines get a reason", () => {
    const bad: [string, RegExp][] = [
      ["not json", /not a JSON object/],
      ["[1,2]", /array/],
      ['{"id":"a","ts":1,"svc":"zine"', /end|unterminated|expected/i],
      ['{"ts":1,"svc":"zine"}', /id/],
      ['{"id":"","ts":1,"svc":"zine"}', /id/],
      ['{"id":5,"ts":1,"svc":"zine"}', /string/],
      ['{"id":"a","svc":"zine"}', /ts/],
      ['{"id":"a","ts":1.5,"svc":"zine"}', /ts|int64/],
      ['{"id":"a","ts":"1","svc":"zine"}', /ts|int64/],
      ['{"id":"a","ts":9223372036854775808,"svc":"zine"}', /ts|int64/],
      ['{"id":"a","ts":1,"svc":"ping","ping":{"rtt":"5"}}', /rtt/],
      ['{"id":"a","ts":1,"svc":"ping","ping":{"rtt":1e400}}', /rtt/],
      ['{"id":"a","ts":1,"svc":"observation","observation":{"importance":1.5}}', /importance/],
      ['{"id":"a","ts":1,"svc":"zine","social":{"actor":1}}', /actor/],
      ['{"id":"a","ts":1,"svc":"checkpoint","checkpoint":{"voter_ids":[1]}}', /voter_ids/],
      ['{"id":"a","ts":1,"svc":"zine","emitter":5}', /emitter/],
      ['{"id":"a","ts":1,"svc":"observation","observation":{"observer_uptime":-1}}', /observer_uptime/],
      ['{"id":"a","ts":1,"svc":"checkpoint","checkpoint":{"observation":{"restarts":"3"}}}', /restarts/],
      ['{"id":"a","ts":1,"svc":"observation","observation":{"is_backfill":1}}', /is_backfill/],
    ];
    for (const [line, reason] of bad) {
      const v = check(line);
      if (v.ok) throw new Error(`accepted: ${line}`);
      expect(v.reason).toMatch(reason);
    }
    const b = new Uint8Array([...enc.encode('{"id":"a'), 0xff, ...enc.encode('","ts":1,"svc":"zine"}')]);
    const v = validateLine(b, 0, b.length);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.reason).toContain("UTF-8");
  });

  test("ids are decoded as Go decodes them (escapes, lone surrogates)", () => {
    const v = check('{"id":"\\u0061b\\ud800","ts":-0,"svc":"zine"}');
    if (!v.ok) throw new Error(v.reason);
    expect(v.id).toBe("ab\ufffd");
    expect(v.tsText).toBe("0");
  });

  test("--nara names come from the emitter and the payload", () => {
    const hey = eventVectors.cases.find((c) => c.name === "hey-there")!;
    const v = check(hey.json, { withNaras: true });
    if (!v.ok) throw new Error(v.reason);
    expect(v.naras).toContain("alice");
    const obs = check('{"id":"a","ts":1,"svc":"observation","observation":{"observer":"x","subject":"y","type":"restart"}}', { withNaras: true });
    if (!obs.ok) throw new Error(obs.reason);
    expect([...obs.naras].sort()).toEqual(["x", "y"]);
  });

  test("the fast path never disagrees with parseEvent (generated events and mutations)", () => {
    const naras = generateNaras(4, 3);
    const events = generateEvents({ naras, count: 1500, seed: 3, unknownRate: 0.05 });
    const rng = new Rng(99);
    const mutate = (raw: string): string => {
      switch (rng.int(8)) {
        case 0: // a key in another case
          return raw.replace(/"(svc|id|ts|ping|social|observer|rtt|From|type)"/, (_, k: string) => `"${k.toUpperCase()}"`);
        case 1: // a duplicate key at the end
          return raw.replace(/}$/, `,"svc":"ping"}`);
        case 2: // a number where a string goes
          return raw.replace(/"actor":"[^"]*"/, '"actor":7');
        case 3: // a float where an int goes
          return raw.replace(/"importance":\d+/, '"importance":2.0');
        case 4: // the payload removed
          return raw.replace(/,"(social|ping|observation|hey_there|chau|seen|checkpoint)":\{.*\}$/, "}");
        case 5: // escapes in the id
          return raw.replace(/"id":"([0-9a-f])/, '"id":"\\u00$1'.replace("$1", "3") + "$1");
        case 6: // null values
          return raw.replace(/"emitter":"[^"]*"/, '"emitter":null');
        default:
          return raw;
      }
    };
    let plain = 0;
    for (const e of events) {
      for (const [k, line] of [e.raw, mutate(e.raw), mutate(mutate(e.raw))].entries()) {
        const b = enc.encode(line);
        // The fast path answers, declines (null) or finds the JSON malformed (ScanError); any other throw is a crash and fails the test.
        let f: ReturnType<typeof fastCheck> = null;
        let malformed = false;
        try {
          f = fastCheck(b, 0, b.length);
        } catch (err) {
          if (!(err instanceof ScanError)) throw err;
          malformed = true;
        }
        const slow = slowCheck(line, false);
        if (malformed) expect(slow.ok).toBe(false);
        if (f) {
          if (k === 0) plain++;
          if (!slow.ok) throw new Error(`fast path accepted what parseEvent refuses: ${line}: ${slow.reason}`);
          expect({ id: f.id, ts: f.tsText, svc: f.svc, signed: f.signed }).toEqual({ id: slow.id, ts: slow.tsText, svc: slow.svc, signed: slow.signed });
        }
        const v = validateLine(b, 0, b.length);
        expect(v.ok).toBe(slow.ok);
      }
    }
    // Plain Go-encoded events take the fast path, every one of them.
    expect(plain).toBe(events.length);
  });

  test("the fast path answers only plain lines and leaves the rest to parseEvent", () => {
    const fast = (line: string) => {
      const b = enc.encode(line);
      return fastCheck(b, 0, b.length);
    };
    expect(fast('{"id":"a","ts":17,"svc":"zine","emitter":"e","sig":"s"}')).toEqual({ id: "a", tsText: "17", svc: "zine", signed: true, idS: 7, idE: 8 });
    expect(fast('{"ID":"a","ts":17,"svc":"zine","sig":"s"}')).toEqual({ id: "a", tsText: "17", svc: "zine", signed: false, idS: 7, idE: 8 });
    for (const line of [
      '{"id":"a","id":"b","ts":1,"svc":"zine"}', // repeated key
      '{"id":"a","Id":"b","ts":1,"svc":"zine"}', // repeated after case folding
      '{"id":"a","ts":1,"\\u0073vc":"ping","ping":{}}', // escaped key
      '{"id":"a","ts":1,"\\u017fvc":"ping","ping":{}}', // ſ (escaped) folds onto s in Go
      '{"id":"a","ts":1,"\u017fvc":"ping","ping":{}}', // ſ (raw UTF-8)
      '{"id":"a","ts":1,"svc":"ping","ping":{"rtt":1,"RTT":2}}', // repeated inside a payload
      '{"id":"a","ts":1,"svc":"ping"}', // payload missing
      '{"id":"a","ts":1,"svc":"ping","ping":{"observer_uptime":-1,"rtt":"x"}}', // type error
      '{"id":"a","ts":1,"svc":"observation","observation":{"observer_uptime":-1}}', // negative uint64
      '{"id":"a","ts":1,"svc":"ping","ping":{"rtt":1e999}}', // float overflow
      '{"id":"","ts":1,"svc":"zine"}', // empty id
      '{"id":null,"ts":1,"svc":"zine"}', // null id
    ]) {
      expect([line, fast(line)]).toEqual([line, null]);
    }
    // What the fast path defers is still decided right by the reference.
    expect(check('{"id":"a","ts":1,"\u017fvc":"ping","ping":{"rtt":1}}').ok).toBe(true);
    expect(check('{"id":"a","ts":1,"\\u017fvc":"ping","ping":null}').ok).toBe(false);
    expect(check('{"id":"\\u0061","ts":1,"\\u0073vc":"zine","\\u0073vc":"ping","ping":{"rtt":1}}')).toMatchObject({ ok: true, id: "a", svc: "ping" });
    expect(check('{"id":"a","id":"b","ts":1,"svc":"zine"}')).toMatchObject({ ok: true, id: "b" });
  });

  test("byte order marks are recognised", () => {
    const b = new Uint8Array([0xef, 0xbb, 0xbf, 0x7b]);
    expect(bomLength(b, 0, 4)).toBe(3);
    expect(bomLength(b, 1, 4)).toBe(0);
  });
});

describe("filters", () => {
  test("times: RFC 3339, Unix seconds and nanoseconds, exact", () => {
    expect(parseTime("2026-01-01T00:00:00Z", "--since")).toBe(1767225600000000000n);
    expect(parseTime("2026-01-01", "--since")).toBe(1767225600000000000n);
    expect(parseTime("2026-01-01T01:00:00+01:00", "--since")).toBe(1767225600000000000n);
    expect(parseTime("2025-12-31T19:00:00.123456789-05:00", "--since")).toBe(1767225600123456789n);
    expect(parseTime("1767225600", "--since")).toBe(1767225600000000000n);
    expect(parseTime("1767225600.5", "--since")).toBe(1767225600500000000n);
    expect(parseTime("1767225600123456789", "--since")).toBe(1767225600123456789n);
    expect(parseTime("0", "--since")).toBe(0n);
    for (const bad of ["1767225600123", "2026-02-30", "2026-01-01T25:00:00Z", "yesterday", "", "2026-01-01T00:00:00+24:00"]) {
      expect(() => parseTime(bad, "--since")).toThrow(NaraError);
    }
    expect(formatNs(1767225600123456789n)).toBe("2026-01-01T00:00:00.123456789Z");
  });

  test("--since is inclusive, --until exclusive, compared beyond 2^53", () => {
    const f = parseFilter({ since: "1767225600123456789", until: "1767225600123456791" });
    const at = (ts: string) => matches(f, { svc: "ping", tsText: ts, naras: [] });
    expect(at("1767225600123456788")).toBe(false);
    expect(at("1767225600123456789")).toBe(true);
    expect(at("1767225600123456790")).toBe(true);
    expect(at("1767225600123456791")).toBe(false);
    expect(() => parseFilter({ since: "2026-01-02", until: "2026-01-01" })).toThrow(/not before/);
  });

  test("--service and --nara", () => {
    const warnings: string[] = [];
    const f = parseFilter({ service: "social, hey_there", nara: "alice,bob" }, ["social", "hey-there"], (m) => warnings.push(m));
    expect(warnings.join()).toContain("did you mean hey-there");
    expect(matches(f, { svc: "social", tsText: "1", naras: ["carol", "bob"] })).toBe(true);
    expect(matches(f, { svc: "social", tsText: "1", naras: ["carol"] })).toBe(false);
    expect(matches(f, { svc: "ping", tsText: "1", naras: ["alice"] })).toBe(false);
    expect(() => parseFilter({ service: " , " })).toThrow(/empty/);
  });

  test("planned service counts after --skip", () => {
    const services = new Map([
      ["hey-there", 3],
      ["social", 10],
    ]);
    expect(plannedServices(services, 3, 0)).toEqual({ "hey-there": 3, social: 10 });
    expect(plannedServices(services, 3, 2)).toEqual({ "hey-there": 1, social: 10 });
    expect(plannedServices(services, 3, 5)).toEqual({ social: 8 });
  });
});

describe("the ID index", () => {
  test("hex and other IDs, through several growths", () => {
    const idx = new IdIndex(1024);
    const ids: string[] = [];
    const rng = new Rng(5);
    for (let i = 0; i < 20000; i++) {
      const hex = Array.from(rng.bytes(16), (b) => b.toString(16).padStart(2, "0")).join("");
      ids.push(i % 7 === 0 ? `id-${i}` : i % 11 === 0 ? hex.toUpperCase() : hex);
    }
    ids.push("00000000000000000000000000000000");
    ids.forEach((id, i) => {
      expect(idx.get(id)).toBeUndefined();
      idx.set(id, { input: i % 3, line: i + 1, signed: i % 2 === 0, selected: i % 5 !== 0 });
    });
    expect(idx.size).toBe(ids.length);
    ids.forEach((id, i) => {
      expect(idx.get(id)).toEqual({ input: i % 3, line: i + 1, signed: i % 2 === 0, selected: i % 5 !== 0 });
    });
    idx.set(ids[3]!, { input: 9, line: 77, signed: true, selected: true });
    expect(idx.get(ids[3]!)).toEqual({ input: 9, line: 77, signed: true, selected: true });
    expect(idx.size).toBe(ids.length);
  });

  test("an ID looked up by its bytes is the ID looked up by its text", () => {
    const idx = new IdIndex(1024);
    const rng = new Rng(6);
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) {
      const hex = Array.from(rng.bytes(16), (b) => b.toString(16).padStart(2, "0")).join("");
      ids.push(i % 7 === 0 ? `id-${i}` : i % 11 === 0 ? hex.toUpperCase() : i % 13 === 0 ? hex.slice(1) : hex);
    }
    const line = new TextEncoder().encode(ids.map((id) => `{"id":"${id}"}`).join("\n"));
    let at = 0;
    const spans = ids.map((id) => {
      const s = at + 7;
      at += id.length + 10;
      return [s, s + id.length] as const;
    });
    // Half in by bytes, half by text; each then found both ways, with what was stored.
    ids.forEach((id, i) => {
      const [s, e] = spans[i]!;
      expect(i % 2 === 0 ? idx.getAt(line, s, e) : idx.get(id)).toBeUndefined();
      idx.setFound({ input: 0, line: i + 1, signed: false, selected: true });
    });
    expect(idx.size).toBe(ids.length);
    ids.forEach((id, i) => {
      const [s, e] = spans[i]!;
      const want = { input: 0, line: i + 1, signed: false, selected: true };
      expect(idx.get(id)).toEqual(want);
      expect(idx.getAt(line, s, e)).toEqual(want);
    });
    // setFound after getAt replaces that entry, and set(id) after getAt looks the ID up again.
    const [s3, e3] = spans[3]!;
    idx.getAt(line, s3, e3);
    idx.setFound({ input: 2, line: 9, signed: true, selected: false });
    expect(idx.get(ids[3]!)).toEqual({ input: 2, line: 9, signed: true, selected: false });
    idx.getAt(line, s3, e3);
    idx.set(ids[4]!, { input: 1, line: 1, signed: true, selected: true });
    expect(idx.get(ids[4]!)).toEqual({ input: 1, line: 1, signed: true, selected: true });
    expect(idx.get(ids[3]!)).toEqual({ input: 2, line: 9, signed: true, selected: false });
    expect(idx.size).toBe(ids.length);
  });

  test("line bits", () => {
    const b = new LineBits();
    b.set(1, true);
    b.set(100000, true);
    b.set(100000, true);
    expect(b.count).toBe(2);
    expect(b.has(1)).toBe(true);
    expect(b.has(2)).toBe(false);
    b.set(1, false);
    expect(b.has(1)).toBe(false);
    expect(b.count).toBe(1);
  });
});

describe("URLs and retries", () => {
  test("the import endpoint from what the user typed", () => {
    expect(importUrl("http://localhost:8080")).toBe("http://localhost:8080/api/events/import");
    expect(importUrl("localhost:8080/")).toBe("http://localhost:8080/api/events/import");
    expect(importUrl("https://nara.example/base/")).toBe("https://nara.example/base/api/events/import");
    expect(importUrl("http://h:1/api/events/import")).toBe("http://h:1/api/events/import");
    expect(() => importUrl("ftp://h")).toThrow(NaraError);
    expect(() => importUrl("")).toThrow(NaraError);
    expect(displayUrl("http://u:p@h:1/x")).toBe("http://h:1/x");
  });

  test("backoff grows, is capped and jittered", () => {
    expect(backoffDelay(1, 500, 30_000, () => 1)).toBe(500);
    expect(backoffDelay(1, 500, 30_000, () => 0)).toBe(250);
    expect(backoffDelay(4, 500, 30_000, () => 1)).toBe(4000);
    expect(backoffDelay(40, 500, 30_000, () => 1)).toBe(30_000);
  });
});

describe("why a 403", () => {
  const body = (key: string) => (JSON.parse(importVectors.responses[key]!) as { error: string }).error;
  const base = { localNowMs: Date.parse("2026-01-01T00:00:00Z"), acceptedBatches: 0 };

  test("Go's own error texts map to the three causes", () => {
    expect(refusalCause({ ...base, error: body("error_stale_ts_403") }).cause).toBe("clock");
    expect(refusalCause({ ...base, error: body("error_bad_signature_403") }).cause).toBe("soul");
    expect(refusalCause({ ...base, error: body("error_bad_base64_403") }).cause).toBe("signature");
  });

  test("the Date header reveals a skewed clock even behind a vague error", () => {
    const r = refusalCause({ ...base, error: "Authentication failed", serverDateMs: base.localNowMs - 10 * 60_000 });
    expect(r.cause).toBe("clock");
    expect(refusalCause({ ...base, error: "Authentication failed", serverDateMs: base.localNowMs - 2000 }).cause).toBe("unknown");
  });

  test("the hint names the soul's key, and the nara ID and name when the bond was checked", () => {
    const v = soulOf("alice");
    const signer = { identity: parseSoul(v.soul, "alice"), bondChecked: true, source: "env" as const };
    const err = refusalError({ ...base, error: body("error_bad_signature_403"), url: "http://h/", signer });
    expect(err.exitCode).toBe(ExitCode.refused);
    expect(err.hint).toContain(v.public_key);
    expect(err.hint).toContain(v.nara_id);
    expect(err.hint).toContain("alice");
    expect(err.hint).toContain("not this nara's");
    expect(err.hint).not.toContain(v.soul);
    const unbonded = refusalError({ ...base, error: body("error_bad_signature_403"), url: "http://h/", signer: { ...signer, identity: keypairFromSoul(v.soul), bondChecked: false } });
    expect(unbonded.hint).toContain(v.public_key);
    expect(unbonded.hint).not.toContain(v.nara_id);
    const later = refusalError({ ...base, acceptedBatches: 2, error: body("error_stale_ts_403"), url: "http://h/", signer });
    expect(later.exitCode).toBe(ExitCode.partial);
    expect(later.hint).toMatch(/clock/);
  });
});

describe("the send settings and the stop texts", () => {
  test("checkSendSettings: the batch size, in-flight limit and timeout a restore cannot run with", () => {
    const fails = (s: Parameters<typeof checkSendSettings>[0]): NaraError => {
      try {
        checkSendSettings(s);
      } catch (err) {
        return err as NaraError;
      }
      throw new Error("no error");
    };
    expect(() => checkSendSettings({ batchSize: 1, timeoutMs: 1 })).not.toThrow();
    expect(fails({ batchSize: 0, timeoutMs: 1 }).message).toBe("--batch-size must be at least 1");
    expect(fails({ batchSize: 1.5, timeoutMs: 1 }).message).toBe("--batch-size must be at least 1");
    expect(fails({ batchSize: 1, inFlight: 0, timeoutMs: 1 }).message).toBe("--in-flight must be at least 1");
    const timeout = fails({ batchSize: 1, timeoutMs: 0 });
    expect(timeout.message).toBe("--timeout must be more than 0");
    expect(timeout.exitCode).toBe(ExitCode.usage);
  });

  test("pass 1 takes a second thread only where a core is spare: on two, the other is the nara's", () => {
    expect(parallelCheckBytes(1)).toBe(Infinity);
    expect(parallelCheckBytes(2)).toBe(Infinity);
    expect(parallelCheckBytes(3)).toBe(PARALLEL_CHECK_BYTES);
    expect(parallelCheckBytes(16)).toBe(PARALLEL_CHECK_BYTES);
  });

  test("a FIFO is never peeked at to tell whether it is plain (what is read from it is gone)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "nara-fifo-"));
    try {
      const fifo = join(dir, "in");
      expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
      // Reading it would wait for a writer that never comes: the answer comes from its type alone.
      expect(await isPlainFile({ name: fifo, path: fifo, size: 0 })).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("interrupted: resumable only once something was accepted", () => {
    const none = emptySummary("http://h:8080/api/events/import", false);
    interrupted(none);
    expect(none.exitCode).toBe(ExitCode.interrupted);
    expect(none.failure?.message).toBe("interrupted: nothing restored");
    const some = { ...emptySummary("http://h:8080/api/events/import", false), sent: 4000, batches: 2, resumeSkip: 4000 };
    interrupted(some);
    expect(some.failure?.message).toBe("interrupted: 4000 event(s) restored in 2 batch(es); --skip 4000 resumes");
    expect(some.failure?.exitCode).toBe(ExitCode.interrupted);
  });

  test("invalid and changed input: usage before sending, partial once something was sent", () => {
    expect(invalidInputError(3).message).toBe("3 invalid line(s) in the input: nothing was sent");
    expect(invalidInputError(3).exitCode).toBe(ExitCode.usage);
    expect(countChangedError(10, 9, 0).exitCode).toBe(ExitCode.failed);
    expect(countChangedError(10, 9, 5).exitCode).toBe(ExitCode.partial);
    expect(countChangedError(10, 9, 5).message).toBe("the input changed while restoring: 10 events were validated, 9 found when sending");
  });
});
