/**
 * The order of a backup: (ts as an integer, id as the dedup key compared as
 * a JS string), exactly the order dump-events writes (src/dump/collect.ts
 * drain), and the record every stage of merge passes around.
 *
 * Ids of 32 lowercase hex characters (all honest ones) are held as four
 * 32-bit words: no string per event, and comparing the words gives the
 * order of the strings. Other ids keep their string key (idKey).
 */
import { hexTextWords, hexWords, wordsHex } from "./idtable.ts";
import { idKey, splitTsInto } from "./scan.ts";

const EMPTY = Buffer.alloc(0);

// ---- The order itself. Every representation of events (Heads here, the
// collector's and the run builder's arrays, verify's strings) compares
// through these: ts as an integer, then the id's key as a JS string.

/** Above this |hi| (the digits before the last nine) a double no longer holds them exactly. */
const EXACT_HI = 2 ** 53;

/** Are two split ts with this (equal) `hi` too large for the doubles to decide? Then their digits do. */
export const tsNeedsDigits = (hi: number): boolean => hi >= EXACT_HI || hi <= -EXACT_HI;

/** ts order of two ts split by splitTsInto (exact unless tsNeedsDigits, for equal `hi`s). */
export function compareSplitTs(ah: number, al: number, bh: number, bl: number): number {
  if (ah !== bh) return ah < bh ? -1 : 1;
  return al < bl ? -1 : al > bl ? 1 : 0;
}

/**
 * Compares two integer tokens exactly ([as, ae) in a, [bs, be) in b): valid
 * JSON integers have no leading zeros, so a longer magnitude is larger.
 */
export function compareIntTokens(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): number {
  const negA = a[as] === 0x2d;
  const negB = b[bs] === 0x2d;
  if (negA !== negB) return negA ? -1 : 1;
  if (negA) {
    as++;
    bs++;
  }
  let d = ae - as - (be - bs);
  if (d === 0) {
    for (let k = 0; k < ae - as; k++) {
      d = a[as + k]! - b[bs + k]!;
      if (d !== 0) break;
    }
  }
  return negA ? -d : d;
}

/** ts order of two canonical decimal integers as text (no leading zeros, "-" for negatives). */
export function compareTsText(a: string, b: string): number {
  const na = a.charCodeAt(0) === 0x2d;
  const nb = b.charCodeAt(0) === 0x2d;
  if (na !== nb) return na ? -1 : 1;
  let c = a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
  if (na && c !== 0) c = -c;
  return c;
}

/** Id order: the order of the key strings. */
export function compareIdText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Id order of two hex ids as words (four at `at`, four at `bt`): the order of their strings. */
export function compareWords(a: Uint32Array, at: number, b: Uint32Array, bt: number): number {
  for (let k = 0; k < 4; k++) {
    const x = a[at + k]!;
    const y = b[bt + k]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Id order where each id is either hex (words at `at`; no key) or a key string. */
export function compareIds(w: Uint32Array, at: number, ak: string | undefined, bt: number, bk: string | undefined): number {
  if (ak === undefined && bk === undefined) return compareWords(w, at, w, bt);
  return compareIdText(ak ?? wordsHex(w, at), bk ?? wordsHex(w, bt));
}

/** One event: its bytes in `buf` and what sorting and dedup need. Reused in place: copy what must survive. */
export class Head {
  /** A Buffer: copies go through Buffer#copy, without a view object per event. */
  buf: Buffer = EMPTY;
  /** The event object's bytes: [s, e), no line break, no surrounding blanks. */
  s = 0;
  e = 0;
  /** The `ts` token, in `buf`. */
  tsS = 0;
  tsE = 0;
  /** `ts` split like splitTsInto: the digits before the last nine, and the last nine. */
  tsHi = 0;
  tsLo = 0;
  /** Inside the quotes of the `id` string, in `buf`. */
  idS = 0;
  idE = 0;
  idEscaped = false;
  /** The id is 32 lowercase hex characters, held in w0..w3 (else in `key`). */
  hex = false;
  w0 = 0;
  w1 = 0;
  w2 = 0;
  w3 = 0;
  /** The dedup key (idKey) of an id that is not `hex`; "" otherwise. */
  key = "";
  signed = false;
  /** Input number (position on the command line) and line number the bytes come from. */
  origin = 0;
  line = 0;
}

/** The words of the id being read (hexWords writes into an array). */
const scratch = new Uint32Array(4);

function wordsInto(h: Head): void {
  h.hex = true;
  h.key = "";
  h.w0 = scratch[0]!;
  h.w1 = scratch[1]!;
  h.w2 = scratch[2]!;
  h.w3 = scratch[3]!;
}

/** Sets h.hex/w0..w3 or h.key from the id at h.buf[h.idS, h.idE) (h.idEscaped set). */
export function setIdKey(h: Head): void {
  const b = h.buf;
  if (!h.idEscaped && hexWords(b, h.idS, h.idE, scratch, 0)) return wordsInto(h);
  const key = idKey(b, h.idS, h.idE, h.idEscaped);
  // An escaped spelling of a hex id is the same id: same words.
  if (hexTextWords(key, scratch, 0)) return wordsInto(h);
  h.hex = false;
  h.key = key;
}

/** The id as text (the key string of a hex id), for messages and mixed comparisons. */
export function keyText(h: Head): string {
  if (!h.hex) return h.key;
  scratch[0] = h.w0;
  scratch[1] = h.w1;
  scratch[2] = h.w2;
  scratch[3] = h.w3;
  return wordsHex(scratch, 0);
}

const hiScratch = new Float64Array(1);
const loScratch = new Float64Array(1);

/** Sets h.tsHi/tsLo from the ts token at h.buf[h.tsS, h.tsE). */
export function setTs(h: Head): void {
  splitTsInto(h.buf, h.tsS, h.tsE, hiScratch, loScratch, 0);
  h.tsHi = hiScratch[0]!;
  h.tsLo = loScratch[0]!;
}

/** Id order of two Heads (compareWords on the fields for two hex ids). */
export function compareKeys(a: Head, b: Head): number {
  if (a.hex && b.hex) {
    if (a.w0 !== b.w0) return a.w0 < b.w0 ? -1 : 1;
    if (a.w1 !== b.w1) return a.w1 < b.w1 ? -1 : 1;
    if (a.w2 !== b.w2) return a.w2 < b.w2 ? -1 : 1;
    if (a.w3 !== b.w3) return a.w3 < b.w3 ? -1 : 1;
    return 0;
  }
  return compareIdText(keyText(a), keyText(b));
}

/** Copies `from` into `to` with the event's bytes copied to the start of `buf` (big enough). */
export function copyHeadInto(to: Head, from: Head, buf: Buffer): void {
  const d = -from.s;
  from.buf.copy(buf, 0, from.s, from.e);
  to.buf = buf;
  to.s = 0;
  to.e = from.e + d;
  to.tsS = from.tsS + d;
  to.tsE = from.tsE + d;
  to.tsHi = from.tsHi;
  to.tsLo = from.tsLo;
  to.idS = from.idS + d;
  to.idE = from.idE + d;
  to.idEscaped = from.idEscaped;
  to.hex = from.hex;
  to.w0 = from.w0;
  to.w1 = from.w1;
  to.w2 = from.w2;
  to.w3 = from.w3;
  to.key = from.key;
  to.signed = from.signed;
  to.origin = from.origin;
  to.line = from.line;
}

/**
 * ts order from the split doubles; exact for any length: when the high parts
 * are too large for a double, equal doubles fall back to the digits.
 */
export function compareTs(a: Head, b: Head): number {
  if (a.tsHi === b.tsHi && tsNeedsDigits(a.tsHi)) return compareIntTokens(a.buf, a.tsS, a.tsE, b.buf, b.tsS, b.tsE);
  return compareSplitTs(a.tsHi, a.tsLo, b.tsHi, b.tsLo);
}

/** (ts, key): 0 means the same event. */
export function compareEvents(a: Head, b: Head): number {
  return compareTs(a, b) || compareKeys(a, b);
}

/** (ts, key, origin, line): a total order, so that which copy of an event comes first never depends on timing. */
export function compareCopies(a: Head, b: Head): number {
  return compareTs(a, b) || compareKeys(a, b) || a.origin - b.origin || a.line - b.line;
}

/** The text of a ts token, for messages. */
export function tsText(h: Head): string {
  let out = "";
  for (let k = h.tsS; k < h.tsE; k++) out += String.fromCharCode(h.buf[k]!);
  return out;
}
