/**
 * The dedup index of a restore: event ID -> where its chosen copy is (input,
 * line) and whether that copy is signed and selected by the filters.
 *
 * Real IDs are 32 lowercase hex digits: those live in an open-addressing
 * table of 24 bytes a slot (the 128-bit ID, the place, the flags), several
 * times smaller than a Set of strings, so that a backup of tens of millions
 * of events fits in memory. Any other ID (peers trust what they are sent)
 * goes to an ordinary Map.
 */

import { hexTextWords } from "./idtable.ts";

const WORDS = 6; // id (4 words), meta, line
const META_SIGNED = 1 << 16;
const META_SELECTED = 1 << 17;
export const MAX_INPUTS = 0xfffe;

export type IdEntry = { input: number; line: number; signed: boolean; selected: boolean };

export class IdIndex {
  #table: Uint32Array;
  #mask: number;
  #used = 0;
  readonly #other = new Map<string, number>();
  readonly #w = new Uint32Array(4);
  /** Slot of the last hex lookup: >= 0 found, ~slot where it would go. */
  #slot = 0;
  /** The last lookup was of a non-hex ID (the Map). */
  #inMap = false;
  #key = "";

  constructor(initialSlots = 1 << 16) {
    let cap = 1024;
    while (cap < initialSlots) cap *= 2;
    this.#table = new Uint32Array(cap * WORDS);
    this.#mask = cap - 1;
  }

  get size(): number {
    return this.#used + this.#other.size;
  }

  /** Approximate bytes held (for --verbose). */
  get bytes(): number {
    return this.#table.byteLength + this.#other.size * 80;
  }

  /** Parses a 32-char lowercase hex ID into #w; false for anything else. */
  #parse(id: string): boolean {
    return hexTextWords(id, this.#w, 0);
  }

  #hash(): number {
    const w = this.#w;
    let h = Math.imul(w[0]! ^ Math.imul(w[1]!, 0x85ebca6b) ^ Math.imul(w[2]!, 0xc2b2ae35) ^ w[3]!, 0x9e3779b1);
    h ^= h >>> 16;
    return h >>> 0;
  }

  /** Slot holding #w, or the empty slot where it would go (as ~slot). */
  #probe(table: Uint32Array, mask: number): number {
    const w = this.#w;
    let s = this.#hash() & mask;
    for (;;) {
      const o = s * WORDS;
      if (table[o + 4] === 0) return ~s;
      if (table[o] === w[0] && table[o + 1] === w[1] && table[o + 2] === w[2] && table[o + 3] === w[3]) return s;
      s = (s + 1) & mask;
    }
  }

  /** Looks `id` up; the entry when present. Remembers it for a following add/replace. */
  get(id: string): IdEntry | undefined {
    if (this.#parse(id)) {
      const s = this.#probe(this.#table, this.#mask);
      this.#key = id;
      this.#inMap = false;
      this.#slot = s;
      if (s < 0) return undefined;
      const o = s * WORDS;
      return unpack(this.#table[o + 4]!, this.#table[o + 5]!);
    }
    this.#inMap = true;
    this.#key = id;
    const v = this.#other.get(id);
    return v === undefined ? undefined : unpack(Math.floor(v / 2 ** 32), v % 2 ** 32);
  }

  /** Stores `e` for the ID of the last `get` (which must be that ID). */
  set(id: string, e: IdEntry): void {
    if (id !== this.#key) this.get(id);
    if (e.input < 0 || e.input > MAX_INPUTS) throw new RangeError(`too many inputs (at most ${MAX_INPUTS})`);
    if (e.line < 0 || e.line > 0xffffffff) throw new RangeError("line number out of range");
    const meta = (e.input + 1) | (e.signed ? META_SIGNED : 0) | (e.selected ? META_SELECTED : 0);
    if (this.#inMap) {
      this.#other.set(id, meta * 2 ** 32 + e.line);
      return;
    }
    let s = this.#slot;
    if (s < 0) {
      if ((this.#used + 1) * 10 > (this.#mask + 1) * 7) {
        this.#grow();
        s = this.#probe(this.#table, this.#mask);
      }
      s = ~s;
      this.#used++;
      const o = s * WORDS;
      this.#table.set(this.#w, o);
    }
    const o = s * WORDS;
    this.#table[o + 4] = meta;
    this.#table[o + 5] = e.line;
    this.#slot = s;
  }

  #grow(): void {
    const old = this.#table;
    const cap = (this.#mask + 1) * 2;
    const table = new Uint32Array(cap * WORDS);
    const mask = cap - 1;
    const w = this.#w;
    const saved = Uint32Array.from(w);
    for (let o = 0; o < old.length; o += WORDS) {
      if (old[o + 4] === 0) continue;
      w[0] = old[o]!;
      w[1] = old[o + 1]!;
      w[2] = old[o + 2]!;
      w[3] = old[o + 3]!;
      const s = ~this.#probe(table, mask);
      table.set(old.subarray(o, o + WORDS), s * WORDS);
    }
    w.set(saved);
    this.#table = table;
    this.#mask = mask;
  }
}

function unpack(meta: number, line: number): IdEntry {
  return {
    input: (meta & 0xffff) - 1,
    line,
    signed: (meta & META_SIGNED) !== 0,
    selected: (meta & META_SELECTED) !== 0,
  };
}

/** A growable bit per line number of one input: "send this line". */
export class LineBits {
  #bits = new Uint8Array(1024);
  #count = 0;

  get count(): number {
    return this.#count;
  }

  set(line: number, on: boolean): void {
    const byte = line >>> 3;
    if (byte >= this.#bits.length) {
      if (!on) return;
      let size = this.#bits.length * 2;
      while (size <= byte) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.#bits);
      this.#bits = next;
    }
    const mask = 1 << (line & 7);
    const was = (this.#bits[byte]! & mask) !== 0;
    if (was === on) return;
    if (on) this.#bits[byte]! |= mask;
    else this.#bits[byte]! &= ~mask;
    this.#count += on ? 1 : -1;
  }

  has(line: number): boolean {
    const byte = line >>> 3;
    return byte < this.#bits.length && (this.#bits[byte]! & (1 << (line & 7))) !== 0;
  }
}
