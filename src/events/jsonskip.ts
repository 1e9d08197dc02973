/**
 * The JSON grammar the byte scanners share (events/scan.ts): each skip
 * validates the value at `i` and returns the index after it, building
 * nothing.
 */

export class ScanError extends Error {
  constructor(
    readonly reason: string,
    readonly offset: number,
  ) {
    super(`${reason} at byte ${offset}`);
    this.name = "ScanError";
  }
}

export const Q = 0x22; // "
export const BS = 0x5c; // \
export const COMMA = 0x2c;
export const COLON = 0x3a;
export const LBRACE = 0x7b;
export const RBRACE = 0x7d;
export const LBRACK = 0x5b;
export const RBRACK = 0x5d;

/** Set by skipWs on a line break: scanEventAt clears and reads it per event. */
export const ws = { sawLineBreak: false };

export function skipWs(b: Uint8Array, i: number): number {
  for (;;) {
    const c = b[i];
    if (c === 0x20 || c === 0x09) i++;
    else if (c === 0x0a || c === 0x0d) {
      ws.sawLineBreak = true;
      i++;
    } else return i;
  }
}

/** Bytes that end the plain run of a string: the quote, the backslash and control characters. */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
STRING_STOP[0x22] = 1;
STRING_STOP[0x5c] = 1;

/** `i` is at the opening quote; returns the index after the closing quote. */
export function skipString(b: Uint8Array, i: number): number {
  const n = b.length;
  i++;
  while (i < n) {
    const c = b[i]!;
    if (STRING_STOP[c] === 0) {
      i++;
      continue;
    }
    if (c === Q) return i + 1;
    if (c === BS) {
      const e = b[i + 1];
      if (e === 0x75) {
        for (let k = 2; k < 6; k++) if (!isHex(b[i + k])) throw new ScanError("bad \\u escape", i);
        i += 6;
      } else if (e === Q || e === BS || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else throw new ScanError("bad escape", i);
    } else if (c < 0x20) throw new ScanError("control character in string", i);
    else i++;
  }
  throw new ScanError("unterminated string", n);
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66));
}

/** Index after a JSON number token starting at `i` (validated grammar). */
function skipNumber(b: Uint8Array, i: number): number {
  const start = i;
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if (b[i]! >= 0x31 && b[i]! <= 0x39) while (b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  else throw new ScanError("bad number", start);
  if (b[i] === 0x2e) {
    i++;
    if (!(b[i]! >= 0x30 && b[i]! <= 0x39)) throw new ScanError("bad number", start);
    while (b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    if (!(b[i]! >= 0x30 && b[i]! <= 0x39)) throw new ScanError("bad number", start);
    while (b[i]! >= 0x30 && b[i]! <= 0x39) i++;
  }
  return i;
}

function skipLiteral(b: Uint8Array, i: number, word: string): number {
  for (let k = 0; k < word.length; k++) {
    if (b[i + k] !== word.charCodeAt(k)) throw new ScanError(`unexpected token`, i);
  }
  return i + word.length;
}

/** Index after the JSON value starting at `i` (no leading whitespace). */
export function skipValue(b: Uint8Array, i: number, depth: number): number {
  const c = b[i];
  if (c === Q) return skipString(b, i);
  if (c === LBRACE) return skipObject(b, i, depth + 1);
  if (c === LBRACK) return skipArray(b, i, depth + 1);
  if (c === 0x74) return skipLiteral(b, i, "true");
  if (c === 0x66) return skipLiteral(b, i, "false");
  if (c === 0x6e) return skipLiteral(b, i, "null");
  if (c === undefined) throw new ScanError("unexpected end of input", i);
  return skipNumber(b, i);
}

/** Where the key of the member at `i` ends (set by memberValue). */
export let keyEnd = 0;

/** The object member at `i` (its key's opening quote): where its value starts; the key ends at `keyEnd`. */
export function memberValue(b: Uint8Array, i: number): number {
  if (b[i] !== Q) throw new ScanError("expected a key", i);
  keyEnd = skipString(b, i);
  i = skipWs(b, keyEnd);
  if (b[i] !== COLON) throw new ScanError("expected ':'", i);
  return skipWs(b, i + 1);
}

function skipObject(b: Uint8Array, i: number, depth: number): number {
  if (depth > 256) throw new ScanError("nesting too deep", i);
  i = skipWs(b, i + 1);
  if (b[i] === RBRACE) return i + 1;
  for (;;) {
    i = skipWs(b, skipValue(b, memberValue(b, i), depth));
    if (b[i] === COMMA) i = skipWs(b, i + 1);
    else if (b[i] === RBRACE) return i + 1;
    else throw new ScanError(b[i] === undefined ? "unexpected end of input" : "expected ',' or '}'", i);
  }
}

function skipArray(b: Uint8Array, i: number, depth: number): number {
  if (depth > 256) throw new ScanError("nesting too deep", i);
  i = skipWs(b, i + 1);
  if (b[i] === RBRACK) return i + 1;
  for (;;) {
    i = skipWs(b, skipValue(b, i, depth));
    if (b[i] === COMMA) i = skipWs(b, i + 1);
    else if (b[i] === RBRACK) return i + 1;
    else throw new ScanError(b[i] === undefined ? "unexpected end of input" : "expected ',' or ']'", i);
  }
}

/** Does the key token [s, e) (quotes included) spell `word`? Escaped keys never match (Go never escapes these). */
export function keyIs(b: Uint8Array, s: number, e: number, word: string): boolean {
  if (e - s - 2 !== word.length) return false;
  for (let k = 0; k < word.length; k++) if (b[s + 1 + k] !== word.charCodeAt(k)) return false;
  return true;
}

export function isIntegerToken(b: Uint8Array, s: number, e: number): boolean {
  let i = s;
  if (b[i] === 0x2d) i++;
  if (i >= e) return false;
  for (; i < e; i++) if (b[i]! < 0x30 || b[i]! > 0x39) return false;
  return true;
}

