/**
 * The dedup index of a restore: event ID -> where its chosen copy is (input,
 * line) and whether that copy is signed and selected by the filters.
 *
 * Real IDs are 32 lowercase hex digits: those live in the id table
 * (events/idtable.ts) at 24 bytes an entry (the 128-bit ID, the place, the
 * flags) and a 4-byte slot, several times smaller than a Set of strings, so
 * that a backup of tens of millions of events fits in memory. Any other ID
 * (peers trust what they are sent) goes to the table's Map.
 */

import { IdTable } from "./idtable.ts";

const META_SIGNED = 1 << 16;
const META_SELECTED = 1 << 17;
export const MAX_INPUTS = 0xfffe;

export type IdEntry = { input: number; line: number; signed: boolean; selected: boolean };

/** The id table with two payload words an entry: meta (input + 1, flags) and line. */
export class IdIndex {
  readonly #table: IdTable;
  /** The id of the last `get` (undefined after a `getAt`), and its entry (-1: not there yet). */
  #key: string | undefined = "";
  #entry = -1;

  /** `expected`: the ids the caller foresees (restore: from its inputs' size), room made at once. */
  constructor(expected = 1 << 15) {
    this.#table = new IdTable({ payload: 2, expected });
  }

  get size(): number {
    return this.#table.size;
  }

  /** Approximate bytes held (for --verbose). */
  get bytes(): number {
    return this.#table.bytes;
  }

  /** Looks `id` up; the entry when present. Remembers it for a following set. */
  get(id: string): IdEntry | undefined {
    this.#key = id;
    return this.#found(this.#table.findText(id));
  }

  /** `get` for the id whose text is the ASCII bytes b[s, e) (a hex id makes no string). */
  getAt(b: Uint8Array, s: number, e: number): IdEntry | undefined {
    this.#key = undefined;
    return this.#found(this.#table.findBytes(b, s, e));
  }

  /** Remembers entry n (-1: not there) for a following set, and unpacks it. */
  #found(n: number): IdEntry | undefined {
    this.#entry = n;
    if (n < 0) return undefined;
    const r = this.#table.records;
    return unpack(r[n * 6 + 4]!, r[n * 6 + 5]!);
  }

  /** Stores `e` for `id` (looked up again unless it was the last `get`). */
  set(id: string, e: IdEntry): void {
    if (id !== this.#key) this.get(id);
    this.setFound(e);
  }

  /** Stores `e` for the id of the last `get` or `getAt`. */
  setFound(e: IdEntry): void {
    if (e.input < 0 || e.input > MAX_INPUTS) throw new RangeError(`too many inputs (at most ${MAX_INPUTS})`);
    if (e.line < 0 || e.line > 0xffffffff) throw new RangeError("line number out of range");
    const meta = (e.input + 1) | (e.signed ? META_SIGNED : 0) | (e.selected ? META_SELECTED : 0);
    let n = this.#entry;
    if (n < 0) this.#entry = n = this.#table.addText();
    const r = this.#table.records;
    r[n * 6 + 4] = meta;
    r[n * 6 + 5] = e.line;
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
