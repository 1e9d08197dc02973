/** A peer's ledger: events sorted by ts, laid out so pages are served with few copies. */
import type { SimEvent } from "./generate.ts";

/** One ledger entry. Generated SimEvents are stored as they are (shared between peers, not copied). */
export type StoredEvent = {
  id: string;
  ts: bigint;
  svc: string;
  /** Bytes as served (the exact text received or generated). */
  raw: string;
  actor: string;
  target: string;
};

export type Ledger = {
  readonly size: number;
  has(id: string): boolean;
  get(id: string): StoredEvent | undefined;
  /** All events sorted by ts (ties in storage order). */
  list(): StoredEvent[];
  /** Adds events (skipping known IDs); returns how many were new. */
  add(events: readonly SimEvent[]): number;
};

const encoder = new TextEncoder();

/** UTF-8 bytes of each stored event, computed once and shared by every peer holding the event. */
const eventBytes = new WeakMap<StoredEvent, Uint8Array>();
export function bytesOf(e: StoredEvent): Uint8Array {
  let b = eventBytes.get(e);
  if (b === undefined) {
    b = encoder.encode(e.raw);
    eventBytes.set(e, b);
  }
  return b;
}

export function lowerBound(ts: bigint[], x: bigint, strict: boolean): number {
  // first index with ts > x (strict) or ts >= x
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (strict ? ts[mid]! <= x : ts[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A ledger's events, ids and tie groups laid out for serving pages cheaply. */
export type Joined = {
  /** Event bytes joined by commas; event i is [start[i], end[i]). */
  bytes: Uint8Array;
  start: Float64Array;
  end: Float64Array;
  /** Ids back to back; id i is [idStart[i], idStart[i + 1]). */
  ids: Uint8Array;
  idStart: Float64Array;
  /** One past the last index of the tie group (same ts) event i is in. */
  groupEnd: Int32Array;
};

export class SortedLedger implements Ledger {
  ts: bigint[] = [];
  ev: StoredEvent[] = [];
  readonly byId = new Map<string, StoredEvent>();
  private joined?: Joined;

  /**
   * All events' bytes joined by commas, with where each starts and ends: a
   * run of consecutive events is then one copy (commas included), so serving
   * costs the simulator little and benchmarks measure the client.
   */
  blob(): Joined {
    if (this.joined) return this.joined;
    const parts = this.ev.map(bytesOf);
    const start = new Float64Array(parts.length);
    const end = new Float64Array(parts.length);
    let size = 0;
    for (let i = 0; i < parts.length; i++) {
      start[i] = size;
      end[i] = size + parts[i]!.length;
      size = end[i]! + 1;
    }
    const bytes = new Uint8Array(size).fill(0x2c);
    for (let i = 0; i < parts.length; i++) bytes.set(parts[i]!, start[i]!);
    // The ids back to back too (for the body signature), and where each tie group ends.
    const idParts = this.ev.map((e) => encoder.encode(e.id));
    const idStart = new Float64Array(idParts.length + 1);
    for (let i = 0; i < idParts.length; i++) idStart[i + 1] = idStart[i]! + idParts[i]!.length;
    const ids = new Uint8Array(idStart[idParts.length]!);
    for (let i = 0; i < idParts.length; i++) ids.set(idParts[i]!, idStart[i]!);
    const groupEnd = new Int32Array(this.ev.length);
    for (let i = this.ev.length - 1; i >= 0; i--) {
      groupEnd[i] = i + 1 < this.ev.length && this.ev[i + 1]!.ts === this.ev[i]!.ts ? groupEnd[i + 1]! : i + 1;
    }
    this.joined = { bytes, start, end, ids, idStart, groupEnd };
    return this.joined;
  }

  get size(): number {
    return this.ev.length;
  }
  has(id: string): boolean {
    return this.byId.has(id);
  }
  get(id: string): StoredEvent | undefined {
    return this.byId.get(id);
  }
  list(): StoredEvent[] {
    return this.ev.slice();
  }
  add(events: readonly SimEvent[]): number {
    // SimEvents are stored as they are (not copied): peers share them and their byte cache.
    return this.insert(events);
  }
  /** Merges new events (stable: existing before new among equal ts). */
  insert(events: readonly StoredEvent[]): number {
    const fresh: StoredEvent[] = [];
    for (const e of events) {
      if (this.byId.has(e.id)) continue;
      this.byId.set(e.id, e);
      fresh.push(e);
    }
    if (fresh.length === 0) return 0;
    this.joined = undefined;
    let sorted = true;
    for (let i = 1; i < fresh.length; i++)
      if (fresh[i - 1]!.ts > fresh[i]!.ts) {
        sorted = false;
        break;
      }
    if (!sorted) fresh.sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : 0));
    if (this.ev.length === 0 || this.ev[this.ev.length - 1]!.ts <= fresh[0]!.ts) {
      for (const e of fresh) {
        this.ev.push(e);
        this.ts.push(e.ts);
      }
      return fresh.length;
    }
    const merged: StoredEvent[] = new Array(this.ev.length + fresh.length);
    let i = 0;
    let j = 0;
    let k = 0;
    while (i < this.ev.length && j < fresh.length) merged[k++] = this.ev[i]!.ts <= fresh[j]!.ts ? this.ev[i++]! : fresh[j++]!;
    while (i < this.ev.length) merged[k++] = this.ev[i++]!;
    while (j < fresh.length) merged[k++] = fresh[j++]!;
    this.ev = merged;
    this.ts = merged.map((e) => e.ts);
    return fresh.length;
  }
}
