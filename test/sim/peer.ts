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
 *
 * The parts, by concept: ledger.ts (the sorted ledger), sync-handler.ts
 * (/events/sync), import-handler.ts (/api/events/import), go-rules.ts (what a
 * Go peer accepts), faults.ts (the switches), json-skim.ts (raw event text of
 * a body), signing.ts (native Ed25519), peer-context.ts (what they share).
 */
import { goJson } from "../../src/events/gojson.ts";
import { parseEvent } from "../../src/events/id.ts";
import type { SimEvent, SimNara } from "./generate.ts";
import { startStash, type SimStash, type StashSimOptions } from "./stash.ts";
import type { HostileStats } from "./hostile.ts";
import { WanLink, type WanOptions } from "./wan.ts";
import { droppedConnection, json, text, type Faults } from "./faults.ts";
import { SortedLedger, type Ledger } from "./ledger.ts";
import { freshStats, type PeerContext, type PeerStats } from "./peer-context.ts";
import { syncHandler } from "./sync-handler.ts";
import { importHandler } from "./import-handler.ts";

export { droppedConnection, type Faults } from "./faults.ts";
export type { Ledger, StoredEvent } from "./ledger.ts";
export type { ImportLogEntry, PeerStats, SyncLogEntry } from "./peer-context.ts";
export { rawEventsOf } from "./json-skim.ts";
export { checkRequest, nativeVerify } from "./signing.ts";

// ---------------------------------------------------------------------------
// Types

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
  /** How it waits out latencyMs (inject to see the wait without timing it). */
  sleep?: (ms: number) => Promise<void>;
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
  /**
   * Resolves once `check(stats)` holds, checked now, when each request has
   * been counted and when it has been answered: a test waits for what the
   * peer saw instead of sleeping. Rejects if the peer stops first.
   */
  until(check: (stats: PeerStats) => boolean): Promise<void>;
  stop(): Promise<void>;
};

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

  const log = <T>(list: T[], entry: T) => {
    if (list.length >= logLimit) list.shift();
    list.push(entry);
  };
  const hang = (): Promise<Response> =>
    new Promise<Response>((resolve) => {
      if (stopped) resolve(droppedConnection());
      else pending.add(resolve);
    });

  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const delay = async (): Promise<void> => {
    const ms = faults.latencyMs ?? 0;
    if (ms > 0) await sleep(ms);
  };

  // ---- /ping
  const pingHead = `{"from":${goJson(name)},"mesh_ip":${goJson(nara.meshIp)},"public_key":${goJson(nara.publicKey)},"t":`;
  const handlePing = (): Response => {
    stats.pings++;
    // Same bytes as goJson of {from, mesh_ip, public_key, t}; only t changes, so the rest is built once.
    const body = `${pingHead}${BigInt(Math.floor(now())) * 1_000_000n}}\n`;
    return json(body, 200);
  };

  const ctx: PeerContext = {
    nara,
    name,
    now,
    seed,
    ledger,
    keys,
    faults,
    stats,
    hostile,
    stoppedSignal,
    checkIds: opts.checkIds ?? false,
    log,
    hang,
    learnHeyThere,
  };
  const handleSync = syncHandler(ctx);
  const handleImport = importHandler(ctx);

  const waiters = new Set<{ check: (s: PeerStats) => boolean; resolve: () => void; reject: (e: Error) => void }>();
  const wake = () => {
    for (const w of waiters) {
      if (!w.check(stats)) continue;
      waiters.delete(w);
      w.resolve();
    }
  };
  /** A handler's promise: its counters are up to date once it returned (it ran to its first await). */
  const watched = (handling: Promise<Response>): Promise<Response> => {
    wake();
    return handling.finally(wake);
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
      else if (path === "/events/sync") res = await watched(handleSync(req));
      else if (path === "/api/events/import") res = await watched(handleImport(req));
      else res = (await stash.handle(req, path)) ?? text("404 page not found\n", 404);
      wake();
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
    until(check) {
      if (check(stats)) return Promise.resolve();
      if (stopped) return Promise.reject(new Error(`sim peer ${name}: stopped`));
      return new Promise<void>((resolve, reject) => waiters.add({ check, resolve, reject }));
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      signalStopped();
      for (const w of waiters) w.reject(new Error(`sim peer ${name}: stopped before the awaited state`));
      waiters.clear();
      for (const resolve of pending) resolve(droppedConnection());
      pending.clear();
      wan?.close();
      await server.stop(true);
    },
  };
  return peer;
}
