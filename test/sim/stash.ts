/**
 * A simulated nara's stash routes, as ../shared/STASH.md read them in
 * nara's source (http_stash.go, services/stash/service.go):
 *
 *   GET  /api/stash/status      no auth, no method check; my_stash.data is the
 *                               stash decoded into a Go map and re-encoded
 *                               (keys sorted, numbers float64), null when the
 *                               stash is not a JSON object
 *   POST /api/stash/update      no auth; the raw body is the stash; stored
 *                               locally first, then distributed: HTTP 200
 *                               success:false while fewer than 3 peers are online
 *   POST /api/stash/recover     always 200 success:true; recovery in the background
 *   GET  /api/stash/confidants  {"confidants":[...]}
 *
 * Only on the UI server (-serve-ui): with `serveUi` false they are Go's 404.
 * (A real nara serves them on its UI port, not the mesh port; the simulated
 * peer has one server for both.)
 * Confidants hold the stash sealed with nara's own scheme (STASH.md §3);
 * restart() loses the owner's RAM copy as a real restart does, and the
 * confidants' hey-there push brings it back after a given number of status
 * requests (a count, not a clock, so tests need no sleeps).
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { goJson, goJsonString } from "../../src/events/gojson.ts";
import type { SimNara } from "./generate.ts";

// ---------------------------------------------------------------------------
// nara's stash crypto (identity/crypto.go): HKDF-SHA256(seed, "nara:stash:v1", "symmetric") -> XChaCha20-Poly1305, no AAD

const enc = new TextEncoder();
export const naraStashKey = (seed: Uint8Array): Uint8Array => hkdf(sha256, seed, enc.encode("nara:stash:v1"), enc.encode("symmetric"), 32);
export const naraSeal = (seed: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array): Uint8Array =>
  xchacha20poly1305(naraStashKey(seed), nonce).encrypt(plaintext);
export function naraOpen(seed: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array): Uint8Array {
  if (nonce.length !== 24) throw new Error("invalid nonce size");
  return xchacha20poly1305(naraStashKey(seed), nonce).decrypt(ciphertext);
}

// ---------------------------------------------------------------------------
// Go's view of a stash: json.Unmarshal into map[string]interface{}, json.Marshal back

/** What the status endpoint shows as `data`: the re-encoded object, or "null". */
export function goReencode(raw: string): string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return "null";
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return "null";
  return goJson(sorted(value));
}

/** Maps with keys in Go's order (UTF-8 bytes), recursively; numbers stay float64 as JSON.parse made them. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  // Go fails to convert an out-of-range number, saves the error and leaves that value nil.
  if (typeof value === "number" && !Number.isFinite(value)) return null;
  if (typeof value !== "object" || value === null) return value;
  const keys = Object.keys(value).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return new Map(keys.map((k) => [k, sorted((value as Record<string, unknown>)[k])]));
}

// ---------------------------------------------------------------------------
// The routes

export type StashSimOptions = {
  /** The nara was started with -serve-ui (default true). */
  serveUi?: boolean;
  /** Peers it sees online; default: every other nara it knows. */
  onlinePeers?: number;
};

export type SimStash = {
  /** Mutable: false answers every stash route with 404, as the mesh server does. */
  serveUi: boolean;
  /** Mutable: fewer than 3 makes distribution fail (success:false). */
  onlinePeers: number;
  /** The owner's stash exactly as last POSTed, and its Unix-seconds timestamp. */
  readonly raw: string | undefined;
  readonly timestamp: number | undefined;
  readonly confidants: readonly string[];
  /** What each confidant holds, sealed with nara's scheme. */
  readonly held: ReadonlyMap<string, { nonce: Uint8Array; ciphertext: Uint8Array; storedAt: number }>;
  stats: { status: number; updates: number; failedUpdates: number };
  /** Sets the owner's stash without distributing it (e.g. a stash that is not an object). */
  set(raw: string): void;
  /** A restart: the RAM copy and confidant list are lost; after `pushAfterStatus` status requests the confidants' push restores it. */
  restart(pushAfterStatus?: number): void;
  handle(req: Request, path: string): Promise<Response> | Response | undefined;
};

const TARGET = 3;

export function startStash(nara: SimNara, known: readonly SimNara[], now: () => number, opts: StashSimOptions = {}): SimStash {
  const others = known.filter((n) => n.name !== nara.name);
  let raw: string | undefined;
  let timestamp: number | undefined;
  let confidants: SimNara[] = [];
  const held = new Map<string, { nonce: Uint8Array; ciphertext: Uint8Array; storedAt: number }>();
  let pushIn: number | undefined;
  const seconds = () => Math.floor(now() / 1000);

  const json = (body: string, status = 200) => new Response(body, { status, headers: { "content-type": "application/json" } });
  const text = (body: string, status: number) => new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });

  const confidantsJson = () =>
    `[${confidants.map((c) => goJson({ id: c.naraId, status: "confirmed", name: c.name, memory_mode: "short", online: true })).join(",")}]`;

  const distribute = (): string | undefined => {
    if (confidants.length < TARGET) {
      confidants = [];
      if (sim.onlinePeers < TARGET) return `need at least ${TARGET} online peers, only found ${sim.onlinePeers}`;
      confidants = others.slice(0, TARGET);
    }
    const seed = nara.identity.seedBytes();
    for (const c of confidants) {
      const nonce = crypto.getRandomValues(new Uint8Array(24));
      held.set(c.name, { nonce, ciphertext: naraSeal(seed, nonce, enc.encode(raw!)), storedAt: seconds() });
    }
    return undefined;
  };

  const sim: SimStash = {
    serveUi: opts.serveUi ?? true,
    onlinePeers: opts.onlinePeers ?? others.length,
    get raw() {
      return raw;
    },
    get timestamp() {
      return timestamp;
    },
    get confidants() {
      return confidants.map((c) => c.name);
    },
    held,
    stats: { status: 0, updates: 0, failedUpdates: 0 },
    set(value) {
      raw = value;
      timestamp = seconds();
    },
    restart(pushAfterStatus = 1) {
      raw = undefined;
      timestamp = undefined;
      confidants = [];
      pushIn = held.size > 0 ? pushAfterStatus : undefined;
    },
    handle(req, path) {
      if (!path.startsWith("/api/stash/")) return undefined;
      if (!sim.serveUi) return text("404 page not found\n", 404);
      switch (path) {
        case "/api/stash/status":
          return status();
        case "/api/stash/update":
          return update(req);
        case "/api/stash/recover":
          if (req.method !== "POST") return text("Method not allowed\n", 405);
          return json('{"message":"Stash recovery initiated from confidants","success":true}');
        case "/api/stash/confidants":
          return json(`{"confidants":${confidantsJson()}}`);
        default:
          return text("404 page not found\n", 404);
      }
    },
  };

  function status(): Response {
    sim.stats.status++;
    if (pushIn !== undefined && --pushIn <= 0) {
      // The hey-there push (handleResponseV1): accepted only while the owner has no stash.
      pushIn = undefined;
      const copy = [...held.values()][0];
      if (copy && raw === undefined) {
        raw = new TextDecoder().decode(naraOpen(nara.identity.seedBytes(), copy.nonce, copy.ciphertext));
        timestamp = copy.storedAt;
        confidants = others.filter((o) => held.has(o.name));
      }
    }
    const mine = raw === undefined ? "null" : `{"data":${goReencode(raw)},"timestamp":${timestamp}}`;
    // map[string]interface{} marshals with sorted keys.
    return json(
      `{"confidants":${confidantsJson()},"has_stash":${raw !== undefined},"metrics":{"stashes_stored":0,"storage_limit":5,"total_bytes":0},"my_stash":${mine},"target_count":${TARGET}}`,
    );
  }

  async function update(req: Request): Promise<Response> {
    if (req.method !== "POST") return text("Method not allowed\n", 405);
    sim.stats.updates++;
    const body = await req.text();
    try {
      if (!body.trim()) throw new Error("empty");
      JSON.parse(body);
    } catch {
      return text("Invalid JSON\n", 400);
    }
    // SetStashData stores locally first: has_stash is true even when distribution fails.
    raw = body;
    timestamp = seconds();
    const failure = distribute();
    if (failure) {
      sim.stats.failedUpdates++;
      return json(`{"message":${goJsonString(`Failed to distribute stash: ${failure}`)},"success":false}`);
    }
    return json('{"message":"Stash updated and distributed to confidants","success":true}');
  }

  return sim;
}
