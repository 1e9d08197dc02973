/**
 * Event identity as real peers compute it (PROTOCOL.md §6): the content
 * string of each service, the event ID, the emitter signature, and parsing
 * an event's JSON the way Go's decoder reads it.
 */
import { edVerify, sha256 } from "../identity/crypto.ts";
import type { Identity } from "../identity/soul.ts";
import { formatGoFixed1 } from "./gofmt.ts";
import { goJson } from "./gojson.ts";
import { JsonObject, JsonSyntaxError, parseJsonText } from "./jsontext.ts";
import {
  GoDecodeError,
  PAYLOAD_KEYS,
  PAYLOAD_STRUCTS,
  SYNC_EVENT,
  canonicalStruct,
  decodeStruct,
  goFloat,
  goInt,
  goString,
  type Payload,
  type PayloadKey,
} from "./schema.ts";

export type { Payload, PayloadKey } from "./schema.ts";

/** Service name -> the SyncEvent field holding its payload. */
export const PAYLOAD_KEY: Readonly<Record<string, PayloadKey>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, PayloadKey>, {
    social: "social",
    ping: "ping",
    observation: "observation",
    "hey-there": "hey_there",
    chau: "chau",
    seen: "seen",
    checkpoint: "checkpoint",
  }),
);

/** The services whose content string we know; newer peers may add others. */
export const KNOWN_SERVICES: ReadonlySet<string> = new Set(Object.keys(PAYLOAD_KEY));

// ---------------------------------------------------------------- content

const str = (p: Payload, k: string): string => goString(p[k], k);
const int = (p: Payload, k: string): string => String(goInt(p[k], k));

const CONTENT: Readonly<Record<PayloadKey, (p: Payload) => string>> = {
  social: (p) => `${str(p, "type")}:${str(p, "actor")}:${str(p, "target")}:${str(p, "reason")}:${str(p, "witness")}`,
  ping: (p) => `${str(p, "observer")}:${str(p, "target")}:${formatGoFixed1(goFloat(p.rtt, "rtt"))}`,
  observation: (p) =>
    str(p, "type") === "restart"
      ? `${str(p, "subject")}:restart:${int(p, "restart_num")}:${int(p, "start_time")}`
      : `${str(p, "observer")}:${str(p, "subject")}:${str(p, "type")}:${str(p, "online_state")}:${int(p, "start_time")}:${int(p, "restart_num")}`,
  hey_there: (p) => `hey_there:${str(p, "From")}:${str(p, "PublicKey")}:${str(p, "MeshIP")}`,
  chau: (p) => `chau:${str(p, "From")}:${str(p, "PublicKey")}`,
  seen: (p) => `seen:${str(p, "observer")}:${str(p, "subject")}:${str(p, "via")}`,
  checkpoint: (p) => {
    const id = str(p, "subject_id") || str(p, "subject");
    const o = (p.observation ?? {}) as Payload;
    const tail = `${id}:${int(p, "as_of_time")}:${int(o, "start_time")}:${int(o, "restarts")}:${int(o, "total_uptime")}`;
    const version = goInt(p.version, "version");
    return version === 0 || version === 1 ? `checkpoint:${tail}` : `checkpoint:v2:${tail}:${str(p, "previous_checkpoint_id")}`;
  },
};

/**
 * The content string of an event, or undefined when no Go peer defines one:
 * for a service we do not know (a newer peer's content is unknowable: treat
 * it as "cannot verify"), and for a known service without its payload (real
 * peers dereference the nil payload and crash, so no ID exists; vectors
 * `payload_missing`). Payload keys are Go's JSON names, as parseEvent gives
 * them; integers may be number, bigint or decimal text; missing fields are
 * "" or 0.
 */
export function eventContent(svc: string, payload: Payload | undefined | null): string | undefined {
  const key = PAYLOAD_KEY[svc];
  if (key === undefined || payload === undefined || payload === null) return undefined;
  return CONTENT[key](payload);
}

/** A known service without its payload: real peers crash on it (import drops the connection). */
export const payloadMissing = (svc: string, payload: Payload | undefined | null): boolean =>
  KNOWN_SERVICES.has(svc) && (payload === undefined || payload === null);

// ---------------------------------------------------------------- IDs and signatures

/** Go's %d of an int64: no leading zeros, no "-0". */
const TS_DECIMAL = /^(?:0|-?[1-9][0-9]*)$/;

function checkTs(ts: string): void {
  if (!TS_DECIMAL.test(ts)) throw new TypeError(`ts must be the decimal text of an integer, got ${JSON.stringify(ts)}`);
}

export const idPreimage = (tsDecimal: string, svc: string, content: string): string => `${tsDecimal}:${svc}:${content}`;

/** Lowercase hex of the first 16 bytes of SHA256(ts + ":" + svc + ":" + content). */
export function eventIdFromContent(tsDecimal: string, svc: string, content: string): string {
  checkTs(tsDecimal);
  return Buffer.from(sha256(idPreimage(tsDecimal, svc, content)).subarray(0, 16)).toString("hex");
}

/** No Go peer can compute an ID for this event. */
export class EventIdError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EventIdError";
  }
}

/**
 * The event ID real peers compute. An unknown service hashes an empty
 * content (Go's Payload() is nil for it), which is what old peers do but may
 * differ from what the newer peer that made the event computed: verifiers
 * should call eventContent first and treat undefined as "cannot verify".
 * Throws EventIdError for a known service without its payload.
 */
export function eventId(tsDecimal: string, svc: string, payload: Payload | undefined | null): string {
  const content = eventContent(svc, payload);
  if (content === undefined && KNOWN_SERVICES.has(svc)) {
    throw new EventIdError(`a ${svc} event without its payload has no ID (real peers crash on it)`);
  }
  return eventIdFromContent(tsDecimal, svc, content ?? "");
}

export const signablePreimage = (id: string, tsDecimal: string, svc: string, emitter: string, content: string): string =>
  `${id}:${tsDecimal}:${svc}:${emitter}:${content}`;

/** Base64 Ed25519 signature over SHA256(signable preimage), with `identity.name` as emitter. */
export function signEvent(identity: Identity, id: string, tsDecimal: string, svc: string, content: string): string {
  checkTs(tsDecimal);
  return identity.sign(sha256(signablePreimage(id, tsDecimal, svc, identity.name, content)));
}

export function verifyEventSignature(
  sigB64: string,
  publicKeyB64: string,
  id: string,
  tsDecimal: string,
  svc: string,
  emitter: string,
  content: string,
): boolean {
  return edVerify(sigB64, sha256(signablePreimage(id, tsDecimal, svc, emitter, content)), publicKeyB64);
}

// ---------------------------------------------------------------- parsing

/** An event as a Go peer decodes it, with the exact text it came from. */
export type ParsedEvent = {
  id?: string;
  /** Exact decimal text of the int64 nanoseconds: never a JS number. */
  ts: string;
  svc?: string;
  emitter?: string;
  emitterId?: string;
  sig?: string;
  /** The payload of `svc` (Go's Payload()): undefined when absent or svc unknown. */
  payload?: Payload;
  /** Every payload object present, keyed by JSON field, in Go's canonical form. */
  payloads: Partial<Record<PayloadKey, Payload>>;
  raw: string;
};

/** The event JSON is malformed, or a real peer's decoder rejects it. */
export class EventParseError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EventParseError";
  }
}

/**
 * Parses one event's JSON as Go's json.Unmarshal into a SyncEvent would:
 * keys match case-insensitively, the last duplicate wins, null leaves a
 * field alone, unknown fields are dropped (they stay in `raw`), and a value
 * of the wrong type rejects the event. Integers above 2^53 stay exact
 * (bigint in payloads, text for ts); a lone surrogate escape becomes U+FFFD.
 * Payloads come out in Go's canonical form (struct order, zero values
 * filled in, omitempty zeros left out). Throws EventParseError, also when
 * ts is missing or not an int64 literal (Go rejects "1.7e18" and "\"17…\"").
 */
export function parseEvent(raw: string): ParsedEvent {
  let tree;
  try {
    tree = parseJsonText(raw);
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new EventParseError(`event: ${err.message}`, { cause: err });
    throw err;
  }
  if (!(tree instanceof JsonObject)) throw new EventParseError("event: expected a JSON object");
  const top: Payload = {};
  try {
    decodeStruct(SYNC_EVENT, tree, top, "", "SyncEvent");
  } catch (err) {
    if (err instanceof GoDecodeError) throw new EventParseError(`event rejected by Go's decoder: ${err.message}`, { cause: err });
    throw err;
  }
  if (top.ts === undefined) throw new EventParseError("event has no ts (an integer of nanoseconds)");
  const payloads: Partial<Record<PayloadKey, Payload>> = {};
  for (const key of PAYLOAD_KEYS) {
    const p = top[key];
    if (p !== undefined) payloads[key] = canonicalStruct(PAYLOAD_STRUCTS[key], p as Payload);
  }
  const svc = top.svc as string | undefined;
  const key = svc === undefined ? undefined : PAYLOAD_KEY[svc];
  return {
    id: top.id as string | undefined,
    ts: String(top.ts),
    svc,
    emitter: top.emitter as string | undefined,
    emitterId: top.emitter_id as string | undefined,
    sig: top.sig as string | undefined,
    payload: key === undefined ? undefined : payloads[key],
    payloads,
    raw,
  };
}

// ---------------------------------------------------------------- encoding

/** The fields of an event to encode; `payload` is the svc's, `payloads` any others. */
export type EventFields = {
  id?: string;
  ts: string | bigint;
  svc?: string;
  emitter?: string;
  emitterId?: string;
  sig?: string;
  payload?: Payload;
  payloads?: Partial<Record<PayloadKey, Payload>>;
};

/**
 * The SyncEvent as Go's json.Marshal lays it out: feed it to goJson to get
 * the bytes a real peer sends (goJson(goEventObject(parseEvent(x))) is what a
 * Go peer re-encodes x into).
 */
export function goEventObject(ev: EventFields): Record<string, unknown> {
  const ts = typeof ev.ts === "bigint" ? ev.ts : (checkTs(ev.ts), BigInt(ev.ts));
  const out: Record<string, unknown> = {
    id: ev.id ?? "",
    ts,
    svc: ev.svc ?? "",
    emitter: ev.emitter || undefined,
    emitter_id: ev.emitterId || undefined,
    sig: ev.sig || undefined,
  };
  const own = ev.svc === undefined ? undefined : PAYLOAD_KEY[ev.svc];
  for (const key of PAYLOAD_KEYS) {
    const p = key === own && ev.payload !== undefined ? ev.payload : ev.payloads?.[key];
    if (p !== undefined && p !== null) out[key] = canonicalStruct(PAYLOAD_STRUCTS[key], p);
  }
  return out;
}

export const goEventJson = (ev: EventFields): string => goJson(goEventObject(ev));

/**
 * A new event as a real peer creates it: ID computed, signed by `signer`
 * (who becomes the emitter) when given, encoded like Go. For simulators.
 */
export function makeEvent(input: {
  ts: string | bigint;
  svc: string;
  payload?: Payload;
  signer?: Identity;
  emitterId?: string;
}): ParsedEvent {
  const ts = String(input.ts);
  const { svc, signer } = input;
  const key = PAYLOAD_KEY[svc];
  const payload = key === undefined || input.payload === undefined ? undefined : canonicalStruct(PAYLOAD_STRUCTS[key], input.payload);
  const id = eventId(ts, svc, payload);
  const sig = signer ? signEvent(signer, id, ts, svc, eventContent(svc, payload) ?? "") : undefined;
  const fields = { id, ts, svc, emitter: signer?.name, emitterId: input.emitterId, sig, payload };
  const payloads: Partial<Record<PayloadKey, Payload>> = key && payload ? { [key]: payload } : {};
  return { ...fields, payloads, raw: goEventJson(fields) };
}
