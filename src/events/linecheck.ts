/**
 * What the send passes need to trust a line without validating it again:
 * pass 1 keeps a CRC-32 of every line's bytes (4 bytes a line), and a line
 * whose bytes still give that CRC is the line pass 1 validated. Its ID and
 * service then come from the line's first bytes when pass 1 found it plain
 * (the fast check answered: no repeated or escaped keys) and Go's field
 * order puts them first, `{"id":"…","ts":…,"svc":"…"`; any other line is
 * validated again.
 */
import { grown } from "../typed.ts";

/** A growable CRC-32 per line number of one input. */
export class LineHashes {
  #crc = new Uint32Array(1024);

  set(line: number, crc: number): void {
    if (line >= this.#crc.length) {
      let size = this.#crc.length * 2;
      while (size <= line) size *= 2;
      this.#crc = grown(this.#crc, size);
    }
    this.#crc[line] = crc;
  }

  /** The CRC-32 pass 1 saw for `line` (0 when none was stored). */
  get(line: number): number {
    return line < this.#crc.length ? this.#crc[line]! : 0;
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#crc.byteLength;
  }
}

export const lineCrc = (buf: Uint8Array, start: number, end: number): number => Bun.hash.crc32(buf.subarray(start, end));

const Q = 0x22;
const BS = 0x5c;
const ID_KEY = [0x7b, Q, 0x69, 0x64, Q, 0x3a, Q]; // {"id":"
const TS_KEY = [0x2c, Q, 0x74, 0x73, Q, 0x3a]; // ,"ts":
const SVC_KEY = [0x2c, Q, 0x73, 0x76, 0x63, Q, 0x3a, Q]; // ,"svc":"

function at(buf: Uint8Array, i: number, key: readonly number[]): boolean {
  for (let k = 0; k < key.length; k++) if (buf[i + k] !== key[k]) return false;
  return true;
}

/** From the quote-opened string at i: its end (the closing quote), or -1 when it has an escape or a non-ASCII byte. */
function plainString(buf: Uint8Array, i: number, end: number): number {
  for (; i < end; i++) {
    const c = buf[i]!;
    if (c === Q) return i;
    if (c === BS || c >= 0x80) return -1;
  }
  return -1;
}

/** Where a line's ID is and its service, from its leading bytes (leadingSpans). */
export type LeadingSpans = { idS: number; idE: number; svc: string };

/**
 * Where the ID of a line is and its service, in Go's field order, read from
 * its first bytes into `out` (no string made for the ID); false when it does
 * not start `{"id":"…","ts":…,"svc":"…"` with plain strings. Only meaningful
 * for a line the full check found plain: then no later key can override these.
 */
export function leadingSpans(buf: Uint8Array, start: number, end: number, out: LeadingSpans): boolean {
  if (!at(buf, start, ID_KEY)) return false;
  const idS = start + ID_KEY.length;
  const idE = plainString(buf, idS, end);
  if (idE <= idS || !at(buf, idE + 1, TS_KEY)) return false;
  let i = idE + 1 + TS_KEY.length;
  while (i < end && buf[i] !== 0x2c) i++;
  if (!at(buf, i, SVC_KEY)) return false;
  const svcS = i + SVC_KEY.length;
  const svcE = plainString(buf, svcS, end);
  if (svcE < 0) return false;
  out.idS = idS;
  out.idE = idE;
  out.svc = internedText(buf, svcS, svcE);
  return true;
}

/** Recent short strings (service names) with their bytes: a service is made into a string once, not per line. */
const interned: { bytes: Uint8Array; text: string }[] = [];

/** latin1Text for short, often repeated ASCII (service names): the same string object each time. */
export function internedText(buf: Uint8Array, s: number, e: number): string {
  const n = e - s;
  if (n > 32) return latin1Text(buf, s, e);
  next: for (const x of interned) {
    const b = x.bytes;
    if (b.length !== n) continue;
    for (let k = 0; k < n; k++) if (b[k] !== buf[s + k]) continue next;
    return x.text;
  }
  const text = latin1Text(buf, s, e);
  if (interned.length >= 16) interned.shift();
  interned.push({ bytes: buf.slice(s, e), text });
  return text;
}

let viewOf: Uint8Array | undefined;
let view: Buffer = Buffer.alloc(0);

/**
 * buf[s, e) as a string of one char per byte (ASCII and Latin-1 text), made
 * natively through a Buffer view of the chunk: several times faster than
 * adding up chars, and a flat string (a rope makes every later use pay).
 */
export function latin1Text(buf: Uint8Array, s: number, e: number): string {
  if (buf !== viewOf) {
    view = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    viewOf = buf;
  }
  return view.toString("latin1", s, e);
}
