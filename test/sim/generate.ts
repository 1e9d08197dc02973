/**
 * Deterministic generation of naras and of the events a real mesh holds.
 *
 * Everything here is derived from a numeric seed through a small PRNG
 * (mulberry32): no Math.random, no clock. The same seed always gives the same
 * souls, the same events and the same bytes.
 *
 * Events are encoded with goJson (Go's encoding/json, HTML escaping on), in
 * the field order and with the omitempty rules of the real Go structs
 * (PROTOCOL.md §6), so `raw` is byte for byte what a real peer serves. IDs come
 * from eventId; emitter signatures are made with node:crypto's native Ed25519
 * (about 30x faster than noble here) over the same preimage signEvent uses — a
 * test checks that both give identical signatures.
 */
import { createPrivateKey, sign as cryptoSign, type KeyObject } from "node:crypto";
import { base58Encode } from "../../src/identity/base58.ts";
import { sha256 } from "../../src/identity/crypto.ts";
import { bondTag, parseSoul, type Identity } from "../../src/identity/soul.ts";
import { goJson } from "../../src/events/gojson.ts";
import { eventContent, eventId, PAYLOAD_KEY } from "../../src/events/id.ts";

// ---------------------------------------------------------------------------
// PRNG

/** mulberry32: a tiny, fast, well-distributed 32-bit PRNG. */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  /** Next uint32. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** Float in [0, 1). */
  next(): number {
    return this.u32() / 4294967296;
  }
  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Integer in [lo, hi] inclusive. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i += 4) {
      const v = this.u32();
      for (let k = 0; k < 4 && i + k < n; k++) out[i + k] = (v >>> (8 * k)) & 0xff;
    }
    return out;
  }
  /** In-place Fisher–Yates shuffle of a[from..to). */
  shuffle<T>(a: T[], from = 0, to = a.length): T[] {
    for (let i = to - 1; i > from; i--) {
      const j = from + this.int(i - from + 1);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
    return a;
  }
}

/** Mixes several numbers into one 32-bit seed (for derived streams). */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
    h ^= h >>> 15;
  }
  return h >>> 0;
}

// ---------------------------------------------------------------------------
// Naras

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

/** A native Ed25519 private key from a 32-byte seed (RFC 8032; same keys as noble). */
export function nativeKey(seed32: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed32]), format: "der", type: "pkcs8" });
}

/** Base64 Ed25519 signature with node:crypto; equals Identity.sign for the same seed and message. */
export function nativeSign(key: KeyObject, message: Uint8Array | string): string {
  const data = typeof message === "string" ? Buffer.from(message, "utf8") : message;
  return cryptoSign(null, data, key).toString("base64");
}

export type SimNara = {
  name: string;
  /** Base58(seed || bond tag): 40 bytes, 54–55 characters. Never log it outside tests. */
  soul: string;
  identity: Identity;
  /** Base64 of the raw 32-byte public key. */
  publicKey: string;
  /** Base58(SHA256(soul bytes || name)). */
  naraId: string;
  /** A 100.64.0.0/10 address, as hey-there events and /ping report it. */
  meshIp: string;
  /** Fast native signature (Base64), identical to identity.sign. */
  sign(message: Uint8Array | string): string;
};

/** Builds a nara from a 32-byte seed the real way: soul = Base58(seed || bondTag(seed, name)). */
export function makeNara(name: string, seed32: Uint8Array, meshIp = "100.64.0.1"): SimNara {
  if (seed32.length !== 32) throw new Error("a soul seed is 32 bytes");
  const soulBytes = new Uint8Array(40);
  soulBytes.set(seed32);
  soulBytes.set(bondTag(seed32, name), 32);
  const soul = base58Encode(soulBytes);
  const identity = parseSoul(soul, name);
  const key = nativeKey(seed32);
  return {
    name,
    soul,
    identity,
    publicKey: identity.publicKey,
    naraId: identity.naraId,
    meshIp,
    sign: (message) => nativeSign(key, message),
  };
}

const ADJECTIVES = [
  "blue", "mystic", "quiet", "lucky", "rusty", "silver", "brave", "sleepy", "fuzzy", "amber",
  "cosmic", "gentle", "hidden", "jolly", "lunar", "misty", "noble", "plucky", "rapid", "sunny",
];
const ANIMALS = [
  "jay", "fox", "otter", "badger", "heron", "lynx", "moth", "newt", "owl", "panda",
  "quail", "raven", "seal", "tapir", "vole", "wren", "yak", "zebu", "ibis", "kiwi",
];

/** The i-th deterministic nara name: ASCII, DNS-safe (real names are tailnet hostnames). */
export function naraName(i: number): string {
  const a = ADJECTIVES.length;
  const q = Math.floor(i / a);
  // (i mod a, (q + 7·(i mod a)) mod a) is a bijection on the first a² indices.
  const base = `${ADJECTIVES[i % a]}-${ANIMALS[(q + 7 * (i % a)) % ANIMALS.length]}`;
  const round = Math.floor(i / (a * ANIMALS.length));
  return round === 0 ? base : `${base}-${String(round).padStart(3, "0")}`;
}

export const meshIpOf = (i: number): string => `100.64.${(i + 2) >> 8}.${(i + 2) & 0xff}`;

/** `count` naras with real souls, names blue-jay, mystic-jay, … and mesh IPs 100.64.0.2, …. */
export function generateNaras(count: number, seed: number): SimNara[] {
  const rng = new Rng(mixSeed(seed, 0x4e415241));
  const out: SimNara[] = [];
  for (let i = 0; i < count; i++) out.push(makeNara(naraName(i), rng.bytes(32), meshIpOf(i)));
  return out;
}

/**
 * Naras with names a backup must survive: non-ASCII (é, ñ, CJK, emoji) and
 * HTML characters that Go escapes. They emit events but never serve (their
 * names cannot travel in an HTTP header).
 */
export function generateGuests(seed: number): SimNara[] {
  const rng = new Rng(mixSeed(seed, 0x47554553));
  const names = ["café-ñandú", "雪狐-七", "a<b>&c", "fox-🦊"];
  return names.map((name, i) => makeNara(name, rng.bytes(32), `100.64.9.${i + 1}`));
}

// ---------------------------------------------------------------------------
// Events

export type SimEvent = {
  id: string;
  /** Unix nanoseconds, above 2^53. */
  ts: bigint;
  svc: string;
  /** Go-encoded JSON of the event, exactly as a real peer serves it (no trailing newline). */
  raw: string;
  /** The emitter, when the event carries one. */
  emitter?: string;
  /** Has emitter and sig (a valid one, unless generated with badSigRate). */
  signed: boolean;
  /** Go's GetActor()/GetTarget(), used by the `subjects` filter of /events/sync. */
  actor: string;
  target: string;
};

export const SERVICES = ["social", "ping", "observation", "hey-there", "chau", "seen", "checkpoint"] as const;
export type Service = (typeof SERVICES)[number];
/** The service of the forward-compatibility events (unknown to real peers). */
export const UNKNOWN_SVC = "zine";

export type GenerateOptions = {
  naras: SimNara[];
  count: number;
  seed: number;
  /** ts of the first event; default 1767225600000000000n (2026-01-01). */
  startNs?: bigint;
  /** Mean gap between distinct timestamps, ns; default 500 ms. */
  meanGapNs?: number;
  /** Fraction of events that share their ts with others (groups of 2..8); default 0.1. */
  sharedTsRate?: number;
  /** Fraction of shared-ts groups that are big (9..bigGroupMax events); default 0.02. */
  bigGroupRate?: number;
  /** default 64 */
  bigGroupMax?: number;
  /** Insert one group of exactly this many events sharing one ts, in the middle (e.g. > page_size). */
  bigGroupSize?: number;
  /** Fraction of events of the unknown service "zine" (with an unknown top-level field); default 0. */
  unknownRate?: number;
  /** Fraction of signed events whose `sig` is wrong (a valid signature of another message); default 0. */
  badSigRate?: number;
  /** Add the guests of generateGuests (unicode and <>& names) as emitters; default true. */
  guests?: boolean;
  /** Start with one hey-there per nara (and guest), so a backup can verify itself; default true. */
  heyThereFirst?: boolean;
  /** Relative weights of the services. */
  mix?: Partial<Record<Service, number>>;
};

const DEFAULT_MIX: Record<Service, number> = {
  social: 24,
  ping: 24,
  observation: 24,
  "hey-there": 4,
  chau: 3,
  seen: 11,
  checkpoint: 10,
};

const SOCIAL_TYPES = ["tease", "observed", "gossip", "observation", "service"];
const REASONS = [
  "high-restarts", "trend-abandon", "comeback", "nice-uptime", "random", "stash-stored",
  "<script>&amp;", "café ☕ au lait", "🦊 sly fox", "東京に行く", "line\u2028sep para\u2029sep",
  '"quoted" back\\slash', "tab\tnl\n", "a<b>&c > d", "bs\b ff\f soh\u0001 del\u007f",
];
const CLUSTERS = ["barrio <norte> & sur", "café-district", "北区", "🌮 town", "riverside"];
const VIAS = ["zine", "mesh", "ping", "sync"];
const STATES = ["ONLINE", "OFFLINE", "MISSING"];

/** Payload constructors produce objects in Go's field order, `undefined` = omitted (omitempty). */
type Payload = Record<string, unknown>;
type Draft = { svc: string; payload?: Payload; emitter?: SimNara; emitterId?: boolean; extra?: Record<string, unknown> };

class EventFactory {
  readonly #rng: Rng;
  readonly #naras: SimNara[];
  readonly #guests: SimNara[];
  readonly #all: SimNara[];
  readonly #lastCheckpoint = new Map<string, string>();
  readonly #badSigRate: number;
  readonly #sigKey: Map<string, SimNara>;

  constructor(rng: Rng, naras: SimNara[], guests: SimNara[], badSigRate: number) {
    this.#rng = rng;
    this.#naras = naras;
    this.#guests = guests;
    this.#all = [...naras, ...guests];
    this.#badSigRate = badSigRate;
    this.#sigKey = new Map(this.#all.map((n) => [n.name, n]));
  }

  /** An emitter: mostly mesh naras, sometimes a guest. */
  nara(): SimNara {
    const rng = this.#rng;
    if (this.#guests.length > 0 && rng.chance(0.04)) return rng.pick(this.#guests);
    return rng.pick(this.#naras);
  }
  other(than: SimNara): SimNara {
    if (this.#all.length < 2) return than;
    for (;;) {
      const n = this.nara();
      if (n !== than) return n;
    }
  }

  social(actor = this.nara()): Draft {
    const rng = this.#rng;
    const target = this.other(actor);
    const withIds = rng.chance(0.2);
    const payload: Payload = {
      type: rng.pick(SOCIAL_TYPES),
      actor: actor.name,
      actor_id: withIds ? actor.naraId : undefined,
      target: target.name,
      target_id: withIds ? target.naraId : undefined,
      reason: rng.chance(0.9) ? rng.pick(REASONS) : undefined,
      witness: rng.chance(0.25) ? this.other(actor).name : undefined,
    };
    return { svc: "social", payload, emitter: rng.chance(0.95) ? actor : undefined, emitterId: rng.chance(0.2) };
  }

  rtt(): number {
    const rng = this.#rng;
    const r = rng.next();
    // Exact binary ties (x.25, x.75): Go's %.1f rounds half to even, JS toFixed does not.
    if (r < 0.12) return rng.int(200) + (rng.chance(0.5) ? 0.25 : 0.75);
    if (r < 0.16) return rng.range(1, 300); // integral float: JSON "100", content "100.0"
    return rng.range(1, 50000) / 100; // two decimals, incl. non-tie x.x5 such as 0.35
  }

  ping(observer = this.nara()): Draft {
    const rng = this.#rng;
    const target = this.other(observer);
    const withIds = rng.chance(0.15);
    const payload: Payload = {
      observer: observer.name,
      observer_id: withIds ? observer.naraId : undefined,
      target: target.name,
      target_id: withIds ? target.naraId : undefined,
      rtt: this.rtt(),
    };
    // Pings are often unsigned (no emitter, no sig).
    return { svc: "ping", payload, emitter: rng.chance(0.4) ? observer : undefined };
  }

  observation(observer = this.nara(), subject = this.other(observer), type?: string): Draft {
    const rng = this.#rng;
    const t = type ?? rng.pick(["restart", "restart", "first-seen", "status-change", "status-change"]);
    const withIds = rng.chance(0.2);
    const startTime = 1_700_000_000 + rng.int(67_000_000);
    let uptime: number | bigint | undefined;
    if (rng.chance(0.3)) uptime = rng.chance(0.05) ? 9007199254740993n + BigInt(rng.int(1000)) : rng.int(10_000_000);
    const payload: Payload = {
      observer: observer.name,
      observer_id: withIds ? observer.naraId : undefined,
      subject: subject.name,
      subject_id: withIds ? subject.naraId : undefined,
      type: t,
      importance: t === "status-change" ? rng.pick([1, 2, 2]) : 3,
      is_backfill: t === "restart" && rng.chance(0.1) ? true : undefined,
      start_time: t === "status-change" ? undefined : startTime,
      restart_num: t === "restart" ? rng.range(1, 5000) : undefined,
      last_restart: t === "restart" ? startTime + rng.int(60_000_000) : undefined,
      online_state: t === "status-change" ? rng.pick(STATES) : undefined,
      cluster_name: rng.chance(0.2) ? rng.pick(CLUSTERS) : undefined,
      observer_uptime: uptime,
    };
    // Observations are mostly unsigned in practice.
    return { svc: "observation", payload, emitter: rng.chance(0.3) ? observer : undefined };
  }

  heyThere(from = this.nara()): Draft {
    const rng = this.#rng;
    const meshIp = from.meshIp && rng.chance(0.9) ? from.meshIp : "";
    // Legacy inner signature: Ed25519 over the raw (unhashed) content string.
    const inner = rng.chance(0.2) ? from.sign(`hey_there:${from.name}:${from.publicKey}:${meshIp}`) : "";
    const payload: Payload = {
      From: from.name,
      PublicKey: from.publicKey,
      MeshIP: meshIp,
      ID: rng.chance(0.8) ? from.naraId : "",
      Signature: inner,
    };
    return { svc: "hey-there", payload, emitter: from };
  }

  chau(from = this.nara()): Draft {
    const rng = this.#rng;
    const payload: Payload = {
      From: from.name,
      PublicKey: rng.chance(0.85) ? from.publicKey : "",
      ID: rng.chance(0.8) ? from.naraId : "",
      Signature: "",
    };
    return { svc: "chau", payload, emitter: from };
  }

  seen(observer = this.nara()): Draft {
    const rng = this.#rng;
    const subject = this.other(observer);
    const withIds = rng.chance(0.2);
    const payload: Payload = {
      observer: observer.name,
      observer_id: withIds ? observer.naraId : undefined,
      subject: subject.name,
      subject_id: withIds ? subject.naraId : undefined,
      via: rng.pick(VIAS),
    };
    return { svc: "seen", payload, emitter: observer };
  }

  checkpoint(tsNs: bigint): Draft {
    const rng = this.#rng;
    const subject = rng.pick(this.#naras);
    const version = rng.pick([1, 1, 2, 2, 2, 0, 3]);
    const subjectId = rng.chance(0.9) ? subject.naraId : "";
    const previous = version >= 2 || version < 0 ? this.#lastCheckpoint.get(subject.name) : undefined;
    const restarts = rng.int(5000);
    const totalUptime = rng.chance(0.9) ? rng.range(1, 99_000_000) : 0;
    const startTime = 1_700_000_000 + rng.int(60_000_000);
    const asOf = Number(tsNs / 1_000_000_000n) - rng.int(3600);
    let voterIds: string[] | undefined;
    let signatures: string[] | undefined;
    if (rng.chance(0.85)) {
      const voters = new Set<SimNara>();
      const want = Math.min(rng.range(2, 3), this.#naras.length);
      while (voters.size < want) voters.add(rng.pick(this.#naras));
      voterIds = [];
      signatures = [];
      for (const v of voters) {
        voterIds.push(v.naraId);
        // Voter attestations are over a raw string (not hashed); nobody verifies them here.
        signatures.push(
          v.sign(`attestation:v2:${v.naraId}:${subjectId}:${asOf}:${restarts}:${totalUptime}:${startTime}:${previous ?? ""}`),
        );
      }
    }
    const payload: Payload = {
      version,
      subject: subject.name,
      subject_id: subjectId, // not omitempty
      previous_checkpoint_id: previous,
      observation: {
        restarts: restarts || undefined,
        total_uptime: totalUptime || undefined,
        start_time: startTime,
      },
      as_of_time: asOf,
      round: rng.int(4),
      voter_ids: voterIds,
      signatures,
    };
    return { svc: "checkpoint", payload }; // attested by voters, never by sig
  }

  unknown(): Draft {
    const rng = this.#rng;
    const from = this.nara();
    return {
      svc: UNKNOWN_SVC,
      payload: { from: from.name, issue: rng.int(1000), headline: rng.pick(REASONS), layout: { cols: 3, fold: "<b>&" } },
      emitter: rng.chance(0.7) ? from : undefined,
      extra: { edition: { v: 2, tags: ["new", "ünïcode"] } },
    };
  }

  draft(svc: Service | typeof UNKNOWN_SVC, tsNs: bigint): Draft {
    switch (svc) {
      case "social":
        return this.social();
      case "ping":
        return this.ping();
      case "observation":
        return this.observation();
      case "hey-there":
        return this.heyThere();
      case "chau":
        return this.chau();
      case "seen":
        return this.seen();
      case "checkpoint":
        return this.checkpoint(tsNs);
      default:
        return this.unknown();
    }
  }

  /** Encodes a draft at `ts`: ID, signature, Go JSON. */
  finish(d: Draft, ts: bigint): SimEvent {
    const tsText = ts.toString();
    const known = d.svc !== UNKNOWN_SVC;
    // Unknown services have no payload as far as real peers are concerned: content "".
    const id = eventId(tsText, d.svc, known ? d.payload : undefined);
    let sig: string | undefined;
    const emitter = d.emitter;
    if (emitter) {
      const content = (known ? eventContent(d.svc, d.payload) : undefined) ?? "";
      const signer = this.#sigKey.get(emitter.name) ?? emitter;
      const good = `${id}:${tsText}:${d.svc}:${emitter.name}:${content}`;
      const message = this.#badSigRate > 0 && this.#rng.chance(this.#badSigRate) ? `${good}:tampered` : good;
      sig = signer.sign(sha256(message));
    }
    const obj: Record<string, unknown> = {
      id,
      ts,
      svc: d.svc,
      emitter: emitter?.name,
      emitter_id: emitter && d.emitterId ? emitter.naraId : undefined,
      sig,
    };
    if (known) obj[PAYLOAD_KEY[d.svc as Service]] = d.payload;
    else {
      obj[d.svc] = d.payload;
      Object.assign(obj, d.extra);
    }
    if (d.svc === "checkpoint") this.#lastCheckpoint.set(d.payload!.subject as string, id); // v2+ chains to it
    const [actor, target] = actorTarget(d.svc, d.payload);
    return { id, ts, svc: d.svc, raw: goJson(obj), emitter: emitter?.name, signed: sig !== undefined, actor, target };
  }
}

/** Go's SyncEvent.GetActor()/GetTarget() for a payload (nil payload: "", ""). */
export function actorTarget(svc: string, p: Payload | undefined): [string, string] {
  if (!p) return ["", ""];
  const s = (v: unknown): string => (typeof v === "string" ? v : "");
  switch (svc) {
    case "social":
      return [s(p.actor), s(p.target)];
    case "ping":
      return [s(p.observer), s(p.target)];
    case "observation":
    case "seen":
      return [s(p.observer), s(p.subject)];
    case "hey-there":
    case "chau":
      return [s(p.From), s(p.From)];
    case "checkpoint":
      return ["", s(p.subject)]; // voters are IDs, not names: real peers return ""
    default:
      return ["", ""];
  }
}

/**
 * `count` events with unique IDs, sorted by ts ascending (events sharing a ts
 * in generation order). Deterministic in (naras, count, seed, options).
 */
export function generateEvents(opts: GenerateOptions): SimEvent[] {
  const rng = new Rng(mixSeed(opts.seed, 0x45564e54));
  const naras = opts.naras;
  if (naras.length === 0) throw new Error("generateEvents needs at least one nara");
  const guests = opts.guests === false ? [] : generateGuests(opts.seed);
  const factory = new EventFactory(rng, naras, guests, opts.badSigRate ?? 0);
  const count = opts.count;
  const meanGap = opts.meanGapNs ?? 500_000_000;
  const sharedRate = Math.min(Math.max(opts.sharedTsRate ?? 0.1, 0), 0.99);
  const bigRate = opts.bigGroupRate ?? 0.02;
  const bigMax = Math.max(opts.bigGroupMax ?? 64, 9);
  const unknownRate = opts.unknownRate ?? 0;
  // Expected group size, then the probability that a timestamp slot is a group
  // so that about `sharedRate` of all events share their ts.
  const meanGroup = (1 - bigRate) * 5 + bigRate * ((9 + bigMax) / 2);
  const groupProb = sharedRate / (meanGroup - sharedRate * (meanGroup - 1));

  const mix = { ...DEFAULT_MIX, ...opts.mix };
  const svcs = SERVICES.filter((s) => mix[s] > 0);
  const cumulative: number[] = [];
  let total = 0;
  for (const s of svcs) cumulative.push((total += mix[s]));
  const pickSvc = (): Service | typeof UNKNOWN_SVC => {
    if (unknownRate > 0 && rng.chance(unknownRate)) return UNKNOWN_SVC;
    const r = rng.next() * total;
    for (let i = 0; i < svcs.length; i++) if (r < cumulative[i]!) return svcs[i]!;
    return svcs[svcs.length - 1]!;
  };

  const events: SimEvent[] = [];
  const ids = new Set<string>();
  const push = (d: Draft, ts: bigint, retry: () => Draft): void => {
    for (let attempt = 0; ; attempt++) {
      const e = factory.finish(attempt === 0 ? d : retry(), ts);
      if (!ids.has(e.id)) {
        ids.add(e.id);
        events.push(e);
        return;
      }
      if (attempt > 50) throw new Error("could not generate a unique event ID");
    }
  };

  let ts = opts.startNs ?? 1767225600000000000n;
  const step = (): bigint => (ts += BigInt(1 + rng.int(2 * meanGap)));

  if (opts.heyThereFirst !== false) {
    for (const n of [...naras, ...guests]) {
      if (events.length >= count) break;
      push(factory.heyThere(n), step(), () => factory.heyThere(n));
    }
  }

  const bigAt = opts.bigGroupSize ? Math.floor(count / 2) : Infinity;
  let bigDone = !opts.bigGroupSize;
  while (events.length < count) {
    const t = step();
    let size = 1;
    if (!bigDone && events.length >= bigAt) {
      size = opts.bigGroupSize!;
      bigDone = true;
    } else if (rng.chance(groupProb)) {
      size = rng.chance(bigRate) ? rng.range(9, bigMax) : rng.range(2, 8);
    }
    size = Math.min(size, count - events.length);
    if (size === 1) {
      const svc = pickSvc();
      push(factory.draft(svc, t), t, () => factory.draft(svc, t));
      continue;
    }
    // A shared timestamp: mostly one observer's fan-out of observations
    // (distinct subjects), otherwise a batch of mixed events.
    const fanout = rng.chance(0.7);
    const observer = factory.nara();
    for (let k = 0; k < size; k++) {
      const d = fanout
        ? factory.observation(observer, naras[k % naras.length] === observer ? factory.other(observer) : naras[k % naras.length]!, rng.pick(["status-change", "first-seen", "restart"]))
        : factory.draft(pickSvc(), t);
      push(d, t, () => factory.observation(observer, factory.other(observer), "restart"));
    }
  }
  return events;
}

export type DistributeOptions = { overlap?: number; seed?: number };

/**
 * Gives each of `peerCount` peers a subset: every event goes to one home peer
 * and to each other peer with probability `overlap` (default 0.5), so the union
 * is all events and most events are held by several peers. Order is kept.
 */
export function distribute(events: readonly SimEvent[], peerCount: number, opts: DistributeOptions = {}): SimEvent[][] {
  const overlap = opts.overlap ?? 0.5;
  const rng = new Rng(mixSeed(opts.seed ?? 1, 0x44495354));
  const out: SimEvent[][] = Array.from({ length: peerCount }, () => []);
  for (const e of events) {
    const home = rng.int(peerCount);
    for (let p = 0; p < peerCount; p++) if (p === home || rng.chance(overlap)) out[p]!.push(e);
  }
  return out;
}
