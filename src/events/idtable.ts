/**
 * Event ids as numbers, and the one table of them. Real ids are 32
 * lowercase hex characters (the first 16 bytes of a SHA-256), so they fit
 * four 32-bit words: no string per event on the hot path, and an
 * open-addressing table instead of a Map of strings. Anything else (another
 * length, upper case, escapes) keeps a string key and goes through a Map.
 */

import { latin1Text } from "./linecheck.ts";

/** Lowercase hex digit values; 16 marks anything else (an upper-case id keeps its string). */
const HEX = new Uint8Array(256).fill(16);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX[0x61 + c] = 10 + c;

/** Parses 32 lowercase hex bytes at `s` into out[at..at+3]; false when they are not that. */
export function hexWords(b: Uint8Array, s: number, e: number, out: Uint32Array, at: number): boolean {
  if (e - s !== 32) return false;
  let bad = 0;
  for (let w = 0; w < 4; w++) {
    let v = 0;
    const base = s + w * 8;
    for (let k = 0; k < 8; k++) {
      const d = HEX[b[base + k]!]!;
      bad |= d;
      v = (v << 4) | (d & 15);
    }
    out[at + w] = v >>> 0;
  }
  // Any non-hex byte set bit 4 (16) in `bad`.
  return (bad & 16) === 0;
}

/** `hexWords` for an id already decoded to a string. */
export function hexTextWords(id: string, out: Uint32Array, at: number): boolean {
  if (id.length !== 32) return false;
  let bad = 0;
  for (let w = 0; w < 4; w++) {
    let v = 0;
    for (let k = 0; k < 8; k++) {
      const c = id.charCodeAt(w * 8 + k);
      const d = c < 256 ? HEX[c]! : 16;
      bad |= d;
      v = (v << 4) | (d & 15);
    }
    out[at + w] = v >>> 0;
  }
  return (bad & 16) === 0;
}

/** Parses a 32-character lowercase hex string; undefined when it is not one. */
export function hexStringWords(id: string): Uint32Array | undefined {
  const out = new Uint32Array(4);
  return hexTextWords(id, out, 0) ? out : undefined;
}

/** The id text of four words (for ties against string ids, and for messages). */
export function wordsHex(words: Uint32Array, at: number): string {
  let out = "";
  for (let w = 0; w < 4; w++) out += words[at + w]!.toString(16).padStart(8, "0");
  return out;
}

const EMPTY = -1;
/** What a Map entry for a non-hex id costs, about. */
const OTHER_BYTES = 96;

export type IdTableOptions = {
  /** Words kept per entry after the id's four (default none). */
  payload?: number;
  /** Ids expected: room made at the start (default 2048). */
  expected?: number;
  /**
   * Bytes the table may hold: an add that would pass them makes it `full`
   * (it then drops what it holds and every add answers FULL).
   */
  limitBytes?: number;
};

/** What `add` answers once the table is full. */
export const FULL = -2;

/**
 * Ids -> entry numbers (0, 1, ... in the order ids are added), by open
 * addressing over slots that hold only an entry number (4 bytes a slot); each
 * entry's record (the id's four words, then `payload` words for the caller)
 * sits in `records`, `stride` words an entry. Other ids map to their entry
 * through a Map; their record's id words stay zero.
 *
 * `add`/`addText`/`addOther` record the id the last `find`/`findText`/
 * `findOther` did not find: the probe is not repeated.
 */
export class IdTable {
  readonly stride: number;
  /** `stride` words per entry: the id's four words, then the payload. */
  records: Uint32Array;
  /** Ids held (hex and others): also the next entry number. */
  size = 0;
  /** Set once an add would pass `limitBytes`. */
  full = false;
  private slots: Int32Array;
  private mask: number;
  private readonly others = new Map<string, number>();
  private readonly limitBytes: number;
  /** The id of the last lookup: its words (for findText) and the slot it is in or would go to. */
  private readonly w = new Uint32Array(4);
  private src: Uint32Array = this.w;
  private srcAt = 0;
  private slot = 0;

  constructor(opts: IdTableOptions = {}) {
    this.stride = 4 + (opts.payload ?? 0);
    this.limitBytes = opts.limitBytes ?? Infinity;
    // Records are dense (entry numbers): exactly the expected count. Slots: a power of two, at most half full.
    const entries = Math.max(1024, Math.ceil(opts.expected ?? 2048));
    let slots = 2048;
    while (slots < entries * 2) slots *= 2;
    this.records = new Uint32Array(entries * this.stride);
    this.slots = new Int32Array(slots).fill(EMPTY);
    this.mask = slots - 1;
  }

  /** Bytes held (the arrays, and an estimate for the Map). */
  get bytes(): number {
    return this.records.byteLength + this.slots.byteLength + this.others.size * OTHER_BYTES;
  }

  /** The slot holding the id at w[at..at+3], or the empty slot where it goes. */
  private slotOf(w: Uint32Array, at: number): number {
    // Ids are hash prefixes already; mixing keeps crafted ids from clustering cheaply.
    let h = Math.imul(w[at]! ^ Math.imul(w[at + 1]!, 0x9e3779b1), 0x85ebca6b) ^ w[at + 2]! ^ Math.imul(w[at + 3]!, 0xc2b2ae35);
    h ^= h >>> 15;
    const { slots, records, stride, mask } = this;
    let i = h & mask;
    for (;;) {
      const e = slots[i]!;
      if (e === EMPTY) return i;
      const k = e * stride;
      if (records[k] === w[at] && records[k + 1] === w[at + 1] && records[k + 2] === w[at + 2] && records[k + 3] === w[at + 3]) return i;
      i = (i + 1) & mask;
    }
  }

  /** The entry of the hex id at w[at..at+3], or -1. */
  find(w: Uint32Array, at: number): number {
    const i = this.slotOf(w, at);
    this.src = w;
    this.srcAt = at;
    this.slot = i;
    return this.slots[i]!;
  }

  /** Adds the hex id the last `find` did not find (w, at as given to it: unchanged); its entry, or FULL. */
  add(): number {
    if (this.full) return FULL;
    const n = this.size;
    if ((n + 1) * 2 > this.slots.length) {
      if (!this.room(this.records.length, this.slots.length * 2)) return FULL;
      this.rehash(this.slots.length * 2);
      this.slot = this.slotOf(this.src, this.srcAt);
    }
    const k = this.entry();
    if (k < 0) return FULL;
    const { records, src, srcAt } = this;
    records[k] = src[srcAt]!;
    records[k + 1] = src[srcAt + 1]!;
    records[k + 2] = src[srcAt + 2]!;
    records[k + 3] = src[srcAt + 3]!;
    this.slots[this.slot] = n;
    return n;
  }

  /** The entry of a non-hex id (its dedup key, not parsed), or -1. */
  findOther(key: string): number {
    return this.others.get(key) ?? -1;
  }

  /** Adds a non-hex id that `findOther` did not find; its entry, or FULL. */
  addOther(key: string): number {
    if (this.full) return FULL;
    if (this.bytes + OTHER_BYTES > this.limitBytes) return this.stop();
    const n = this.size;
    if (this.entry() < 0) return FULL;
    this.others.set(key, n);
    return n;
  }

  /** The last `findText` was of a hex id. */
  private textHex = false;
  private text = "";

  /** The entry of an id given as text (hex ids by their words), or -1. */
  findText(id: string): number {
    this.text = id;
    this.textHex = hexTextWords(id, this.w, 0);
    return this.textHex ? this.find(this.w, 0) : this.findOther(id);
  }

  /** `findText` for the id whose text is the ASCII bytes b[s, e): a hex id makes no string. */
  findBytes(b: Uint8Array, s: number, e: number): number {
    if (!hexWords(b, s, e, this.w, 0)) return this.findText(latin1Text(b, s, e));
    this.textHex = true;
    return this.find(this.w, 0);
  }

  /** Adds the id the last `findText` or `findBytes` did not find; its entry, or FULL. */
  addText(): number {
    return this.textHex ? this.add() : this.addOther(this.text);
  }

  /** Numbers a new entry (growing `records`); its first word. */
  private entry(): number {
    const k = this.size++ * this.stride;
    if (k + this.stride > this.records.length) {
      // Half again, not twice: a copy more now and then, but the old and new records held at once stay smaller.
      const size = Math.max(Math.ceil((this.records.length * 1.5) / this.stride) * this.stride, k + this.stride);
      if (!this.room(size, this.slots.length)) {
        this.size--;
        this.stop();
        return -1;
      }
      const next = new Uint32Array(size);
      next.set(this.records);
      this.records = next;
    }
    return k;
  }

  /** Would arrays of these lengths fit the limit? When not, the table is full. */
  private room(recordWords: number, slots: number): boolean {
    if (this.limitBytes === Infinity) return true;
    if (recordWords * 4 + slots * 4 + this.others.size * OTHER_BYTES <= this.limitBytes) return true;
    this.stop();
    return false;
  }

  private stop(): typeof FULL {
    this.full = true;
    this.records = new Uint32Array(0);
    this.slots = new Int32Array(0);
    this.others.clear();
    return FULL;
  }

  private rehash(capacity: number): void {
    this.slots = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    const { records, stride, others } = this;
    // Entries of other ids have no slot: skip them.
    const otherEntry = new Uint8Array(others.size > 0 ? this.size : 0);
    for (const e of others.values()) otherEntry[e] = 1;
    for (let e = 0; e < this.size; e++) {
      if (others.size > 0 && otherEntry[e]) continue;
      this.slots[this.slotOf(records, e * stride)] = e;
    }
  }
}
