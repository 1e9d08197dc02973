import { EventFlag, compactJson } from "../events/scan.ts";
import type { PageBatch } from "./messages.ts";

const CHUNK = 16 * 1024 * 1024;
/** Index value of ids that an earlier backup already holds (`--ids-from`). */
const EXISTING = -1;

export type CollectStats = {
  /** Events received from all peers. */
  fetched: number;
  /** Distinct events kept. */
  unique: number;
  /** Copies of an event already kept. */
  duplicates: number;
  /** Kept copies replaced by a signed copy of the same event. */
  replaced: number;
  /** Events skipped because `--ids-from` already holds them. */
  existing: number;
  /** Bytes of the kept events (without line breaks). */
  bytes: number;
};

/**
 * Keeps one copy of every event, by id, as the exact bytes a peer served.
 * Kept bytes are copied out of the page buffers into an arena so that a page
 * is freed as soon as it is read: memory follows the unique events, not the
 * (overlapping) pages.
 */
export class Collector {
  readonly stats: CollectStats = { fetched: 0, unique: 0, duplicates: 0, replaced: 0, existing: 0, bytes: 0 };
  private readonly index = new Map<string, number>();
  private keys: string[] = [];
  private tsHi = new Float64Array(1024);
  private tsLo = new Float64Array(1024);
  private chunkOf = new Uint32Array(1024);
  private offsetOf = new Uint32Array(1024);
  private lengthOf = new Uint32Array(1024);
  private signed = new Uint8Array(1024);
  private readonly chunks: Uint8Array[] = [];
  private used = CHUNK;

  /** Ids to leave out because an earlier backup has them. */
  skipExisting(keys: Iterable<string>): void {
    for (const k of keys) if (!this.index.has(k)) this.index.set(k, EXISTING);
  }

  add(batch: PageBatch): void {
    const keys = batch.ids.split("\n");
    const { bytes, start, end, flags, tsHi, tsLo } = batch;
    const s = this.stats;
    for (let i = 0; i < batch.count; i++) {
      s.fetched++;
      const key = keys[i]!;
      const at = this.index.get(key);
      const isSigned = (flags[i]! & EventFlag.signed) !== 0;
      if (at === undefined) {
        const n = this.keys.length;
        if (n === this.tsHi.length) this.grow();
        this.keys.push(key);
        this.index.set(key, n);
        this.tsHi[n] = tsHi[i]!;
        this.tsLo[n] = tsLo[i]!;
        this.signed[n] = isSigned ? 1 : 0;
        this.store(n, bytes, start[i]!, end[i]!, flags[i]!);
        s.unique++;
      } else if (at === EXISTING) {
        s.existing++;
      } else {
        s.duplicates++;
        // Two copies of one event can differ in bytes (a peer that dropped `sig`): keep the signed one.
        if (isSigned && this.signed[at] === 0) {
          s.bytes -= this.lengthOf[at]!;
          this.signed[at] = 1;
          this.store(at, bytes, start[i]!, end[i]!, flags[i]!);
          s.replaced++;
        }
      }
    }
  }

  private store(n: number, page: Uint8Array, s: number, e: number, flags: number): void {
    const raw = flags & EventFlag.multiline ? compactJson(page.subarray(s, e)) : page.subarray(s, e);
    const len = raw.length;
    if (this.used + len > CHUNK || this.chunks.length === 0) {
      this.chunks.push(new Uint8Array(Math.max(CHUNK, len)));
      this.used = 0;
    }
    const c = this.chunks.length - 1;
    this.chunks[c]!.set(raw, this.used);
    this.chunkOf[n] = c;
    this.offsetOf[n] = this.used;
    this.lengthOf[n] = len;
    this.used += len;
    this.stats.bytes += len;
  }

  private grow(): void {
    const size = this.tsHi.length * 2;
    const g = <T extends Float64Array | Uint32Array | Uint8Array>(a: T): T => {
      const next = new (a.constructor as new (n: number) => T)(size);
      next.set(a);
      return next;
    };
    this.tsHi = g(this.tsHi);
    this.tsLo = g(this.tsLo);
    this.chunkOf = g(this.chunkOf);
    this.offsetOf = g(this.offsetOf);
    this.lengthOf = g(this.lengthOf);
    this.signed = g(this.signed);
  }

  /** Event numbers ordered by (ts, id): two dumps of the same events are byte-identical. */
  sortedOrder(): Uint32Array {
    const n = this.keys.length;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const { tsHi, tsLo, keys } = this;
    order.sort((a, b) => tsHi[a]! - tsHi[b]! || tsLo[a]! - tsLo[b]! || (keys[a]! < keys[b]! ? -1 : 1));
    return order;
  }

  /**
   * The kept events as JSON Lines, in `order`, in buffers of about
   * `chunkSize` bytes (each buffer is fresh: a sink may hold on to it).
   */
  *lines(order: Uint32Array, chunkSize = 1 << 20): Generator<Uint8Array> {
    let out = new Uint8Array(chunkSize);
    let used = 0;
    for (let k = 0; k < order.length; k++) {
      const n = order[k]!;
      const len = this.lengthOf[n]!;
      if (used + len + 1 > out.length) {
        if (used > 0) yield out.subarray(0, used);
        out = new Uint8Array(Math.max(chunkSize, len + 1));
        used = 0;
      }
      const off = this.offsetOf[n]!;
      out.set(this.chunks[this.chunkOf[n]!]!.subarray(off, off + len), used);
      used += len;
      out[used++] = 0x0a;
    }
    if (used > 0) yield out.subarray(0, used);
  }
}
