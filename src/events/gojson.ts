/**
 * A JSON encoder that writes what Go's `json.Marshal` writes (HTML escaping
 * on, compact, no trailing newline), so simulated peers produce the same
 * bytes as real ones. Field order is the caller's: build objects in Go struct
 * order, and leave a field `undefined` to model `omitempty`.
 */
import { goJsonNumber } from "./gofmt.ts";

/** Text inserted verbatim, like Go's json.RawMessage; it must already be Go-compact. */
export class GoRawJson {
  constructor(readonly json: string) {}
}
export const goRaw = (json: string): GoRawJson => new GoRawJson(json);

// Go escapes C0 controls, quote, backslash and (with HTML escaping) < > &.
// Go >= 1.22 writes \b and \f; older versions wrote \u0008 and \u000c.
const ASCII_ESCAPES: (string | undefined)[] = [];
for (let c = 0; c < 0x20; c++) ASCII_ESCAPES[c] = `\\u00${c.toString(16).padStart(2, "0")}`;
ASCII_ESCAPES[0x08] = "\\b";
ASCII_ESCAPES[0x09] = "\\t";
ASCII_ESCAPES[0x0a] = "\\n";
ASCII_ESCAPES[0x0c] = "\\f";
ASCII_ESCAPES[0x0d] = "\\r";
ASCII_ESCAPES[0x22] = '\\"';
ASCII_ESCAPES[0x26] = "\\u0026";
ASCII_ESCAPES[0x3c] = "\\u003c";
ASCII_ESCAPES[0x3e] = "\\u003e";
ASCII_ESCAPES[0x5c] = "\\\\";

const NEEDS_ESCAPE = /[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff]/;

/** A string as Go writes it; lone surrogates (Go: invalid UTF-8) become `\ufffd`. */
export function goJsonString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  let from = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    let esc: string | undefined;
    if (c < 0x80) {
      esc = ASCII_ESCAPES[c];
    } else if (c === 0x2028) {
      esc = "\\u2028";
    } else if (c === 0x2029) {
      esc = "\\u2029";
    } else if (c >= 0xd800 && c <= 0xdfff) {
      if (c <= 0xdbff && i + 1 < n) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          i++; // a valid pair is written raw
          continue;
        }
      }
      esc = "\\ufffd";
    }
    if (esc !== undefined) {
      out += s.slice(from, i) + esc;
      from = i + 1;
    }
  }
  return out + s.slice(from) + '"';
}

/**
 * Encodes `value` like Go's json.Marshal. Plain objects and Maps keep their
 * order (beware: JS puts integer-like object keys first; use a Map for
 * those); `undefined` members are skipped; bigint is a decimal integer;
 * numbers are float64 (integers print as integers); GoRawJson is inserted as is.
 */
export function goJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return goJsonString(value);
    case "number":
      return goJsonNumber(value);
    case "bigint":
      return value.toString();
    case "boolean":
      return value ? "true" : "false";
    case "object":
      return value === null ? "null" : encodeObject(value);
    default:
      throw new TypeError(`goJson: cannot encode a ${typeof value}`);
  }
}

function encodeObject(value: object): string {
  if (value instanceof GoRawJson) return value.json;
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ",";
      const item = value[i];
      out += item === undefined ? "null" : goJson(item);
    }
    return out + "]";
  }
  let out = "{";
  if (value instanceof Map) {
    for (const [key, item] of value) {
      if (item === undefined) continue;
      if (out.length > 1) out += ",";
      out += `${goJsonString(String(key))}:${goJson(item)}`;
    }
    return out + "}";
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = record[key];
    if (item === undefined) continue;
    if (out.length > 1) out += ",";
    out += `${goJsonString(key)}:${goJson(item)}`;
  }
  return out + "}";
}
