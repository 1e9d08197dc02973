/**
 * The ids already written, to catch one id under two different timestamps
 * (copies with the same ts meet in the merge; these do not). Ids of 32
 * lowercase hex characters (all honest ones) take 16 bytes in an
 * open-addressing table, others a Set entry. The table stops growing at a
 * byte limit: past it, checking stops (the caller says so once).
 */
import type { Head } from "./order.ts";

/** What a Set entry for a non-hex id costs, about. */
const OTHER_BYTES = 96;

export class IdSet {
  /** Four words per slot; all four zero = empty (the all-zero id itself is `zero`). */
  private words: Uint32Array;
  private mask: number;
  private zero = false;
  private readonly others = new Set<string>();
  private w0 = 0;
  private w1 = 0;
  private w2 = 0;
  private w3 = 0;
  size = 0;
  /** Set when the limit was reached: `add` then always answers true. */
  full = false;

  constructor(private readonly limitBytes: number) {
    const cap = 1 << 16;
    this.words = new Uint32Array(cap * 4);
    this.mask = cap - 1;
  }

  /** Bytes held (table and an estimate for the Set). */
  get bytes(): number {
    return this.words.byteLength + this.others.size * OTHER_BYTES;
  }

  /** Adds the event's id; false when it was there already. */
  add(h: Head): boolean {
    if (this.full) return true;
    if (!h.hex) {
      const key = h.key;
      if (this.others.has(key)) return false;
      if (this.bytes + OTHER_BYTES > this.limitBytes) return this.stop();
      this.others.add(key);
      return true;
    }
    this.w0 = h.w0;
    this.w1 = h.w1;
    this.w2 = h.w2;
    this.w3 = h.w3;
    if ((this.w0 | this.w1 | this.w2 | this.w3) === 0) {
      if (this.zero) return false;
      this.zero = true;
      return true;
    }
    let i = this.slot();
    if (this.words[i * 4]! | this.words[i * 4 + 1]! | this.words[i * 4 + 2]! | this.words[i * 4 + 3]!) return false;
    if ((this.size + 1) * 4 > (this.mask + 1) * 3) {
      if (this.bytes * 2 > this.limitBytes) return this.stop();
      this.grow();
      i = this.slot();
    }
    this.put(i);
    return true;
  }

  private stop(): true {
    this.full = true;
    this.words = new Uint32Array(0);
    this.others.clear();
    return true;
  }

  /** The slot holding the current words, or the empty slot where they go. */
  private slot(): number {
    const { w0, w1, w2, w3, words, mask } = this;
    // Honest ids are hash prefixes; the mixing keeps crafted ones from piling up cheaply.
    let h = Math.imul(w0 ^ Math.imul(w1, 0x9e3779b1), 0x85ebca6b) ^ w2 ^ Math.imul(w3, 0xc2b2ae35);
    h ^= h >>> 15;
    let i = h & mask;
    for (;;) {
      const k = i * 4;
      const a = words[k]!;
      const b = words[k + 1]!;
      const c = words[k + 2]!;
      const d = words[k + 3]!;
      if ((a | b | c | d) === 0 || (a === w0 && b === w1 && c === w2 && d === w3)) return i;
      i = (i + 1) & mask;
    }
  }

  private put(i: number): void {
    const k = i * 4;
    this.words[k] = this.w0;
    this.words[k + 1] = this.w1;
    this.words[k + 2] = this.w2;
    this.words[k + 3] = this.w3;
    this.size++;
  }

  private grow(): void {
    const old = this.words;
    const cap = (this.mask + 1) * 2;
    this.words = new Uint32Array(cap * 4);
    this.mask = cap - 1;
    this.size = 0;
    const { w0, w1, w2, w3 } = this;
    for (let k = 0; k < old.length; k += 4) {
      if ((old[k]! | old[k + 1]! | old[k + 2]! | old[k + 3]!) === 0) continue;
      this.w0 = old[k]!;
      this.w1 = old[k + 1]!;
      this.w2 = old[k + 2]!;
      this.w3 = old[k + 3]!;
      this.put(this.slot());
    }
    this.w0 = w0;
    this.w1 = w1;
    this.w2 = w2;
    this.w3 = w3;
  }
}
