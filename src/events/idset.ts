/**
 * The ids already written, to catch one id under two different timestamps
 * (copies with the same ts meet in the merge; these do not): the id table
 * (events/idtable.ts) with no payload. It stops growing at a byte limit:
 * past it, checking stops (the caller says so once).
 */
import { IdTable } from "./idtable.ts";
import type { Head } from "./order.ts";

export class IdSet {
  private readonly table: IdTable;
  private readonly w = new Uint32Array(4);

  constructor(limitBytes: number) {
    this.table = new IdTable({ expected: 1 << 15, limitBytes });
  }

  /** Ids held (when `full`: when it stopped). */
  get size(): number {
    return this.table.size;
  }

  /** Set when the limit was reached: `add` then always answers true. */
  get full(): boolean {
    return this.table.full;
  }

  /** Bytes held (the table and an estimate for non-hex ids). */
  get bytes(): number {
    return this.table.bytes;
  }

  /** Adds the event's id; false when it was there already. */
  add(h: Head): boolean {
    const t = this.table;
    if (t.full) return true;
    if (!h.hex) return t.findOther(h.key) < 0 ? (t.addOther(h.key), true) : false;
    const w = this.w;
    w[0] = h.w0;
    w[1] = h.w1;
    w[2] = h.w2;
    w[3] = h.w3;
    if (t.find(w, 0) >= 0) return false;
    t.add();
    return true;
  }
}

