/**
 * The JSON tokens of one line, checked as the fast check (fastcheck.ts)
 * walks them: strings (escapes, control characters, UTF-8), numbers (the
 * grammar, Go's integer ranges, float64 overflow), literals, and values
 * walked for their grammar only. Each returns the index after its token or
 * throws FALLBACK (the line is left to the reference check).
 */

import { BS, COLON, COMMA, LBRACE, LBRACK, Q, RBRACE, RBRACK } from "./jsonskip.ts";

/** Deeper values are left to the reference check. */
export const MAX_DEPTH = 64;

/** Bytes that end the plain run of a string: the quote, the backslash, control characters and non-ASCII (UTF-8 checked). */
const STRING_STOP = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) STRING_STOP[c] = 1;
for (let c = 0x80; c < 0x100; c++) STRING_STOP[c] = 1;
STRING_STOP[Q] = 1;
STRING_STOP[BS] = 1;
/** The escapes JSON allows after a backslash (u is checked for its four hex digits). */
const ESCAPE = new Uint8Array(256);
for (const c of '"\\/bfnrtu') ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(256);
for (const c of "0123456789abcdefABCDEF") HEX[c.charCodeAt(0)] = 1;

const INT64_MAX = new TextEncoder().encode("9223372036854775807");
const INT64_MIN_ABS = new TextEncoder().encode("9223372036854775808");
const UINT64_MAX = new TextEncoder().encode("18446744073709551615");

export class Fallback extends Error {}
export const FALLBACK = new Fallback();

const decoder = new TextDecoder();

/** Where the line ends: whitespace is never skipped past it (the next line's bytes follow in a held buffer). */
let E = 0;

/** Sets the end of the line the next walk is in. */
export function lineEnd(end: number): void {
  E = end;
}

export function ws(b: Uint8Array, i: number): number {
  for (;;) {
    const c = b[i];
    if ((c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) && i < E) i++;
    else return i;
  }
}

/** The string at i (its quote): the index after its closing quote. */
export function str(b: Uint8Array, i: number): number {
  i++;
  for (;;) {
    const c = b[i]!;
    if (STRING_STOP[c] === 0) {
      i++;
      continue;
    }
    if (c === Q) return i + 1;
    if (c >= 0x80) {
      i = utf8(b, i);
      continue;
    }
    if (c !== BS || ESCAPE[b[i + 1]!] !== 1) throw FALLBACK; // a control character, the end, a bad escape
    if (b[i + 1] === 0x75) {
      if (HEX[b[i + 2]!]! & HEX[b[i + 3]!]! & HEX[b[i + 4]!]! & HEX[b[i + 5]!]!) i += 6;
      else throw FALLBACK;
    } else i += 2;
  }
}

const isCont = (c: number): boolean => (c & 0xc0) === 0x80;

/**
 * The UTF-8 sequence at i (a byte >= 0x80): the index after it. Strict, as
 * isUtf8: no overlong forms, no surrogates, nothing past U+10FFFF.
 */
function utf8(b: Uint8Array, i: number): number {
  const c = b[i]!;
  const d = b[i + 1] ?? 0;
  if (c < 0xc2) throw FALLBACK; // a continuation byte, or an overlong lead
  if (c < 0xe0) {
    if (!isCont(d)) throw FALLBACK;
    return i + 2;
  }
  if (c < 0xf0) {
    if (!isCont(d) || (c === 0xe0 && d < 0xa0) || (c === 0xed && d > 0x9f) || !isCont(b[i + 2] ?? 0)) throw FALLBACK;
    return i + 3;
  }
  if (c < 0xf5) {
    if (!isCont(d) || (c === 0xf0 && d < 0x90) || (c === 0xf4 && d > 0x8f) || !isCont(b[i + 2] ?? 0) || !isCont(b[i + 3] ?? 0)) throw FALLBACK;
    return i + 4;
  }
  throw FALLBACK;
}

export function literal(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c === 0x6e && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) return i + 4; // null
  if (c === 0x74 && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) return i + 4; // true
  if (c === 0x66 && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65) return i + 5; // false
  throw FALLBACK;
}

const isDigit = (c: number | undefined): boolean => c !== undefined && c >= 0x30 && c <= 0x39;

/** The digits at i: 0 alone or 1-9 then any; the index after them. */
function digits(b: Uint8Array, i: number): number {
  const c = b[i];
  if (c === 0x30) return i + 1;
  if (!isDigit(c)) throw FALLBACK;
  i++;
  while (isDigit(b[i])) i++;
  return i;
}

/** Any number token at i (grammar only): the index after it. */
function number(b: Uint8Array, i: number): number {
  if (b[i] === 0x2d) i++;
  i = digits(b, i);
  if (b[i] === 0x2e) {
    if (!isDigit(b[++i])) throw FALLBACK;
    while (isDigit(b[i])) i++;
  }
  const c = b[i];
  if (c === 0x65 || c === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    if (!isDigit(b[i])) throw FALLBACK;
    while (isDigit(b[i])) i++;
  }
  return i;
}

/** Is the digit run b[s, e) at most `max` (as numbers; no leading zeros)? */
function digitsAtMost(b: Uint8Array, s: number, e: number, max: Uint8Array): boolean {
  if (e - s !== max.length) return e - s < max.length;
  for (let k = 0; k < max.length; k++) {
    const d = b[s + k]!;
    if (d !== max[k]) return d < max[k]!;
  }
  return true;
}

/** An integer for a Go int/int64 (or uint64): no fraction or exponent, in range; the index after it. */
export function integer(b: Uint8Array, i: number, unsigned: boolean): number {
  const neg = b[i] === 0x2d;
  if (neg) {
    if (unsigned) throw FALLBACK;
    i++;
  }
  const e = digits(b, i);
  const c = b[e];
  if (c === 0x2e || c === 0x65 || c === 0x45) throw FALLBACK; // Go refuses a fraction or exponent for an int
  if (e - i >= 19 && !digitsAtMost(b, i, e, unsigned ? UINT64_MAX : neg ? INT64_MIN_ABS : INT64_MAX)) throw FALLBACK;
  return e;
}

/** A number for a Go float64: Go refuses an overflow (1e400, or 400 digits); underflow is 0 in both. */
export function float(b: Uint8Array, i: number): number {
  const e = number(b, i);
  let risky = e - i > 300;
  for (let k = i; k < e && !risky; k++) risky = b[k] === 0x65 || b[k] === 0x45;
  if (risky && !Number.isFinite(Number(decoder.decode(b.subarray(i, e))))) throw FALLBACK;
  return e;
}

/** Any value at i, checked for grammar only (a key Go drops): the index after it. */
export function any(b: Uint8Array, i: number, depth: number): number {
  const c = b[i];
  if (c === Q) return str(b, i);
  if (c === LBRACE || c === LBRACK) {
    if (depth > MAX_DEPTH) throw FALLBACK;
    const close = c === LBRACE ? RBRACE : RBRACK;
    i = ws(b, i + 1);
    if (b[i] === close) return i + 1;
    for (;;) {
      if (close === RBRACE) {
        if (b[i] !== Q) throw FALLBACK;
        i = ws(b, str(b, i));
        if (b[i] !== COLON) throw FALLBACK;
        i = ws(b, i + 1);
      }
      i = ws(b, any(b, i, depth + 1));
      const d = b[i];
      if (d === COMMA) i = ws(b, i + 1);
      else if (d === close) return i + 1;
      else throw FALLBACK;
    }
  }
  if (c === 0x2d || isDigit(c)) return number(b, i);
  return literal(b, i);
}
