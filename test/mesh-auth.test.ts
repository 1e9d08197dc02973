// Expectations come from Go-computed vectors (/work/shared/vectors/{mesh_auth,sync_response_sig,import_auth,souls}.json).
import { describe, expect, test } from "bun:test";
import { edVerify, sha256, utf8 } from "../src/identity/crypto.ts";
import { parseSoul, type Identity } from "../src/identity/soul.ts";
import {
  AUTH_WINDOW_MS,
  importPreimage,
  requestMessage,
  responseMessage,
  signImport,
  signImportJoined,
  signRequest,
  signResponse,
  signSyncBody,
  syncBodyPreimage,
  verifyRequest,
  verifyResponse,
} from "../src/mesh/auth.ts";
import { eventId, parseEvent, verifyEventSignature, eventContent } from "../src/events/id.ts";
import { goJson, goRaw } from "../src/events/gojson.ts";
import { JsonNumber, JsonObject, parseJsonText, type JsonValue } from "../src/events/jsontext.ts";

const load = async <T>(file: string): Promise<T> =>
  (await Bun.file(new URL(`../../shared/vectors/${file}`, import.meta.url)).json()) as T;

type Headers3 = { "X-Nara-Name": string; "X-Nara-Signature": string; "X-Nara-Timestamp": string };
type MeshAuth = {
  request: {
    name: string;
    public_key: string;
    timestamp_ms: number;
    method: string;
    path: string;
    message: string;
    signature: string;
    headers: Headers3;
  }[];
  response: {
    name: string;
    public_key: string;
    timestamp_ms: number;
    body: string;
    body_sha256_base64: string;
    message: string;
    signature: string;
  }[];
  sync_request_bodies: { description: string; json: string }[];
};
/** A signature over a timestamp and a list of event IDs, as the vectors give it. */
type SignedIds = {
  public_key: string;
  ts: number;
  event_ids: string[];
  preimage: string;
  sha256_hex: string;
  signature: string;
};
type SyncSig = {
  cases: (SignedIds & { from: string })[];
  full_responses: { body: string; description: string }[];
};
type ImportAuth = {
  cases: (SignedIds & { signer_name: string; request_body?: string })[];
  responses: Record<string, string>;
};

const souls = await load<{ valid: { name: string; soul: string; public_key: string }[] }>("souls.json");
const meshAuth = await load<MeshAuth>("mesh_auth.json");
const syncSig = await load<SyncSig>("sync_response_sig.json");
const importAuth = await load<ImportAuth>("import_auth.json");

const identities = new Map<string, Identity>(souls.valid.map((v) => [v.name, parseSoul(v.soul, v.name)]));
const publicKeys = new Map<string, string>(souls.valid.map((v) => [v.name, v.public_key]));
const identity = (name: string): Identity => {
  const id = identities.get(name);
  if (!id) throw new Error(`no soul for ${name} in souls.json`);
  return id;
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
const headerSource = (h: Record<string, string>) => new Headers(h);

/** The members of a JSON body, each event with its exact source text. */
function readBody(body: string): { obj: JsonObject; events: string[] | null } {
  const tree = parseJsonText(body);
  if (!(tree instanceof JsonObject)) throw new Error("body is not an object");
  const events = tree.get("events");
  if (events === null) return { obj: tree, events: null };
  if (!Array.isArray(events)) throw new Error("events is not a list");
  return { obj: tree, events: events.map((e) => body.slice((e as JsonObject).start, (e as JsonObject).end)) };
}
const num = (v: JsonValue | undefined): string => (v as JsonNumber).text;

describe("request headers (mesh_auth.json)", () => {
  for (const v of meshAuth.request) {
    test(`${v.name} ${v.method} ${v.path}: signRequest`, () => {
      const id = identity(v.name);
      expect(id.publicKey).toBe(v.public_key);
      expect(requestMessage(v.name, v.timestamp_ms, v.method, v.path)).toBe(v.message);
      expect(signRequest(id, v.method, v.path, v.timestamp_ms)).toEqual(v.headers);
      // The query string is not signed.
      expect(signRequest(id, v.method, `${v.path}?since=1&x=y`, v.timestamp_ms)["X-Nara-Signature"]).toBe(v.signature);
    });

    test(`${v.name} ${v.method} ${v.path}: verifyRequest`, () => {
      const keyOf = (name: string) => (name === v.name ? v.public_key : undefined);
      const h = headerSource(v.headers);
      const t = v.timestamp_ms;
      expect(verifyRequest(h, v.method, v.path, keyOf, t)).toEqual({ ok: true, name: v.name });
      expect(verifyRequest(h, v.method, `${v.path}?cursor=5`, keyOf, t)).toEqual({ ok: true, name: v.name });
      // 30 s either way is accepted; one millisecond more is clock skew.
      expect(verifyRequest(h, v.method, v.path, keyOf, t + AUTH_WINDOW_MS).ok).toBe(true);
      expect(verifyRequest(h, v.method, v.path, keyOf, t - AUTH_WINDOW_MS).ok).toBe(true);
      expect(verifyRequest(h, v.method, v.path, keyOf, t + AUTH_WINDOW_MS + 1)).toEqual({ ok: false, reason: "clock-skew" });
      expect(verifyRequest(h, v.method, v.path, keyOf, t - AUTH_WINDOW_MS - 1)).toEqual({ ok: false, reason: "clock-skew" });
      expect(verifyRequest(h, v.method, v.path, () => undefined, t)).toEqual({ ok: false, reason: "unknown-key" });
      const otherKey = v.name === "bob" ? publicKeys.get("alice")! : publicKeys.get("bob")!;
      expect(verifyRequest(h, v.method, v.path, () => otherKey, t)).toEqual({ ok: false, reason: "bad-signature" });
      expect(verifyRequest(h, v.method === "GET" ? "POST" : "GET", v.path, keyOf, t)).toEqual({ ok: false, reason: "bad-signature" });
      expect(verifyRequest(h, v.method, `${v.path}x`, keyOf, t)).toEqual({ ok: false, reason: "bad-signature" });
      for (const drop of Object.keys(v.headers)) {
        const partial = { ...v.headers } as Record<string, string>;
        delete partial[drop];
        expect(verifyRequest(headerSource(partial), v.method, v.path, keyOf, t)).toEqual({ ok: false, reason: "missing-headers" });
      }
      // A signature with a changed timestamp no longer verifies.
      const moved = headerSource({ ...v.headers, "X-Nara-Timestamp": String(t + 1) });
      expect(verifyRequest(moved, v.method, v.path, keyOf, t)).toEqual({ ok: false, reason: "bad-signature" });
    });
  }
});

describe("response headers (mesh_auth.json)", () => {
  for (const v of meshAuth.response) {
    const body = utf8(v.body);
    const headers: Headers3 = {
      "X-Nara-Name": v.name,
      "X-Nara-Timestamp": String(v.timestamp_ms),
      "X-Nara-Signature": v.signature,
    };

    test(`${v.name} ${JSON.stringify(v.body.slice(0, 30))}: signResponse`, () => {
      expect(b64(sha256(body))).toBe(v.body_sha256_base64);
      expect(responseMessage(v.name, v.timestamp_ms, body)).toBe(v.message);
      expect(signResponse(identity(v.name), body, v.timestamp_ms)).toEqual(headers);
    });

    test(`${v.name} ${JSON.stringify(v.body.slice(0, 30))}: verifyResponse`, () => {
      expect(verifyResponse(headerSource(headers), body, v.public_key)).toEqual({ ok: true, name: v.name });
      const tampered = [utf8(`${v.body} `), utf8(v.body.endsWith("\n") ? v.body.slice(0, -1) : `${v.body}\n`)];
      if (v.body.length > 0) tampered.push(utf8(v.body.replace(/.$/su, (c) => (c === "A" ? "B" : "A"))));
      for (const t of tampered) expect(verifyResponse(headerSource(headers), t, v.public_key)).toEqual({ ok: false, reason: "bad-signature" });
      const wrongKey = v.name === "bob" ? publicKeys.get("alice")! : publicKeys.get("bob")!;
      expect(verifyResponse(headerSource(headers), body, wrongKey).ok).toBe(false);
      const { "X-Nara-Signature": _, ...noSig } = headers;
      expect(verifyResponse(headerSource(noSig), body, v.public_key)).toEqual({ ok: false, reason: "missing-headers" });
    });
  }

  test("the sync response in mesh_auth.json carries a valid body sig and event", () => {
    const v = meshAuth.response[0]!;
    const { obj, events } = readBody(v.body);
    const ids = events!.map((e) => parseEvent(e).id!);
    const pre = syncBodyPreimage(obj.get("from") as string, num(obj.get("ts")), ids);
    expect(edVerify(obj.get("sig") as string, sha256(pre), v.public_key)).toBe(true);
    for (const raw of events!) {
      const ev = parseEvent(raw);
      expect(eventId(ev.ts, ev.svc!, ev.payload)).toBe(ev.id!);
      const content = eventContent(ev.svc!, ev.payload)!;
      expect(verifyEventSignature(ev.sig!, v.public_key, ev.id!, ev.ts, ev.svc!, ev.emitter!, content)).toBe(true);
    }
  });
});

describe("sync request bodies (mesh_auth.json)", () => {
  for (const v of meshAuth.sync_request_bodies) {
    test(v.description, () => {
      const req = JSON.parse(v.json) as Record<string, unknown>;
      // Go's struct order with an omitempty cursor: rebuilt from the parsed values.
      const rebuilt = goJson({
        from: req.from,
        services: req.services,
        subjects: req.subjects,
        mode: req.mode,
        cursor: req.cursor || undefined,
        page_size: req.page_size,
      });
      expect(rebuilt).toBe(v.json);
    });
  }
});

describe("sync response body sig (sync_response_sig.json)", () => {
  for (const v of syncSig.cases) {
    test(`${v.from} ts=${v.ts} ids=${v.event_ids.length}`, () => {
      expect(syncBodyPreimage(v.from, v.ts, v.event_ids)).toBe(v.preimage);
      expect(syncBodyPreimage(v.from, String(v.ts), v.event_ids)).toBe(v.preimage);
      expect(hex(sha256(v.preimage))).toBe(v.sha256_hex);
      expect(signSyncBody(identity(v.from), v.ts, v.event_ids)).toBe(v.signature);
      expect(edVerify(v.signature, sha256(v.preimage), v.public_key)).toBe(true);
      expect(edVerify(v.signature, sha256(`${v.preimage}0`), v.public_key)).toBe(false);
    });
  }

  for (const r of syncSig.full_responses) {
    test(`full response: ${r.description}`, () => {
      const { obj, events } = readBody(r.body);
      const from = obj.get("from") as string;
      const key = publicKeys.get(from)!;
      const ts = num(obj.get("ts"));
      const ids = (events ?? []).map((e) => parseEvent(e).id!);
      // The body sig covers from, ts and the IDs in response order.
      const sig = obj.get("sig") as string;
      expect(edVerify(sig, sha256(syncBodyPreimage(from, ts, ids)), key)).toBe(true);
      expect(edVerify(sig, sha256(syncBodyPreimage(from, ts, [...ids].reverse())), key)).toBe(ids.length < 2);
      const match = syncSig.cases.find((c) => c.signature === sig);
      if (match) expect(ids).toEqual(match.event_ids);
      // Each event: its ID and emitter signature verify.
      for (const raw of events ?? []) {
        const ev = parseEvent(raw);
        expect(eventId(ev.ts, ev.svc!, ev.payload)).toBe(ev.id!);
        const content = eventContent(ev.svc!, ev.payload)!;
        expect(verifyEventSignature(ev.sig!, publicKeys.get(ev.emitter!)!, ev.id!, ev.ts, ev.svc!, ev.emitter!, content)).toBe(true);
      }
      const nextCursor = obj.get("next_cursor");
      if (nextCursor !== undefined) expect(nextCursor).toBe(parseEvent(events!.at(-1)!).ts);
      // The exact bytes: Go field order, events as sent, null for no events, trailing newline.
      const rebuilt = goJson({
        from,
        events: events === null ? null : events.map(goRaw),
        next_cursor: nextCursor,
        ts: BigInt(ts),
        sig,
      });
      expect(`${rebuilt}\n`).toBe(r.body);
      // The same page signed by us is byte-identical (Ed25519 is deterministic).
      expect(signSyncBody(identity(from), Number(ts), ids)).toBe(sig);
    });
  }
});

describe("import signatures (import_auth.json)", () => {
  for (const v of importAuth.cases) {
    test(`${v.signer_name} ts=${v.ts} ids=${JSON.stringify(v.event_ids)}`, () => {
      expect(importPreimage(v.ts, v.event_ids)).toBe(v.preimage);
      expect(hex(sha256(v.preimage))).toBe(v.sha256_hex);
      const id = identity(v.signer_name);
      expect(id.publicKey).toBe(v.public_key);
      expect(signImport(id, v.ts, v.event_ids)).toBe(v.signature);
      expect(signImportJoined(id, v.ts, utf8(v.event_ids.join("")))).toBe(v.signature);
      expect(edVerify(v.signature, sha256(v.preimage), v.public_key)).toBe(true);
    });

    if (v.request_body !== undefined) {
      const body = v.request_body;
      test(`${v.signer_name} ts=${v.ts}: exact request body`, () => {
        const { obj, events } = readBody(body);
        expect(num(obj.get("ts"))).toBe(String(v.ts));
        expect(obj.get("sig")).toBe(v.signature);
        const parsed = (events ?? []).map(parseEvent);
        expect(parsed.map((e) => e.id)).toEqual(v.event_ids);
        for (const ev of parsed) {
          expect(eventId(ev.ts, ev.svc!, ev.payload)).toBe(ev.id!);
          if (ev.sig) {
            const content = eventContent(ev.svc!, ev.payload)!;
            expect(verifyEventSignature(ev.sig, publicKeys.get(ev.emitter!)!, ev.id!, ev.ts, ev.svc!, ev.emitter!, content)).toBe(true);
          }
        }
        // json.Marshal of {events, ts, sig}: no trailing newline; a nil list is null.
        const signed = signImport(identity(v.signer_name), v.ts, v.event_ids);
        const rebuilt = goJson({ events: events === null ? null : events.map(goRaw), ts: v.ts, sig: signed });
        expect(rebuilt).toBe(body);
      });
    }
  }

  test("response bodies are Go-encoded like goJson writes them", () => {
    const r = importAuth.responses;
    expect(`${goJson({ success: true, imported: 2, duplicates: 0, warnings: undefined })}\n`).toBe(r.success!);
    expect(`${goJson({ success: true, imported: 3, duplicates: 1, warnings: 2 })}\n`).toBe(r.success_with_warnings!);
    expect(`${goJson({ success: false, imported: 0, duplicates: 0, error: "Invalid JSON" })}\n`).toBe(r.error_invalid_json_400!);
  });
});
