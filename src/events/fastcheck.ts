/**
 * The fast path of line validation. parseEvent (src/events/id.ts) is the
 * reference for how a Go peer decodes an event, but it builds a tree and
 * canonical payloads for every line (~25 MB/s). A restore only needs to know
 * that the line decodes, and its id, ts and svc. This is one walk over the
 * bytes of a line that checks the JSON grammar and, at the same time, every
 * value a Go peer decodes against the same struct tables
 * (src/events/schema.ts); the values of keys Go drops are checked for
 * grammar only, as Go's scanner does. Strings are checked for UTF-8 on the
 * way (every other byte of a valid line is ASCII), so an answer means the
 * whole line is valid UTF-8.
 *
 * It only ever answers "valid, with these fields" when the answer is plain:
 * ASCII keys without escapes, no key repeated (after Go's case folding),
 * every type right. Anything else (malformed JSON, a duplicate key, an
 * escaped or non-ASCII key, a type error, a missing id or payload, nesting
 * past 64) returns null and the caller asks parseEvent, which also words
 * the error.
 */
import { BS, COLON, COMMA, LBRACE, LBRACK, Q, RBRACE, RBRACK } from "./jsonskip.ts";
import { any, FALLBACK, float, integer, lineEnd, literal, MAX_DEPTH, str, ws } from "./jsonwalk.ts";
import { SYNC_EVENT, type GoField, type GoStruct } from "./schema.ts";
import { KNOWN_SERVICES, PAYLOAD_KEY } from "./id.ts";
import { internedText, latin1Text } from "./linecheck.ts";

export type FastEvent = {
  /** The ID as a Go peer decodes it; "" when not asked for and its bytes are it (idS, idE). */
  id: string;
  /** The decimal text of ts ("" when not asked for). */
  tsText: string;
  svc: string;
  signed: boolean;
  /** Where the ID's bytes are when they are its UTF-8 (no escapes), else -1: a batch can copy them. */
  idS: number;
  idE: number;
};

// Field kinds, as small integers for the walker's switch.
const STRING = 0;
const INT = 1;
const UINT = 2;
const FLOAT = 3;
const BOOL = 4;
const STRINGS = 5;
const STRUCT = 6;

/** Top-level fields the walker captures. */
const CAP_NONE = 0;
const CAP_ID = 1;
const CAP_TS = 2;
const CAP_SVC = 3;
const CAP_EMITTER = 4;
const CAP_SIG = 5;
const CAP_PAYLOAD = 6;

type Field = { kind: number; upper: Uint8Array; bit: number; sub: Struct | null; cap: number };
/** A struct's fields by the length of their JSON name (compared with ASCII case folding). */
type Struct = { byLen: (Field[] | undefined)[] };

const KIND: Record<string, number> = { string: STRING, int: INT, int64: INT, uint64: UINT, float64: FLOAT, bool: BOOL, strings: STRINGS };
const CAPS: Record<string, number> = { id: CAP_ID, ts: CAP_TS, svc: CAP_SVC, emitter: CAP_EMITTER, sig: CAP_SIG };

function compile(st: GoStruct, top: boolean, done: Map<GoStruct, Struct>): Struct {
  const known = done.get(st);
  if (known) return known;
  const out: Struct = { byLen: [] };
  done.set(st, out);
  st.fields.forEach((f: GoField, bit) => {
    const upper = new TextEncoder().encode(f.json.toUpperCase());
    const t = f.type;
    const sub = typeof t === "object" ? compile(t.struct, false, done) : null;
    const cap = !top ? CAP_NONE : (CAPS[f.json] ?? (sub ? CAP_PAYLOAD : CAP_NONE));
    (out.byLen[upper.length] ??= []).push({ kind: typeof t === "object" ? STRUCT : KIND[t]!, upper, bit, sub, cap });
  });
  return out;
}

const TOP = compile(SYNC_EVENT, true, new Map());
const TOP_BIT: Record<string, number> = {};
SYNC_EVENT.fields.forEach((f, i) => (TOP_BIT[f.json] = i));

/** ASCII upper-casing of key bytes; 0 for what never matches a field name. */
const UP = new Uint8Array(256);
for (let c = 0x20; c < 0x7f; c++) UP[c] = c >= 0x61 && c <= 0x7a ? c - 0x20 : c;
/** Bytes of a plain key: printable ASCII but the quote and the backslash. */
const KEY_BYTE = new Uint8Array(256);
for (let c = 0x20; c < 0x7f; c++) KEY_BYTE[c] = c === Q || c === BS ? 0 : 1;

const decoder = new TextDecoder();

// Top-level captures: spans of values, -1 when absent.
let idS = -1;
let idE = -1;
let tsS = -1;
let tsE = -1;
let svcS = -1;
let svcE = -1;
let emitterLen = 0;
let sigLen = 0;
let payloadSeen = 0;

/** The value at i decoded into field f: the index after it. */
function value(b: Uint8Array, i: number, f: Field, depth: number): number {
  const c = b[i];
  if (c === 0x6e) return literal(b, i); // null: leaves a Go value alone
  switch (f.kind) {
    case STRING:
      if (c !== Q) throw FALLBACK;
      return str(b, i);
    case INT:
      return integer(b, i, false);
    case UINT:
      return integer(b, i, true);
    case FLOAT:
      return float(b, i);
    case BOOL:
      if (c !== 0x74 && c !== 0x66) throw FALLBACK;
      return literal(b, i);
    case STRINGS: {
      if (c !== LBRACK) throw FALLBACK;
      i = ws(b, i + 1);
      if (b[i] === RBRACK) return i + 1;
      for (;;) {
        const d = b[i];
        if (d === Q) i = str(b, i);
        else if (d === 0x6e) i = literal(b, i);
        else throw FALLBACK;
        i = ws(b, i);
        if (b[i] === COMMA) i = ws(b, i + 1);
        else if (b[i] === RBRACK) return i + 1;
        else throw FALLBACK;
      }
    }
    default:
      if (c !== LBRACE) throw FALLBACK;
      return object(b, i, f.sub!, depth + 1, false);
  }
}

/** The field named by the plain key b[s, e), Go-style case-insensitive. */
function fieldOf(st: Struct, b: Uint8Array, s: number, e: number): Field | undefined {
  const candidates = st.byLen[e - s];
  if (candidates === undefined) return undefined;
  next: for (let n = 0; n < candidates.length; n++) {
    const cand = candidates[n]!;
    const u = cand.upper;
    for (let k = 0; k < u.length; k++) if (UP[b[s + k]!] !== u[k]) continue next;
    return cand;
  }
  return undefined;
}

/** The object at i (its `{`) decoded into `st`; `top` captures the event fields. */
function object(b: Uint8Array, i: number, st: Struct, depth: number, top: boolean): number {
  if (depth > MAX_DEPTH) throw FALLBACK;
  let seen = 0;
  i = ws(b, i + 1);
  if (b[i] === RBRACE) return i + 1;
  for (;;) {
    if (b[i] !== Q) throw FALLBACK;
    const ks = i + 1;
    let ke = ks;
    while (KEY_BYTE[b[ke]!] === 1) ke++;
    if (b[ke] !== Q) throw FALLBACK; // an escaped or non-ASCII key (Go folds ſ and K too), or malformed: left to parseEvent
    i = ws(b, ke + 1);
    if (b[i] !== COLON) throw FALLBACK;
    const vs = ws(b, i + 1);
    const f = fieldOf(st, b, ks, ke);
    let ve: number;
    if (f === undefined) ve = any(b, vs, depth + 1); // Go drops unknown keys
    else {
      const bit = 1 << f.bit;
      if (seen & bit) throw FALLBACK; // a repeated key: Go's last-wins and merge rules, left to parseEvent
      seen |= bit;
      ve = value(b, vs, f, depth);
      if (top && f.cap !== CAP_NONE) capture(b, f, vs, ve);
    }
    i = ws(b, ve);
    const c = b[i];
    if (c === COMMA) i = ws(b, i + 1);
    else if (c === RBRACE) return i + 1;
    else throw FALLBACK;
  }
}

function capture(b: Uint8Array, f: Field, vs: number, ve: number): void {
  const isNull = b[vs] === 0x6e;
  switch (f.cap) {
    case CAP_ID:
      if (!isNull) {
        idS = vs + 1;
        idE = ve - 1;
      }
      return;
    case CAP_TS:
      if (!isNull) {
        tsS = vs;
        tsE = ve;
      }
      return;
    case CAP_SVC:
      if (!isNull) {
        svcS = vs + 1;
        svcE = ve - 1;
      }
      return;
    case CAP_EMITTER:
      emitterLen = isNull ? 0 : ve - vs - 2;
      return;
    case CAP_SIG:
      sigLen = isNull ? 0 : ve - vs - 2;
      return;
    default:
      if (!isNull) payloadSeen |= 1 << f.bit;
  }
}

function plainAscii(b: Uint8Array, s: number, e: number): boolean {
  for (let k = s; k < e; k++) if (b[k] === BS || b[k]! >= 0x80) return false;
  return true;
}

/** A captured string's text: escapes or UTF-8 decoded as Go does (a lone surrogate escape becomes U+FFFD). */
function text(b: Uint8Array, s: number, e: number): string {
  if (plainAscii(b, s, e)) return latin1Text(b, s, e);
  return (JSON.parse(`"${decoder.decode(b.subarray(s, e))}"`) as string).toWellFormed();
}

/**
 * The id (as a Go peer decodes it; unless !withId and its bytes are it), ts
 * text (unless !withTs), svc and signedness of a valid event line
 * buf[start, end), or null when the line is not plainly valid (ask
 * parseEvent, which also says what is wrong).
 */
export function fastCheck(buf: Uint8Array, start: number, end: number, withTs = true, withId = true): FastEvent | null {
  lineEnd(end);
  idS = idE = tsS = tsE = svcS = svcE = -1;
  emitterLen = sigLen = payloadSeen = 0;
  let i = ws(buf, start);
  if (buf[i] !== LBRACE) return null;
  try {
    i = ws(buf, object(buf, i, TOP, 0, true));
  } catch (err) {
    if (err === FALLBACK) return null;
    throw err;
  }
  // Nothing but whitespace after the event, and nothing read past the line's end.
  if (i !== end) return null;
  if (idS < 0 || idE <= idS || tsS < 0) return null;
  const svc = svcS < 0 ? "" : plainAscii(buf, svcS, svcE) ? internedText(buf, svcS, svcE) : text(buf, svcS, svcE);
  const key = PAYLOAD_KEY[svc];
  if (key !== undefined && !(payloadSeen & (1 << TOP_BIT[key]!))) return null;
  if (key === undefined && KNOWN_SERVICES.has(svc)) return null;
  const ascii = plainAscii(buf, idS, idE);
  // Plain ASCII bytes are the ID (and not empty): a caller that keys by them needs no string per line.
  const id = ascii ? (withId ? latin1Text(buf, idS, idE) : "") : text(buf, idS, idE);
  if (!ascii && id === "") return null;
  let tsText = withTs ? latin1Text(buf, tsS, tsE) : ""; // digits and "-": ASCII
  if (tsText === "-0") tsText = "0";
  const unescaped = ascii || buf.subarray(idS, idE).indexOf(BS) < 0;
  return { id, tsText, svc, signed: emitterLen > 0 && sigLen > 0, idS: unescaped ? idS : -1, idE: unescaped ? idE : -1 };
}
