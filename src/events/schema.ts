/**
 * The Go structs of a SyncEvent as real peers declare them (field order,
 * JSON names, types, omitempty), and the two conversions Go applies with
 * them: decoding (json.Unmarshal: case-insensitive keys, last duplicate wins,
 * null leaves the value alone, unknown keys dropped, type errors reject the
 * event) and canonical encoding (json.Marshal: struct order, zero values
 * filled in, omitempty zero values left out).
 */
import { JsonNumber, JsonObject, type JsonValue } from "./jsontext.ts";

/** An event payload keyed by Go JSON field names. */
export type Payload = Record<string, unknown>;

type Scalar = "string" | "int" | "int64" | "uint64" | "float64" | "bool" | "strings";
export type GoStruct = {
  readonly name: string;
  readonly fields: readonly GoField[];
  /** Folded JSON name -> field (Go's case-insensitive match). */
  readonly byFold: ReadonlyMap<string, GoField>;
};
export type GoField = {
  readonly json: string;
  readonly type: Scalar | { readonly struct: GoStruct; readonly pointer: boolean };
  readonly omitempty: boolean;
};

type FieldSpec = [json: string, type: GoField["type"], omitempty?: "omitempty"];

function struct(name: string, specs: FieldSpec[]): GoStruct {
  const fields = specs.map(([json, type, oe]): GoField => ({ json, type, omitempty: oe === "omitempty" }));
  return { name, fields, byFold: new Map(fields.map((f) => [foldName(f.json), f])) };
}

/**
 * Go's foldName: ASCII upper-cased, other runes mapped to the smallest rune
 * of their simple-fold orbit. Field names are ASCII, so only the two
 * non-ASCII runes that fold onto ASCII letters matter: ſ (s) and K (Kelvin).
 */
export function foldName(key: string): string {
  let out = "";
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) out += String.fromCharCode(c - 0x20);
    else if (c === 0x17f) out += "S";
    else if (c === 0x212a) out += "K";
    else out += key[i];
  }
  return out;
}

const OE = "omitempty" as const;

export const SOCIAL = struct("SocialEventPayload", [
  ["type", "string"],
  ["actor", "string", OE],
  ["actor_id", "string", OE],
  ["target", "string", OE],
  ["target_id", "string", OE],
  ["reason", "string", OE],
  ["witness", "string", OE],
]);

export const PING = struct("PingObservation", [
  ["observer", "string", OE],
  ["observer_id", "string", OE],
  ["target", "string", OE],
  ["target_id", "string", OE],
  ["rtt", "float64"],
]);

export const OBSERVATION = struct("ObservationEventPayload", [
  ["observer", "string", OE],
  ["observer_id", "string", OE],
  ["subject", "string", OE],
  ["subject_id", "string", OE],
  ["type", "string"],
  ["importance", "int"],
  ["is_backfill", "bool", OE],
  ["start_time", "int64", OE],
  ["restart_num", "int64", OE],
  ["last_restart", "int64", OE],
  ["online_state", "string", OE],
  ["cluster_name", "string", OE],
  ["observer_uptime", "uint64", OE],
]);

// No JSON tags in Go: the keys are the capitalised field names, never omitted.
export const HEY_THERE = struct("HeyThereEvent", [
  ["From", "string"],
  ["PublicKey", "string"],
  ["MeshIP", "string"],
  ["ID", "string"],
  ["Signature", "string"],
]);

export const CHAU = struct("ChauEvent", [
  ["From", "string"],
  ["PublicKey", "string"],
  ["ID", "string"],
  ["Signature", "string"],
]);

export const SEEN = struct("SeenEvent", [
  ["observer", "string", OE],
  ["observer_id", "string", OE],
  ["subject", "string", OE],
  ["subject_id", "string", OE],
  ["via", "string"],
]);

export const NARA_OBSERVATION = struct("NaraObservation", [
  ["restarts", "int64", OE],
  ["total_uptime", "int64", OE],
  ["start_time", "int64", OE],
  ["online", "string", OE],
  ["last_seen", "int64", OE],
  ["last_restart", "int64", OE],
  ["cluster_name", "string", OE],
  ["cluster_emoji", "string", OE],
  ["last_ping_rtt", "float64", OE],
  ["avg_ping_rtt", "float64", OE],
  ["last_ping_time", "int64", OE],
]);

export const CHECKPOINT = struct("CheckpointEventPayload", [
  ["version", "int"],
  ["subject", "string"],
  ["subject_id", "string"],
  ["previous_checkpoint_id", "string", OE],
  ["observation", { struct: NARA_OBSERVATION, pointer: false }],
  ["as_of_time", "int64"],
  ["round", "int"],
  ["voter_ids", "strings", OE],
  ["signatures", "strings", OE],
]);

const payloadField = (s: GoStruct) => ({ struct: s, pointer: true });

/** parseEvent turns the decoded int64 ts into its decimal text. */
export const SYNC_EVENT = struct("SyncEvent", [
  ["id", "string"],
  ["ts", "int64"],
  ["svc", "string"],
  ["emitter", "string", OE],
  ["emitter_id", "string", OE],
  ["sig", "string", OE],
  ["social", payloadField(SOCIAL), OE],
  ["ping", payloadField(PING), OE],
  ["observation", payloadField(OBSERVATION), OE],
  ["hey_there", payloadField(HEY_THERE), OE],
  ["chau", payloadField(CHAU), OE],
  ["seen", payloadField(SEEN), OE],
  ["checkpoint", payloadField(CHECKPOINT), OE],
]);

/** Payload JSON keys in SyncEvent field order. */
export const PAYLOAD_KEYS = ["social", "ping", "observation", "hey_there", "chau", "seen", "checkpoint"] as const;
export type PayloadKey = (typeof PAYLOAD_KEYS)[number];

export const PAYLOAD_STRUCTS: Readonly<Record<PayloadKey, GoStruct>> = {
  social: SOCIAL,
  ping: PING,
  observation: OBSERVATION,
  hey_there: HEY_THERE,
  chau: CHAU,
  seen: SEEN,
  checkpoint: CHECKPOINT,
};

// ---------------------------------------------------------------- decoding

/** Go refused to decode the event (json.UnmarshalTypeError): real peers reject it. */
export class GoDecodeError extends Error {
  constructor(message: string) {
    super(`json: ${message}`);
    this.name = "GoDecodeError";
  }
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const INTEGER = /^-?[0-9]+$/;
const UNSIGNED = /^[0-9]+$/;
const FLOAT_TEXT = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

const goTypeName = (t: GoField["type"]): string =>
  typeof t === "string"
    ? t === "strings"
      ? "[]string"
      : t
    : `${t.pointer ? "*" : ""}nara.${t.struct.name}`;

function describe(v: JsonValue): string {
  if (v instanceof JsonNumber) return `number ${v.text}`;
  if (v instanceof JsonObject) return "object";
  if (Array.isArray(v)) return "array";
  return typeof v === "boolean" ? "bool" : "string";
}

/** Keeps integers exact: a number while it is safe, a bigint beyond 2^53. */
export const exactInt = (n: bigint): number | bigint =>
  n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;

/**
 * Decodes a JSON object into `target` as Go decodes into a struct. `path`
 * names the field for error messages like Go's ("SyncEvent.ping.rtt").
 * Integer fields become number | bigint (exactInt), floats number.
 */
export function decodeStruct(st: GoStruct, obj: JsonObject, target: Payload, path: string, top: string): void {
  for (const [key, value] of obj.members) {
    const field = st.byFold.get(foldName(key));
    if (field === undefined) continue; // Go drops unknown keys
    decodeField(field, value, target, path ? `${path}.${field.json}` : field.json, top);
  }
}

function decodeField(field: GoField, value: JsonValue, target: Payload, path: string, top: string): void {
  const t = field.type;
  const mismatch = () =>
    new GoDecodeError(`cannot unmarshal ${describe(value)} into Go struct field ${top}.${path} of type ${goTypeName(t)}`);
  if (value === null) {
    // null resets pointers and slices to nil and leaves everything else alone.
    if (t === "strings" || (typeof t === "object" && t.pointer)) delete target[field.json];
    return;
  }
  if (typeof t === "object") {
    if (!(value instanceof JsonObject)) throw mismatch();
    // Go decodes into an existing struct: a repeated key merges into it.
    const existing = target[field.json];
    const inner = typeof existing === "object" && existing !== null ? (existing as Payload) : {};
    decodeStruct(t.struct, value, inner, path, top);
    target[field.json] = inner;
    return;
  }
  switch (t) {
    case "string":
      if (typeof value !== "string") throw mismatch();
      target[field.json] = value;
      return;
    case "bool":
      if (typeof value !== "boolean") throw mismatch();
      target[field.json] = value;
      return;
    case "float64": {
      if (!(value instanceof JsonNumber)) throw mismatch();
      const n = Number(value.text);
      if (!Number.isFinite(n)) throw mismatch();
      target[field.json] = n;
      return;
    }
    case "int":
    case "int64":
    case "uint64": {
      if (!(value instanceof JsonNumber)) throw mismatch();
      const text = value.text;
      if (!(t === "uint64" ? UNSIGNED : INTEGER).test(text)) throw mismatch();
      const n = BigInt(text);
      if (t === "uint64" ? n > UINT64_MAX : n < INT64_MIN || n > INT64_MAX) throw mismatch();
      target[field.json] = exactInt(n);
      return;
    }
    case "strings": {
      if (!Array.isArray(value)) throw mismatch();
      target[field.json] = value.map((item, i) => {
        if (item === null) return "";
        if (typeof item !== "string")
          throw new GoDecodeError(`cannot unmarshal ${describe(item)} into Go struct field ${top}.${path}[${i}] of type string`);
        return item;
      });
      return;
    }
  }
}

// ---------------------------------------------------------------- encoding

/** An integer given as number, bigint or decimal text; missing is 0. */
export function goInt(v: unknown, what = "value"): number | bigint {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new TypeError(`${what} must be an integer, got ${v}`);
    return Number.isSafeInteger(v) ? (v === 0 ? 0 : v) : exactInt(BigInt(v));
  }
  if (typeof v === "bigint") return exactInt(v);
  if (typeof v === "string" && INTEGER.test(v)) return exactInt(BigInt(v));
  throw new TypeError(`${what} must be an integer, got ${typeof v === "string" ? JSON.stringify(v) : typeof v}`);
}

/** A float64 given as number, bigint or decimal text; missing is 0. */
export function goFloat(v: unknown, what = "value"): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "string" && FLOAT_TEXT.test(v) && Number.isFinite(Number(v))) return Number(v);
  throw new TypeError(`${what} must be a number, got ${typeof v === "string" ? JSON.stringify(v) : typeof v}`);
}

/** A bool field; missing is false. */
export function goBool(v: unknown, what = "value"): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === "boolean") return v;
  throw new TypeError(`${what} must be a boolean, got ${typeof v}`);
}

/** A string field; missing is "". */
export function goString(v: unknown, what = "value"): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  throw new TypeError(`${what} must be a string, got ${typeof v}`);
}

const isZero = (v: unknown): boolean =>
  v === undefined || v === "" || v === 0 || v === 0n || v === false || (Array.isArray(v) && v.length === 0);

/**
 * The value Go would hold after decoding `src`, laid out as json.Marshal
 * writes it: fields in struct order, zero values filled in, omitempty zeros
 * left out, unknown keys dropped. Keys of `src` must be the JSON names.
 */
export function canonicalStruct(st: GoStruct, src: Payload): Payload {
  const out: Payload = {};
  for (const f of st.fields) {
    const raw = src[f.json];
    const what = `${st.name}.${f.json}`;
    let v: unknown;
    const t = f.type;
    if (typeof t === "object") {
      if (raw === undefined || raw === null) v = t.pointer ? undefined : canonicalStruct(t.struct, {});
      else if (typeof raw === "object" && !Array.isArray(raw)) v = canonicalStruct(t.struct, raw as Payload);
      else throw new TypeError(`${what} must be an object`);
    } else if (t === "string") v = goString(raw, what);
    else if (t === "bool") v = goBool(raw, what);
    else if (t === "float64") v = goFloat(raw, what);
    else if (t === "strings") {
      if (raw === undefined || raw === null) v = undefined;
      else if (Array.isArray(raw)) v = raw.map((s, i) => goString(s, `${what}[${i}]`));
      else throw new TypeError(`${what} must be a list of strings`);
    } else v = goInt(raw, what);
    if (f.omitempty && isZero(v)) continue;
    out[f.json] = v === undefined ? null : v; // a nil pointer or slice without omitempty is null
  }
  return out;
}
