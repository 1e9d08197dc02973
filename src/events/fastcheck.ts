/**
 * The fast path of line validation. parseEvent (src/events/id.ts) is the
 * reference for how a Go peer decodes an event, but it builds a tree and
 * canonical payloads for every line (~25 MB/s). A restore only needs to know
 * that the line decodes, and its id, ts and svc. This walks the bytes of a
 * line that scanEventLine already found to be well-formed JSON and checks
 * every value a Go peer decodes against the same struct tables
 * (src/events/schema.ts).
 *
 * It only ever answers "valid, with these fields" when the answer is plain:
 * ASCII keys without escapes, no key repeated (after Go's case folding),
 * every type right. Anything else (a duplicate key, an escaped or non-ASCII
 * key, a type error, a missing id or payload) returns null and the caller
 * asks parseEvent, which also words the error.
 */
import { newEventFields, scanEventLine, ScanError, type EventFields } from "./scan.ts";
import { SYNC_EVENT, type GoField, type GoStruct } from "./schema.ts";
import { KNOWN_SERVICES, PAYLOAD_KEY } from "./id.ts";
import { internedText, latin1Text } from "./linecheck.ts";

export type FastEvent = { id: string; tsText: string; svc: string; signed: boolean };

const Q = 0x22;
const BS = 0x5c;
const INT64_MAX_TEXT = "9223372036854775807";
const INT64_MIN_ABS_TEXT = "9223372036854775808";
const UINT64_MAX_TEXT = "18446744073709551615";

type FieldEntry = { field: GoField; bit: number; upper: Uint8Array };
/** Per struct, the fields by the length of their JSON name (compared with ASCII case folding). */
const FIELDS = new WeakMap<GoStruct, FieldEntry[][]>();
function fieldsOf(st: GoStruct): FieldEntry[][] {
  let byLen = FIELDS.get(st);
  if (!byLen) {
    byLen = [];
    st.fields.forEach((field, bit) => {
      const upper = new TextEncoder().encode(field.json.toUpperCase());
      (byLen![upper.length] ??= []).push({ field, bit, upper });
    });
    FIELDS.set(st, byLen);
  }
  return byLen;
}

const TOP_BIT: Record<string, number> = {};
SYNC_EVENT.fields.forEach((f, i) => (TOP_BIT[f.json] = i));

class Fallback extends Error {}
const FALLBACK = new Fallback();

const decoder = new TextDecoder();

/** Compares two decimal digit strings without signs as numbers. */
function digitsLe(a: string, b: string): boolean {
  return a.length < b.length || (a.length === b.length && a <= b);
}

class Walker {
  b!: Uint8Array;
  end = 0;
  // Top-level captures: spans of values, -1 when absent.
  idS = -1;
  idE = -1;
  tsS = -1;
  tsE = -1;
  svcS = -1;
  svcE = -1;
  emitterLen = 0;
  sigLen = 0;
  payloadSeen = 0;

  reset(b: Uint8Array, end: number): void {
    this.b = b;
    this.end = end;
    this.idS = this.idE = this.tsS = this.tsE = this.svcS = this.svcE = -1;
    this.emitterLen = this.sigLen = 0;
    this.payloadSeen = 0;
  }

  ws(i: number): number {
    const b = this.b;
    for (;;) {
      const c = b[i];
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else return i;
    }
  }

  /** At a quote: index after the closing quote. */
  str(i: number): number {
    const b = this.b;
    i++;
    for (;;) {
      const c = b[i];
      if (c === Q) return i + 1;
      i += c === BS ? 2 : 1;
    }
  }

  /** Any value (already validated JSON): index after it. */
  skip(i: number): number {
    const b = this.b;
    const c = b[i];
    if (c === Q) return this.str(i);
    if (c === 0x7b || c === 0x5b) {
      let depth = 0;
      for (;;) {
        const d = b[i];
        if (d === Q) {
          i = this.str(i);
          continue;
        }
        if (d === 0x7b || d === 0x5b) depth++;
        else if (d === 0x7d || d === 0x5d) {
          if (--depth === 0) return i + 1;
        }
        i++;
      }
    }
    while (i < this.end) {
      const d = b[i];
      if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
      i++;
    }
    return i;
  }

  /** The field named by key [s, e) (inside the quotes), Go-style case-insensitive; Fallback on escapes or non-ASCII. */
  key(byLen: FieldEntry[][], s: number, e: number): FieldEntry | undefined {
    const b = this.b;
    for (let k = s; k < e; k++) if (b[k] === BS || b[k]! >= 0x80) throw FALLBACK;
    const candidates = byLen[e - s];
    if (candidates === undefined) return undefined;
    next: for (const cand of candidates) {
      const u = cand.upper;
      for (let k = 0; k < u.length; k++) {
        let c = b[s + k]!;
        if (c >= 0x61 && c <= 0x7a) c -= 0x20;
        if (c !== u[k]) continue next;
      }
      return cand;
    }
    return undefined;
  }

  isNull(i: number): boolean {
    return this.b[i] === 0x6e; // n(ull): the JSON is valid, so nothing else starts with n
  }

  /** A number token at i: its end, with integer checks; Fallback on a type error. */
  number(i: number, kind: "int" | "uint" | "float"): number {
    const b = this.b;
    const c = b[i];
    if (!(c === 0x2d || (c! >= 0x30 && c! <= 0x39))) throw FALLBACK;
    const e = this.skip(i);
    if (kind === "float") {
      // Go refuses a float64 overflow (1e400, or 400 digits); underflow is 0 in both.
      let risky = e - i > 300;
      for (let k = i; k < e && !risky; k++) risky = b[k] === 0x65 || b[k] === 0x45;
      if (risky && !Number.isFinite(Number(decoder.decode(b.subarray(i, e))))) throw FALLBACK;
      return e;
    }
    let k = i;
    const neg = b[k] === 0x2d;
    if (neg) {
      if (kind === "uint") throw FALLBACK;
      k++;
    }
    for (let j = k; j < e; j++) if (b[j]! < 0x30 || b[j]! > 0x39) throw FALLBACK; // fraction or exponent
    if (e - k >= 19) {
      const digits = latin1Text(b, k, e); // checked above: ASCII digits
      const max = kind === "uint" ? UINT64_MAX_TEXT : neg ? INT64_MIN_ABS_TEXT : INT64_MAX_TEXT;
      if (!digitsLe(digits, max)) throw FALLBACK;
    }
    return e;
  }

  /** Checks the value at i against a field type; returns its end. */
  value(i: number, f: GoField, depth: number): number {
    const b = this.b;
    if (this.isNull(i)) return i + 4;
    const t = f.type;
    if (typeof t === "object") {
      if (b[i] !== 0x7b) throw FALLBACK;
      return this.object(i, t.struct, depth + 1, false);
    }
    switch (t) {
      case "string":
        if (b[i] !== Q) throw FALLBACK;
        return this.str(i);
      case "bool":
        if (b[i] !== 0x74 && b[i] !== 0x66) throw FALLBACK;
        return this.skip(i);
      case "float64":
        return this.number(i, "float");
      case "int":
      case "int64":
        return this.number(i, "int");
      case "uint64":
        return this.number(i, "uint");
      case "strings": {
        if (b[i] !== 0x5b) throw FALLBACK;
        let j = this.ws(i + 1);
        if (b[j] === 0x5d) return j + 1;
        for (;;) {
          if (b[j] === Q) j = this.str(j);
          else if (this.isNull(j)) j += 4;
          else throw FALLBACK;
          j = this.ws(j);
          if (b[j] === 0x2c) j = this.ws(j + 1);
          else return j + 1; // ]
        }
      }
    }
  }

  /** The object at i (its `{`) decoded into `st`; `top` captures the event fields. */
  object(i: number, st: GoStruct, depth: number, top: boolean): number {
    if (depth > 64) throw FALLBACK;
    const b = this.b;
    const fields = fieldsOf(st);
    let seen = 0;
    i = this.ws(i + 1);
    if (b[i] === 0x7d) return i + 1;
    for (;;) {
      const ks = i + 1;
      const ke = this.str(i) - 1;
      i = this.ws(ke + 1); // at ':'
      const vs = this.ws(i + 1);
      const entry = this.key(fields, ks, ke);
      let ve: number;
      if (entry === undefined) {
        ve = this.skip(vs); // Go drops unknown keys
      } else {
        const bit = 1 << entry.bit;
        if (seen & bit) throw FALLBACK; // a repeated key: Go's last-wins and merge rules, left to parseEvent
        seen |= bit;
        ve = this.value(vs, entry.field, depth);
        if (top) this.capture(entry.field, vs, ve);
      }
      i = this.ws(ve);
      if (b[i] === 0x2c) i = this.ws(i + 1);
      else return i + 1; // }
    }
  }

  capture(f: GoField, vs: number, ve: number): void {
    const isNull = this.isNull(vs);
    switch (f.json) {
      case "id":
        if (!isNull) {
          this.idS = vs + 1;
          this.idE = ve - 1;
        }
        return;
      case "ts":
        if (!isNull) {
          this.tsS = vs;
          this.tsE = ve;
        }
        return;
      case "svc":
        if (!isNull) {
          this.svcS = vs + 1;
          this.svcE = ve - 1;
        }
        return;
      case "emitter":
        this.emitterLen = isNull ? 0 : ve - vs - 2;
        return;
      case "sig":
        this.sigLen = isNull ? 0 : ve - vs - 2;
        return;
      default:
        if (typeof f.type === "object" && !isNull) this.payloadSeen |= 1 << TOP_BIT[f.json]!;
    }
  }

  plainAscii(s: number, e: number): boolean {
    const b = this.b;
    for (let k = s; k < e; k++) if (b[k] === BS || b[k]! >= 0x80) return false;
    return true;
  }

  text(s: number, e: number): string {
    const b = this.b;
    let plain = true;
    for (let k = s; k < e; k++) {
      if (b[k] === BS || b[k]! >= 0x80) {
        plain = false;
        break;
      }
    }
    if (plain) return latin1Text(b, s, e);
    // Escapes or UTF-8: decoded as Go does (a lone surrogate escape becomes U+FFFD).
    return (JSON.parse(`"${decoder.decode(b.subarray(s, e))}"`) as string).toWellFormed();
  }
}

const walker = new Walker();
const fields: EventFields = newEventFields();

/**
 * The id (as a Go peer decodes it), ts text, svc and signedness of a valid
 * event line, or null when the line is not plainly valid (ask parseEvent).
 * Throws ScanError when the line is not well-formed JSON.
 */
export function fastCheck(buf: Uint8Array, start: number, end: number): FastEvent | null {
  scanEventLine(buf, start, end, fields); // grammar; throws ScanError
  const w = walker;
  w.reset(buf, end);
  try {
    w.object(w.ws(start), SYNC_EVENT, 0, true);
  } catch (err) {
    if (err === FALLBACK) return null;
    throw err;
  }
  if (w.idS < 0 || w.idE <= w.idS || w.tsS < 0) return null;
  const svc = w.svcS < 0 ? "" : w.plainAscii(w.svcS, w.svcE) ? internedText(buf, w.svcS, w.svcE) : w.text(w.svcS, w.svcE);
  const key = PAYLOAD_KEY[svc];
  if (key !== undefined && !(w.payloadSeen & (1 << TOP_BIT[key]!))) return null;
  if (key === undefined && KNOWN_SERVICES.has(svc)) return null;
  const id = w.text(w.idS, w.idE);
  if (id === "") return null;
  let tsText = latin1Text(buf, w.tsS, w.tsE); // digits and "-": ASCII
  if (tsText === "-0") tsText = "0";
  return { id, tsText, svc, signed: w.emitterLen > 0 && w.sigLen > 0 };
}

export { ScanError };
