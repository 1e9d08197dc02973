/**
 * Event ids as numbers. Real ids are 32 lowercase hex characters (the first
 * 16 bytes of a SHA-256), so they fit four 32-bit words: no string per event
 * on the hot path, and an open-addressing table instead of a Map of strings.
 * Anything else (another length, upper case, escapes) keeps a string key and
 * goes through a Map; see `hexWords`.
 */

/** Lowercase hex digit values; 16 marks anything else. */
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

/** The id text of four words (for ties against string ids, and for messages). */
export function wordsHex(words: Uint32Array, at: number): string {
  let out = "";
  for (let w = 0; w < 4; w++) out += words[at + w]!.toString(16).padStart(8, "0");
  return out;
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

const EMPTY = -1;

/**
 * Hex ids -> the dump collector's entry numbers, by open addressing. (The
 * restore, verify and stats index, src/restore/idindex.ts, keeps a per-id
 * record in its slots instead; both parse ids with hexWords/hexTextWords.) The words of each entry are
 * kept once, here, indexed by entry number: the table's slots hold only
 * entry numbers (4 bytes a slot), and the collector reads the words back to
 * break ts ties.
 */
export class EntryIndex {
  /** Four words per entry number; entries whose ids are strings leave theirs zero. */
  words = new Uint32Array(4 * 1024);
  private slots = new Int32Array(1 << 12).fill(EMPTY);
  private mask = (1 << 12) - 1;
  private size = 0;

  private slotOf(w: Uint32Array, at: number): number {
    // Ids are hash prefixes already; mixing keeps crafted ids from clustering cheaply.
    let h = Math.imul(w[at]! ^ Math.imul(w[at + 1]!, 0x9e3779b1), 0x85ebca6b) ^ w[at + 2]! ^ Math.imul(w[at + 3]!, 0xc2b2ae35);
    h ^= h >>> 15;
    let i = h & this.mask;
    const { slots, words } = this;
    for (;;) {
      const e = slots[i]!;
      if (e === EMPTY) return i;
      const k = e * 4;
      if (words[k] === w[at] && words[k + 1] === w[at + 1] && words[k + 2] === w[at + 2] && words[k + 3] === w[at + 3]) return i;
      i = (i + 1) & this.mask;
    }
  }

  /** The entry holding this id, or -1. */
  find(w: Uint32Array, at: number): number {
    return this.slots[this.slotOf(w, at)]!;
  }

  /** Records an id that `find` did not find as `entry`. */
  add(w: Uint32Array, at: number, entry: number): void {
    if (entry * 4 + 4 > this.words.length) {
      const next = new Uint32Array(Math.max(this.words.length * 2, entry * 4 + 4));
      next.set(this.words);
      this.words = next;
    }
    const k = entry * 4;
    this.words[k] = w[at]!;
    this.words[k + 1] = w[at + 1]!;
    this.words[k + 2] = w[at + 2]!;
    this.words[k + 3] = w[at + 3]!;
    if ((this.size + 1) * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    this.slots[this.slotOf(w, at)] = entry;
    this.size++;
  }

  private rehash(capacity: number): void {
    const old = this.slots;
    this.slots = new Int32Array(capacity).fill(EMPTY);
    this.mask = capacity - 1;
    for (let i = 0; i < old.length; i++) {
      const e = old[i]!;
      if (e !== EMPTY) this.slots[this.slotOf(this.words, e * 4)] = e;
    }
  }
}
