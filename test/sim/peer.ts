/**
 * One simulated nara: a real Bun.serve HTTP server on loopback that answers
 * like a real (Go) peer does, per /work/shared/PROTOCOL.md:
 *
 *   GET  /ping                 no auth; {"from","mesh_ip","public_key","t"}
 *   POST /events/sync          mesh auth; paging by strictly-greater ts cursor,
 *                              arbitrary order among equal ts (reshuffled on
 *                              every request), body `sig`, signed headers
 *   POST /api/events/import    soul-signed batch import (§5)
 *
 * It also carries fault switches (latency, 5xx, dropped connections, hangs,
 * garbage, truncation, bad signatures, legacy peers, 401s) that tests can flip
 * at runtime through `peer.faults`, and counters/logs in `peer.stats` so tests
 * can assert what a client did (e.g. that a retried request was re-signed).
 *
 * Differences from real peers, on purpose:
 * - Real peers decode imported events into their Go structs and re-encode
 *   them (unknown fields are lost; Go-encoded input comes back byte-identical)
 *   and may prune (newest pings per target, bounded observations per pair).
 *   The simulator stores each imported event's bytes exactly as received and
 *   never prunes, so a test can compare what it sent with what is served. The
 *   one exception is an event sent without an ID: the peer computes it and the
 *   simulator re-encodes that event with the ID (as a real peer would serve it).
 * - Signatures are made with node:crypto's native Ed25519 (same bytes as
 *   noble: Ed25519 is deterministic) because pages are served by the thousand
 *   in benchmarks. Request auth is verifyRequest of src/mesh/auth.ts
 *   (whose verification is native too).
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { sha256, fromBase64 } from "../../src/identity/crypto.ts";
import {
  importPreimage,
  responseMessage,
  syncBodyPreimage,
  verifyRequest,
  type HeaderSource,
  type RequestCheck,
} from "../../src/mesh/auth.ts";
import { goJson } from "../../src/events/gojson.ts";
import { eventContent, eventId, goEventObject, parseEvent, payloadMissing, type ParsedEvent } from "../../src/events/id.ts";
import { idMismatch } from "./import-work.ts";
import { actorTarget, makeNara, mixSeed, Rng, type SimEvent, type SimNara } from "./generate.ts";
import { startStash, type SimStash, type StashSimOptions } from "./stash.ts";
import { hostileSync, type HostileFaults, type HostileStats } from "./hostile.ts";
import { WanLink, type WanOptions } from "./wan.ts";

// ---------------------------------------------------------------------------
// Types

export type Faults = HostileFaults & {
  /** Delay before every response (the peer's own latency), ms. */
  latencyMs?: number;
  /** Every Nth sync request answers 500 (odd multiples) or 503 (even multiples). */
  failEvery?: number;
  /** Every Nth sync request: the connection is dropped without an answer. */
  dropEvery?: number;
  /** After this many pages were served, sync requests never answer (until stop()). */
  hangAfterPages?: number;
  /** Every Nth sync request answers 200 with a body that is not JSON. */
  garbageEvery?: number;
  /** Every Nth sync request answers 200 with the page cut in the middle (Content-Length of the cut body). */
  truncateEvery?: number;
  /** Response header signatures are made with the wrong key. */
  badResponseSig?: boolean;
  /** The body-level `sig` of sync responses is made with the wrong key. */
  badBodySig?: boolean;
  /** An old peer: ignores mode/cursor, returns the newest events after since_time, capped at 2000, never next_cursor. */
  legacy?: boolean;
  /** A broken peer: after this many pages it ignores the cursor and pages from the beginning again (next_cursor goes backwards). */
  rewindAfterPages?: number;
  /** Every sync request answers 401 (e.g. the peer does not know us). */
  status401?: boolean;
  /** Every Nth import request answers 503 before importing anything. */
  importFailEvery?: number;
  /** Every Nth import request: the connection is dropped (see importDropAfterApply). */
  importDropEvery?: number;
  /** Dropped imports were applied before the drop (a lost answer); default true. */
  importDropAfterApply?: boolean;
};

/** One ledger entry. Generated SimEvents are stored as they are (shared between peers, not copied). */
export type StoredEvent = {
  id: string;
  ts: bigint;
  svc: string;
  /** Bytes as served (the exact text received or generated). */
  raw: string;
  actor: string;
  target: string;
};

export type SyncLogEntry = {
  /** Peer clock (ms) when the request arrived. */
  at: number;
  /** Request auth headers as received (null when missing). */
  name: string | null;
  timestamp: string | null;
  signature: string | null;
  /** Body fields as sent (undefined when absent or when the body did not parse). */
  mode?: unknown;
  cursor?: unknown;
  pageSize?: unknown;
  services?: unknown;
  subjects?: unknown;
  /** HTTP status, or "dropped" / "hung". */
  outcome: number | "dropped" | "hung";
  /** The fault that decided the outcome, if any. */
  fault?: string;
  /** Why auth failed, for 401s. */
  authReason?: string;
  /** Events in the page and its next_cursor, for 200 pages. */
  events?: number;
  nextCursor?: string;
};

export type ImportLogEntry = {
  at: number;
  sent: number;
  outcome: number | "dropped";
  imported?: number;
  duplicates?: number;
  warnings?: number;
  error?: string;
  fault?: string;
};

export type PeerStats = {
  /** Every HTTP request received. */
  requests: number;
  pings: number;
  syncRequests: number;
  /** 200 pages served with a complete, valid body. */
  pagesServed: number;
  eventsServed: number;
  /** POST /api/events/import requests received. */
  imports: number;
  importedEvents: number;
  authFailures: Record<string, number>;
  faultsInjected: Record<string, number>;
  syncLog: SyncLogEntry[];
  importLog: ImportLogEntry[];
  /** Imported events whose ID is not the one their content gives (with checkIds). */
  idMismatches?: number;
};

export type PeerOptions = {
  /** Who this peer is (name, soul, mesh IP). */
  nara: SimNara;
  /** The ledger it starts with (any order; duplicates by ID are ignored). */
  events?: readonly SimEvent[];
  /** Naras whose public keys it knows (mesh auth, event signatures). */
  naras?: readonly SimNara[];
  /** More known keys, name -> Base64 public key (e.g. the backup user's). */
  knownKeys?: Record<string, string>;
  hostname?: string;
  /** 0 (default) = a random free port. */
  port?: number;
  /** The peer's clock, ms since the epoch (inject to simulate skew). */
  now?: () => number;
  faults?: Faults;
  /** Far away: round trips, a shared uplink, a server cost per page (see wan.ts). */
  wan?: WanOptions;
  /** Seed of the per-request tie shuffling. */
  seed?: number;
  /** Keep at most this many log entries per log (default 10000). */
  logLimit?: number;
  /** The stash routes of its UI server (test/sim/stash.ts). */
  stash?: StashSimOptions;
  /** Recompute every imported event's ID, as a checking nara does (bench realism; see import-work.ts). */
  checkIds?: boolean;
};

export type Ledger = {
  readonly size: number;
  has(id: string): boolean;
  get(id: string): StoredEvent | undefined;
  /** All events sorted by ts (ties in storage order). */
  list(): StoredEvent[];
  /** Adds events (skipping known IDs); returns how many were new. */
  add(events: readonly SimEvent[]): number;
};

export type SimPeer = {
  name: string;
  nara: SimNara;
  identity: SimNara["identity"];
  publicKey: string;
  /** http://host:port */
  url: string;
  hostname: string;
  port: number;
  /** The ledger served by /events/sync. */
  events: Ledger;
  /** Mutable at runtime. */
  faults: Faults;
  stats: PeerStats;
  hostile: HostileStats;
  /** Keys the peer knows, name -> Base64 public key (learns from hey-there events). */
  keys: Map<string, string>;
  /** Its stash routes (/api/stash/*), mutable at runtime. */
  stash: SimStash;
  /** Resets stats and fault counters (not the ledger). */
  resetStats(): void;
  stop(): Promise<void>;
};

// ---------------------------------------------------------------------------
// Helpers

const MAX_PAGE = 5000;
const LEGACY_CAP = 2000;
const IMPORT_WINDOW_S = 300;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
const SPKI_ED25519_PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const encoder = new TextEncoder();

/** A response whose body errors at once: Bun resets the connection before any byte of the answer. */
export function droppedConnection(): Response {
  return new Response(
    new ReadableStream({
      pull(controller) {
        controller.error(); // no argument: Bun drops the socket without logging
      },
    }),
  );
}

const text = (body: string, status: number, headers: Record<string, string> = {}): Response =>
  new Response(body, { status, headers: { "Content-Type": "text/plain; charset=utf-8", ...headers } });

const json = (body: string, status: number, headers: Record<string, string> = {}): Response =>
  new Response(body, { status, headers: { "Content-Type": "application/json", ...headers } });

/** The body being assembled by buildPage; valid until the next page (Response copies it). */
let pageScratch = new Uint8Array(0);

/** UTF-8 bytes of each stored event, computed once and shared by every peer holding the event. */
const eventBytes = new WeakMap<StoredEvent, Uint8Array>();
function bytesOf(e: StoredEvent): Uint8Array {
  let b = eventBytes.get(e);
  if (b === undefined) {
    b = encoder.encode(e.raw);
    eventBytes.set(e, b);
  }
  return b;
}

const publicKeyCache = new Map<string, KeyObject | null>();
function publicKeyObject(b64: string): KeyObject | null {
  let k = publicKeyCache.get(b64);
  if (k === undefined) {
    const raw = fromBase64(b64);
    k = raw && raw.length === 32 ? createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: "der", type: "spki" }) : null;
    publicKeyCache.set(b64, k);
  }
  return k;
}

/** Native Ed25519 verification of a Base64 signature (false on malformed input). */
export function nativeVerify(sigB64: string, message: Uint8Array, publicKeyB64: string): boolean {
  const key = publicKeyObject(publicKeyB64);
  const sig = fromBase64(sigB64);
  if (!key || !sig || sig.length !== 64) return false;
  try {
    return cryptoVerify(null, message, key, sig);
  } catch {
    return false;
  }
}

/**
 * The receiver's side of mesh auth: exactly src/mesh/auth.ts verifyRequest
 * (same checks, same order, same reasons), with native Ed25519 (~25x faster).
 */
export function checkRequest(
  headers: HeaderSource,
  method: string,
  path: string,
  keyOf: (name: string) => string | undefined,
  nowMs: number,
): RequestCheck {
  return verifyRequest(headers, method, path, keyOf, nowMs);
}

function lowerBound(ts: bigint[], x: bigint, strict: boolean): number {
  // first index with ts > x (strict) or ts >= x
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (strict ? ts[mid]! <= x : ts[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function skipWs(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
    else return i;
  }
}

/** `i` at the opening quote of a string: index after the closing quote. */
function skipString(s: string, i: number): number {
  i++;
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c === 0x5c) i += 2;
    else if (Number.isNaN(c)) throw new SyntaxError("unterminated string");
    else i++;
  }
}

/** Index after the JSON value starting at `i` (the text is known to be valid JSON). */
function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x22) return skipString(s, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (;;) {
      const d = s.charCodeAt(i);
      if (d === 0x22) {
        i = skipString(s, i);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      } else if (Number.isNaN(d)) throw new SyntaxError("unterminated value");
      i++;
    }
  }
  while (i < s.length) {
    const d = s.charCodeAt(i);
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
    i++;
  }
  return i;
}

/**
 * The raw text of each element of the top-level `events` array of a JSON
 * object text (already validated by JSON.parse). Keys match Go-style
 * (case-insensitively, the last one wins). null when `events` is null/absent.
 */
export function rawEventsOf(body: string): string[] | null {
  let i = skipWs(body, 0);
  if (body.charCodeAt(i) !== 0x7b) return null;
  i = skipWs(body, i + 1);
  let found: [number, number] | null = null;
  while (body.charCodeAt(i) !== 0x7d) {
    const keyEnd = skipString(body, i);
    const key = JSON.parse(body.slice(i, keyEnd)) as string;
    i = skipWs(body, keyEnd);
    i = skipWs(body, i + 1); // ':'
    const end = skipValue(body, i);
    if (key.toLowerCase() === "events") found = [i, end];
    i = skipWs(body, end);
    if (body.charCodeAt(i) === 0x2c) i = skipWs(body, i + 1);
  }
  if (!found || body.charCodeAt(found[0]) !== 0x5b) return null;
  const out: string[] = [];
  let j = skipWs(body, found[0] + 1);
  while (body.charCodeAt(j) !== 0x5d) {
    const end = skipValue(body, j);
    out.push(body.slice(j, end));
    j = skipWs(body, end);
    if (body.charCodeAt(j) === 0x2c) j = skipWs(body, j + 1);
  }
  return out;
}

const isInt = (v: unknown): boolean => typeof v === "number" && Number.isInteger(v);
const isStrList = (v: unknown): boolean => v === null || (Array.isArray(v) && v.every((s) => typeof s === "string" || s === null));

type SyncRequestBody = {
  from: string;
  mode: string;
  pageSize: number;
  cursor: string;
  services: string[];
  subjects: string[];
  sinceTime: number;
  maxEvents: number;
};

/** Decodes a sync request like Go's json.Unmarshal into the SyncRequest struct; null = 400. */
function decodeSyncRequest(body: unknown): SyncRequestBody | null {
  if (body === null) body = {};
  if (typeof body !== "object" || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  const str = (v: unknown) => v === undefined || v === null || typeof v === "string";
  const int = (v: unknown) => v === undefined || v === null || isInt(v);
  if (!str(b.from) || !str(b.mode) || !str(b.cursor)) return null;
  if (!int(b.page_size) || !int(b.since_time) || !int(b.max_events)) return null;
  if (b.services !== undefined && !isStrList(b.services)) return null;
  if (b.subjects !== undefined && !isStrList(b.subjects)) return null;
  return {
    from: (b.from as string) ?? "",
    mode: (b.mode as string) ?? "",
    pageSize: (b.page_size as number) ?? 0,
    cursor: (b.cursor as string) ?? "",
    services: ((b.services as (string | null)[] | null) ?? []).map((s) => s ?? ""),
    subjects: ((b.subjects as (string | null)[] | null) ?? []).map((s) => s ?? ""),
    sinceTime: (b.since_time as number) ?? 0,
    maxEvents: (b.max_events as number) ?? 0,
  };
}

/** strconv.ParseInt(cursor, 10, 64); anything else means "from the beginning". */
function parseCursor(cursor: string): bigint | null {
  if (!/^[+-]?[0-9]+$/.test(cursor)) return null;
  const v = BigInt(cursor);
  return v > INT64_MAX || v < INT64_MIN ? null : v;
}

/** Go's IsValid() of an event's payload (what real peers accept on import). */
function payloadValid(svc: string, p: Record<string, unknown>): boolean {
  const s = (k: string) => (typeof p[k] === "string" ? (p[k] as string) : "");
  const n = (k: string) => (typeof p[k] === "number" ? (p[k] as number) : typeof p[k] === "bigint" ? Number(p[k]) : 0);
  switch (svc) {
    case "social":
      return ["tease", "observed", "gossip", "observation", "service"].includes(s("type")) && s("actor") !== "" && s("target") !== "";
    case "ping":
      return s("observer") !== "" && s("target") !== "" && n("rtt") > 0;
    case "observation": {
      if (s("observer") === "" || s("subject") === "" || s("type") === "") return false;
      const imp = n("importance");
      if (imp < 1 || imp > 3) return false;
      switch (s("type")) {
        case "restart":
          return n("start_time") > 0 && n("restart_num") >= 0;
        case "first-seen":
          return n("start_time") > 0;
        case "status-change":
          return ["ONLINE", "OFFLINE", "MISSING"].includes(s("online_state"));
        default:
          return false;
      }
    }
    case "hey-there":
      return s("From") !== "" && s("PublicKey") !== "";
    case "chau":
      return s("From") !== "";
    case "seen":
      return s("observer") !== "" && s("subject") !== "" && s("via") !== "";
    case "checkpoint": {
      const obs = (p.observation ?? {}) as Record<string, unknown>;
      const num = (v: unknown) => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : 0);
      const voters = Array.isArray(p.voter_ids) ? p.voter_ids.length : 0;
      const sigs = Array.isArray(p.signatures) ? p.signatures.length : 0;
      return s("subject") !== "" && num(obs.restarts) >= 0 && num(obs.total_uptime) >= 0 && voters === sigs;
    }
    default:
      return false; // unknown service: no payload as far as the peer knows
  }
}

/** Real peers silently drop stale checkpoints of r2d2 on import (counted in duplicates). */
function prunedOnImport(svc: string, p: Record<string, unknown>): boolean {
  if (svc !== "checkpoint" || p.subject !== "r2d2") return false;
  const asOf = typeof p.as_of_time === "number" ? p.as_of_time : Number(p.as_of_time ?? 0);
  return asOf <= 1768774453;
}

// ---------------------------------------------------------------------------
// The ledger

/** A ledger's events, ids and tie groups laid out for serving pages cheaply. */
type Joined = {
  /** Event bytes joined by commas; event i is [start[i], end[i]). */
  bytes: Uint8Array;
  start: Float64Array;
  end: Float64Array;
  /** Ids back to back; id i is [idStart[i], idStart[i + 1]). */
  ids: Uint8Array;
  idStart: Float64Array;
  /** One past the last index of the tie group (same ts) event i is in. */
  groupEnd: Int32Array;
};

class SortedLedger implements Ledger {
  ts: bigint[] = [];
  ev: StoredEvent[] = [];
  readonly byId = new Map<string, StoredEvent>();
  private joined?: Joined;

  /**
   * All events' bytes joined by commas, with where each starts and ends: a
   * run of consecutive events is then one copy (commas included), so serving
   * costs the simulator little and benchmarks measure the client.
   */
  blob(): Joined {
    if (this.joined) return this.joined;
    const parts = this.ev.map(bytesOf);
    const start = new Float64Array(parts.length);
    const end = new Float64Array(parts.length);
    let size = 0;
    for (let i = 0; i < parts.length; i++) {
      start[i] = size;
      end[i] = size + parts[i]!.length;
      size = end[i]! + 1;
    }
    const bytes = new Uint8Array(size).fill(0x2c);
    for (let i = 0; i < parts.length; i++) bytes.set(parts[i]!, start[i]!);
    // The ids back to back too (for the body signature), and where each tie group ends.
    const idParts = this.ev.map((e) => encoder.encode(e.id));
    const idStart = new Float64Array(idParts.length + 1);
    for (let i = 0; i < idParts.length; i++) idStart[i + 1] = idStart[i]! + idParts[i]!.length;
    const ids = new Uint8Array(idStart[idParts.length]!);
    for (let i = 0; i < idParts.length; i++) ids.set(idParts[i]!, idStart[i]!);
    const groupEnd = new Int32Array(this.ev.length);
    for (let i = this.ev.length - 1; i >= 0; i--) {
      groupEnd[i] = i + 1 < this.ev.length && this.ev[i + 1]!.ts === this.ev[i]!.ts ? groupEnd[i + 1]! : i + 1;
    }
    this.joined = { bytes, start, end, ids, idStart, groupEnd };
    return this.joined;
  }

  get size(): number {
    return this.ev.length;
  }
  has(id: string): boolean {
    return this.byId.has(id);
  }
  get(id: string): StoredEvent | undefined {
    return this.byId.get(id);
  }
  list(): StoredEvent[] {
    return this.ev.slice();
  }
  add(events: readonly SimEvent[]): number {
    // SimEvents are stored as they are (not copied): peers share them and their byte cache.
    return this.insert(events);
  }
  /** Merges new events (stable: existing before new among equal ts). */
  insert(events: readonly StoredEvent[]): number {
    const fresh: StoredEvent[] = [];
    for (const e of events) {
      if (this.byId.has(e.id)) continue;
      this.byId.set(e.id, e);
      fresh.push(e);
    }
    if (fresh.length === 0) return 0;
    this.joined = undefined;
    let sorted = true;
    for (let i = 1; i < fresh.length; i++)
      if (fresh[i - 1]!.ts > fresh[i]!.ts) {
        sorted = false;
        break;
      }
    if (!sorted) fresh.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    if (this.ev.length === 0 || this.ev[this.ev.length - 1]!.ts <= fresh[0]!.ts) {
      for (const e of fresh) {
        this.ev.push(e);
        this.ts.push(e.ts);
      }
      return fresh.length;
    }
    const merged: StoredEvent[] = new Array(this.ev.length + fresh.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < this.ev.length && j < fresh.length) merged[k++] = this.ev[i]!.ts <= fresh[j]!.ts ? this.ev[i++]! : fresh[j++]!;
    while (i < this.ev.length) merged[k++] = this.ev[i++]!;
    while (j < fresh.length) merged[k++] = fresh[j++]!;
    this.ev = merged;
    this.ts = merged.map((e) => e.ts);
    return fresh.length;
  }
}

// ---------------------------------------------------------------------------
// The peer

export function startPeer(opts: PeerOptions): SimPeer {
  const nara = opts.nara;
  const name = nara.name;
  const now = opts.now ?? Date.now;
  const logLimit = opts.logLimit ?? 10_000;
  const seed = opts.seed ?? 1;
  const hostname = opts.hostname ?? "127.0.0.1";
  const ledger = new SortedLedger();
  const keys = new Map<string, string>();
  for (const n of opts.naras ?? []) keys.set(n.name, n.publicKey);
  for (const [k, v] of Object.entries(opts.knownKeys ?? {})) keys.set(k, v);
  keys.set(name, nara.publicKey);
  // A key that is not ours, for the bad-signature faults.
  const wrongSigner = (msg: Uint8Array | string) => {
    // Sign with a key derived from the peer's name: valid Ed25519, wrong key.
    return wrongKeyNara(name).sign(msg);
  };

  const freshStats = (): PeerStats => ({
    requests: 0,
    pings: 0,
    syncRequests: 0,
    pagesServed: 0,
    eventsServed: 0,
    imports: 0,
    importedEvents: 0,
    authFailures: {},
    faultsInjected: {},
    syncLog: [],
    importLog: [],
  });
  const stats = freshStats();
  const faults: Faults = { ...opts.faults };
  const stash = startStash(nara, opts.naras ?? [], now, opts.stash);
  const wan = opts.wan ? new WanLink(opts.wan, seed) : undefined;
  const pending = new Set<(r: Response) => void>();
  let stopped = false;
  const hostile: HostileStats = { endlessBytes: 0, stalls: 0 };
  const { promise: stoppedSignal, resolve: signalStopped } = Promise.withResolvers<void>();

  const learnHeyThere = (svc: string, payload: Record<string, unknown> | undefined) => {
    if (svc !== "hey-there" || !payload) return;
    const from = payload.From;
    const key = payload.PublicKey;
    if (typeof from === "string" && from !== "" && typeof key === "string" && key !== "") keys.set(from, key);
  };

  // Initial ledger; learn the keys its hey-there events announce.
  if (opts.events) {
    ledger.add(opts.events);
    for (const e of opts.events) {
      if (e.svc === "hey-there") {
        const p = parseEvent(e.raw).payload as Record<string, unknown> | undefined;
        learnHeyThere(e.svc, p);
      }
    }
  }

  const count = (rec: Record<string, number>, key: string) => {
    rec[key] = (rec[key] ?? 0) + 1;
  };
  const log = <T>(list: T[], entry: T) => {
    if (list.length >= logLimit) list.shift();
    list.push(entry);
  };
  const every = (n: number | undefined, k: number) => n !== undefined && n > 0 && k % n === 0;

  const signHeaders = (body: Uint8Array): Record<string, string> => {
    const ts = now();
    const msg = responseMessage(name, ts, body);
    return {
      "X-Nara-Name": name,
      "X-Nara-Timestamp": String(ts),
      "X-Nara-Signature": faults.badResponseSig ? wrongSigner(msg) : nara.sign(msg),
    };
  };

  const hang = (): Promise<Response> =>
    new Promise<Response>((resolve) => {
      if (stopped) resolve(droppedConnection());
      else pending.add(resolve);
    });

  const delay = async (): Promise<void> => {
    const ms = faults.latencyMs ?? 0;
    if (ms > 0) await new Promise((r) => setTimeout(r, ms));
  };

  // ---- /ping
  const pingHead = `{"from":${goJson(name)},"mesh_ip":${goJson(nara.meshIp)},"public_key":${goJson(nara.publicKey)},"t":`;
  const handlePing = (): Response => {
    stats.pings++;
    // Same bytes as goJson of {from, mesh_ip, public_key, t}; only t changes, so the rest is built once.
    const body = `${pingHead}${BigInt(Math.floor(now())) * 1_000_000n}}\n`;
    return json(body, 200);
  };

  // ---- /events/sync
  const selectPage = (req: SyncRequestBody, k: number): { picked: StoredEvent[]; idx?: number[]; next?: string } => {
    const services = req.services.length > 0 ? new Set(req.services) : null;
    const subjects = req.subjects.length > 0 ? new Set(req.subjects) : null;
    const keep = (e: StoredEvent) =>
      (!services || services.has(e.svc)) && (!subjects || subjects.has(e.actor) || subjects.has(e.target));
    const ev = ledger.ev;
    const rng = new Rng(mixSeed(seed, k, 0x50414745));

    if (faults.legacy || req.mode !== "page") {
      if (!faults.legacy && req.mode === "recent") {
        const cap = req.pageSize > 0 && req.pageSize <= MAX_PAGE ? req.pageSize : req.maxEvents > 0 ? Math.min(req.maxEvents, MAX_PAGE) : 100;
        const out: StoredEvent[] = [];
        for (let i = ev.length - 1; i >= 0 && out.length < cap; i--) if (keep(ev[i]!)) out.push(ev[i]!);
        return { picked: out }; // newest first
      }
      // Legacy (old peers, or no mode): the newest events after since_time
      // (seconds), capped, in ascending order, never a next_cursor.
      const cap = req.maxEvents > 0 && req.maxEvents < LEGACY_CAP ? req.maxEvents : LEGACY_CAP;
      const since = BigInt(Math.max(0, req.sinceTime)) * 1_000_000_000n;
      const out: StoredEvent[] = [];
      for (let i = ev.length - 1; i >= 0 && out.length < cap; i--) {
        const e = ev[i]!;
        if (e.ts <= since) break;
        if (keep(e)) out.push(e);
      }
      out.reverse();
      return { picked: out };
    }

    const size = req.pageSize <= 0 || req.pageSize > MAX_PAGE ? MAX_PAGE : req.pageSize;
    const rewind = faults.rewindAfterPages !== undefined && stats.pagesServed >= faults.rewindAfterPages;
    const cursor = rewind ? null : parseCursor(req.cursor);
    let i = cursor === null ? 0 : lowerBound(ledger.ts, cursor, true);
    const picked: StoredEvent[] = [];
    const idx: number[] = [];
    // Walk groups of equal ts; shuffle each group (per request) so both the
    // order among ties and which ties make it into a full page are arbitrary.
    const { groupEnd } = ledger.blob();
    while (picked.length < size && i < ev.length) {
      const j = groupEnd[i]!;
      if (j - i === 1) {
        if (keep(ev[i]!)) {
          picked.push(ev[i]!);
          idx.push(i);
        }
      } else {
        const group: number[] = [];
        for (let g = i; g < j; g++) if (keep(ev[g]!)) group.push(g);
        rng.shuffle(group);
        for (const g of group) {
          if (picked.length >= size) break;
          picked.push(ev[g]!);
          idx.push(g);
        }
      }
      i = j;
    }
    return picked.length === size ? { picked, idx, next: picked[picked.length - 1]!.ts.toString() } : { picked, idx };
  };

  const buildPage = (picked: StoredEvent[], idx: number[] | undefined, next: string | undefined): { body: Uint8Array<ArrayBuffer>; ids: string[] } => {
    const tsSec = Math.floor(now() / 1000);
    const ids = picked.map((e) => e.id);
    let preimage: Uint8Array;
    if (idx !== undefined) {
      // syncBodyPreimage, hashed from the ledger's joined ids run by run instead of one big string.
      const j = ledger.blob();
      const h = new Bun.CryptoHasher("sha256").update(`${name}:${tsSec}:`);
      for (let r = 0; r < idx.length; ) {
        let e = r + 1;
        while (e < idx.length && idx[e] === idx[e - 1]! + 1) e++;
        h.update(j.ids.subarray(j.idStart[idx[r]!]!, j.idStart[idx[e - 1]! + 1]!));
        r = e;
      }
      preimage = h.digest() as Uint8Array;
    } else preimage = sha256(syncBodyPreimage(name, tsSec, ids));
    const sig = faults.badBodySig ? wrongSigner(preimage) : nara.sign(preimage);
    const nextPart = next === undefined ? "" : `,"next_cursor":"${next}"`;
    const head = encoder.encode(`{"from":${goJson(name)},"events":${picked.length > 0 ? "[" : "null"}`);
    const tail = encoder.encode(`${picked.length > 0 ? "]" : ""}${nextPart},"ts":${tsSec},"sig":"${sig}"}\n`);
    if (idx !== undefined) {
      // Runs of consecutive ledger events are one copy from the joined bytes.
      const { bytes, start, end } = ledger.blob();
      let size = head.length + tail.length + Math.max(0, idx.length - 1);
      for (const i of idx) size += end[i]! - start[i]!;
      // new Response() copies its body, so one buffer serves every page (no fresh 1.6 MB per page).
      if (pageScratch.length < size) pageScratch = new Uint8Array(Math.ceil(size * 1.25));
      const body = pageScratch.subarray(0, size);
      body.set(head, 0);
      let o = head.length;
      for (let r = 0; r < idx.length; ) {
        let e = r + 1;
        while (e < idx.length && idx[e] === idx[e - 1]! + 1) e++;
        if (r > 0) body[o++] = 0x2c;
        const from = start[idx[r]!]!;
        const to = end[idx[e - 1]!]!;
        body.set(bytes.subarray(from, to), o);
        o += to - from;
        r = e;
      }
      body.set(tail, o);
      return { body, ids };
    }
    // Assemble from each event's cached bytes: no 2 MB string join + re-encode per page.
    const parts = picked.map(bytesOf);
    let size = head.length + tail.length + Math.max(0, parts.length - 1);
    for (const b of parts) size += b.length;
    const body = new Uint8Array(size);
    body.set(head, 0);
    let o = head.length;
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) body[o++] = 0x2c;
      body.set(parts[i]!, o);
      o += parts[i]!.length;
    }
    body.set(tail, o);
    return { body, ids };
  };

  const handleSync = async (req: Request): Promise<Response> => {
    const k = ++stats.syncRequests;
    const entry: SyncLogEntry = {
      at: now(),
      name: req.headers.get("X-Nara-Name"),
      timestamp: req.headers.get("X-Nara-Timestamp"),
      signature: req.headers.get("X-Nara-Signature"),
      outcome: 0,
    };
    log(stats.syncLog, entry);
    const fault = (f: string) => {
      entry.fault = f;
      count(stats.faultsInjected, f);
    };

    if (faults.hangAfterPages !== undefined && stats.pagesServed >= faults.hangAfterPages) {
      fault("hang");
      entry.outcome = "hung";
      return hang();
    }
    if (every(faults.dropEvery, k)) {
      fault("drop");
      entry.outcome = "dropped";
      return droppedConnection();
    }
    if (every(faults.failEvery, k)) {
      fault("fail");
      const status = (k / faults.failEvery!) % 2 === 1 ? 500 : 503;
      entry.outcome = status;
      return text(status === 500 ? "Internal Server Error\n" : "Service Unavailable\n", status);
    }
    if (faults.status401) {
      fault("status401");
      entry.outcome = 401;
      return text("Unauthorized\n", 401);
    }
    const auth = checkRequest(req.headers, req.method, new URL(req.url).pathname, (n) => keys.get(n), now());
    if (!auth.ok) {
      count(stats.authFailures, auth.reason);
      entry.authReason = auth.reason;
      entry.outcome = 401;
      return text("Unauthorized\n", 401);
    }
    if (req.method !== "POST") {
      entry.outcome = 405;
      return text("Method not allowed\n", 405);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(await req.text());
    } catch {
      entry.outcome = 400;
      return text("Invalid JSON\n", 400);
    }
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const b = parsed as Record<string, unknown>;
      entry.mode = b.mode;
      entry.cursor = b.cursor;
      entry.pageSize = b.page_size;
      entry.services = b.services;
      entry.subjects = b.subjects;
    }
    const body = decodeSyncRequest(parsed);
    if (!body) {
      entry.outcome = 400;
      return text("Invalid JSON\n", 400);
    }
    if (body.from === "") {
      entry.outcome = 400;
      return text("from is required\n", 400);
    }

    if (every(faults.garbageEvery, k)) {
      fault("garbage");
      entry.outcome = 200;
      return new Response("<html><body><h1>502 Bad Gateway</h1>upstream sent nonsense</body></html>\n", {
        status: 200,
        headers: { "Content-Type": "text/html" },
      });
    }

    const { picked, idx, next } = selectPage(body, k);
    const page = buildPage(picked, idx, next);
    const headers = { "Content-Type": "application/json", ...signHeaders(page.body) };
    const bad = hostileSync(faults, k, stats.pagesServed, page.body, headers, hostile, stoppedSignal);
    if (bad) return (fault(bad.fault), (entry.outcome = 200), bad.response);
    if (every(faults.truncateEvery, k)) {
      fault("truncate");
      entry.outcome = 200;
      // The peer signed what it meant to send; the body is cut on the way.
      const cut = page.body.subarray(0, Math.max(1, Math.floor(page.body.length / 2)));
      return new Response(cut, { status: 200, headers });
    }
    stats.pagesServed++;
    stats.eventsServed += picked.length;
    entry.outcome = 200;
    entry.events = picked.length;
    if (next !== undefined) entry.nextCursor = next;
    return new Response(page.body, { status: 200, headers });
  };

  // ---- /api/events/import
  const importResult = (status: number, r: { success: boolean; imported: number; duplicates: number; warnings?: number; error?: string }) =>
    json(
      goJson({ success: r.success, imported: r.imported, duplicates: r.duplicates, warnings: r.warnings || undefined, error: r.error }) + "\n",
      status,
    );

  const handleImport = async (req: Request): Promise<Response> => {
    if (req.method !== "POST") return text("Method not allowed\n", 405);
    const k = ++stats.imports;
    const entry: ImportLogEntry = { at: now(), sent: 0, outcome: 0 };
    log(stats.importLog, entry);
    const bodyText = await req.text();
    if (every(faults.importFailEvery, k)) {
      entry.fault = "importFail";
      count(stats.faultsInjected, "importFail");
      entry.outcome = 503;
      return text("Service Unavailable\n", 503);
    }
    const dropNow = every(faults.importDropEvery, k);
    if (dropNow && faults.importDropAfterApply === false) {
      entry.fault = "importDrop";
      count(stats.faultsInjected, "importDrop");
      entry.outcome = "dropped";
      return droppedConnection();
    }
    const invalid = () => {
      entry.outcome = 400;
      entry.error = "Invalid JSON";
      return importResult(400, { success: false, imported: 0, duplicates: 0, error: "Invalid JSON" });
    };

    // Decode like Go: the whole body must fit {events []SyncEvent, ts int64, sig string}.
    let top: unknown;
    try {
      top = JSON.parse(bodyText);
    } catch {
      return invalid();
    }
    if (top === null) top = {};
    if (typeof top !== "object" || Array.isArray(top)) return invalid();
    const fields = new Map<string, unknown>();
    for (const [key, v] of Object.entries(top as Record<string, unknown>)) fields.set(key.toLowerCase(), v);
    const tsVal = fields.get("ts") ?? 0;
    const sigVal = fields.get("sig") ?? "";
    const eventsVal = fields.get("events") ?? null;
    if (!isInt(tsVal) || (typeof sigVal !== "string" && sigVal !== null)) return invalid();
    if (eventsVal !== null && !Array.isArray(eventsVal)) return invalid();
    type Incoming = {
      raw: string;
      id: string;
      ts: string;
      svc: string;
      emitter: string;
      sig: string;
      payload?: Record<string, unknown>;
      parsed?: ParsedEvent;
    };
    const incoming: Incoming[] = [];
    try {
      const raws = rawEventsOf(bodyText) ?? [];
      for (const raw of raws) {
        if (raw === "null") {
          incoming.push({ raw, id: "", ts: "0", svc: "", emitter: "", sig: "" });
          continue;
        }
        if (raw.charCodeAt(0) !== 0x7b) return invalid();
        const p = parseEvent(raw);
        const ts = p.ts ?? "0";
        if (!/^-?[0-9]+$/.test(ts)) return invalid();
        const tsBig = BigInt(ts);
        if (tsBig > INT64_MAX || tsBig < INT64_MIN) return invalid();
        const payload = (p.payload ?? undefined) as Record<string, unknown> | undefined;
        incoming.push({ raw, id: p.id ?? "", ts, svc: p.svc ?? "", emitter: p.emitter ?? "", sig: p.sig ?? "", payload, parsed: p });
      }
    } catch {
      return invalid();
    }
    entry.sent = incoming.length;

    // Authentication: the owner's soul signs ts + the IDs in request order.
    const reqTs = tsVal as number;
    const refuse = (why: string) => {
      entry.outcome = 403;
      entry.error = `Authentication failed: ${why}`;
      return importResult(403, { success: false, imported: 0, duplicates: 0, error: entry.error });
    };
    if (Math.abs(Math.floor(now() / 1000) - reqTs) > IMPORT_WINDOW_S) return refuse("timestamp out of range");
    const preimage = sha256(importPreimage(reqTs, incoming.map((e) => e.id)));
    if (!nativeVerify((sigVal as string | null) ?? "", preimage, nara.publicKey)) return refuse("invalid signature");

    // A known service without its payload: real peers dereference nil and
    // the connection drops without an answer (nothing imported).
    for (const e of incoming) {
      if (payloadMissing(e.svc, e.payload)) {
        entry.outcome = "dropped";
        entry.error = "payload missing";
        return droppedConnection();
      }
    }

    // Learn keys from hey-there events first, then check signatures.
    for (const e of incoming) learnHeyThere(e.svc, e.payload);

    let warnings = 0;
    const batch: StoredEvent[] = [];
    const seen = new Set<string>();
    for (const e of incoming) {
      if (e.svc === "" || e.ts === "0") continue;
      if (!e.payload || !payloadValid(e.svc, e.payload)) continue;
      let id = e.id;
      let raw = e.raw;
      if (id === "") {
        id = eventId(e.ts, e.svc, e.payload);
        raw = withId(e.parsed!, id);
      }
      if (opts.checkIds && idMismatch(id, e.ts, e.svc, e.payload)) stats.idMismatches = (stats.idMismatches ?? 0) + 1;
      if (e.emitter !== "" && e.sig !== "") {
        const key = keys.get(e.emitter);
        const content = eventContent(e.svc, e.payload) ?? "";
        const ok = key !== undefined && nativeVerify(e.sig, sha256(`${id}:${e.ts}:${e.svc}:${e.emitter}:${content}`), key);
        if (!ok) warnings++;
      }
      if (prunedOnImport(e.svc, e.payload)) continue;
      if (seen.has(id) || ledger.has(id)) continue;
      seen.add(id);
      const [actor, target] = actorTarget(e.svc, e.payload);
      batch.push({ id, ts: BigInt(e.ts), svc: e.svc, raw, actor, target });
    }
    const imported = ledger.insert(batch);
    stats.importedEvents += imported;
    const duplicates = incoming.length - imported;
    entry.imported = imported;
    entry.duplicates = duplicates;
    entry.warnings = warnings;
    if (dropNow) {
      entry.fault = "importDrop";
      count(stats.faultsInjected, "importDrop");
      entry.outcome = "dropped";
      return droppedConnection();
    }
    entry.outcome = 200;
    return importResult(200, { success: true, imported, duplicates, warnings });
  };

  const server = Bun.serve({
    hostname,
    port: opts.port ?? 0,
    idleTimeout: 0, // hung requests stay open until stop()
    async fetch(req) {
      stats.requests++;
      const path = new URL(req.url).pathname;
      let res: Response;
      if (path === "/ping" && req.method === "GET") res = handlePing();
      else if (path === "/events/sync") res = await handleSync(req);
      else if (path === "/api/events/import") res = await handleImport(req);
      else res = (await stash.handle(req, path)) ?? text("404 page not found\n", 404);
      await delay();
      return wan ? wan.respond(res, path === "/events/sync" ? ledger.ev.length : 0) : res;
    },
    error(err) {
      // A Go handler that panics loses the connection; say so, it is a simulator bug.
      console.error(`sim peer ${name}: handler error:`, err);
      return droppedConnection();
    },
  });

  const peer: SimPeer = {
    name,
    nara,
    identity: nara.identity,
    publicKey: nara.publicKey,
    url: `http://${hostname}:${server.port}`,
    hostname,
    port: server.port!,
    events: ledger,
    faults,
    stats,
    hostile,
    keys,
    stash,
    resetStats() {
      Object.assign(stats, freshStats());
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      signalStopped();
      for (const resolve of pending) resolve(droppedConnection());
      pending.clear();
      wan?.close();
      await server.stop(true);
    },
  };
  return peer;
}

/** Re-encodes an event received without an ID, as the peer would serve it (Go struct encoding, ID set). */
function withId(parsed: ParsedEvent, id: string): string {
  return goJson(goEventObject({ ...parsed, id }));
}

const wrongKeys = new Map<string, SimNara>();
function wrongKeyNara(name: string): SimNara {
  let n = wrongKeys.get(name);
  if (!n) {
    n = makeNara(name, sha256(`wrong-key:${name}`));
    wrongKeys.set(name, n);
  }
  return n;
}
