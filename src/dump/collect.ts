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
  private readonly chunks: Buffer[] = [];
  private used = CHUNK;

  /** Ids to leave out because an earlier backup has them. */
  skipExisting(keys: Iterable<string>): void {
    for (const k of keys) if (!this.index.has(k)) this.index.set(k, EXISTING);
  }

  add(batch: PageBatch): void {
    const keys = batch.ids.split("\n");
    const { start, end, flags, tsHi, tsLo } = batch;
    const page = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.length);
    const s = this.stats;
    // New events that sit next to each other in the page are copied as one run.
    let runFrom = -1;
    let runTo = -1;
    for (let i = 0; i < batch.count; i++) {
      s.fetched++;
      const key = keys[i]!;
      const at = this.index.get(key);
      const isSigned = (flags[i]! & EventFlag.signed) !== 0;
      if (at === EXISTING) {
        s.existing++;
        continue;
      }
      if (at !== undefined) {
        s.duplicates++;
        // Two copies of one event can differ in bytes (a peer that dropped `sig`): keep the signed one.
        if (isSigned && this.signed[at] === 0) {
          s.bytes -= this.lengthOf[at]!;
          this.signed[at] = 1;
          if (runFrom >= 0) this.flushRun(page, runFrom, runTo);
          runFrom = -1;
          this.storeOne(at, page, start[i]!, end[i]!, flags[i]!);
          s.replaced++;
        }
        continue;
      }
      const n = this.keys.length;
      if (n === this.tsHi.length) this.grow();
      this.keys.push(key);
      this.index.set(key, n);
      this.tsHi[n] = tsHi[i]!;
      this.tsLo[n] = tsLo[i]!;
      this.signed[n] = isSigned ? 1 : 0;
      s.unique++;
      const from = start[i]!;
      const to = end[i]!;
      if (flags[i]! & EventFlag.multiline) {
        if (runFrom >= 0) this.flushRun(page, runFrom, runTo);
        runFrom = -1;
        this.storeOne(n, page, from, to, flags[i]!);
        continue;
      }
      // Extend the run when this event follows it closely (a comma apart) and the chunk has room.
      if (runFrom < 0 || from - runTo > 8 || this.used + (to - runFrom) > CHUNK) {
        if (runFrom >= 0) this.flushRun(page, runFrom, runTo);
        if (this.used + (to - from) > CHUNK || this.chunks.length === 0) this.newChunk(to - from);
        runFrom = from;
      }
      runTo = to;
      this.chunkOf[n] = this.chunks.length - 1;
      this.offsetOf[n] = this.used + (from - runFrom);
      this.lengthOf[n] = to - from;
      s.bytes += to - from;
    }
    if (runFrom >= 0) this.flushRun(page, runFrom, runTo);
  }

  private flushRun(page: Buffer, from: number, to: number): void {
    page.copy(this.chunks[this.chunks.length - 1]!, this.used, from, to);
    this.used += to - from;
  }

  private newChunk(atLeast: number): void {
    this.chunks.push(Buffer.allocUnsafe(Math.max(CHUNK, atLeast)));
    this.used = 0;
  }

  private storeOne(n: number, page: Buffer, s: number, e: number, flags: number): void {
    const raw = flags & EventFlag.multiline ? Buffer.from(compactJson(page.subarray(s, e))) : page.subarray(s, e);
    const len = raw.length;
    if (this.used + len > CHUNK || this.chunks.length === 0) this.newChunk(len);
    raw.copy(this.chunks[this.chunks.length - 1]!, this.used);
    this.chunkOf[n] = this.chunks.length - 1;
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
    let out = Buffer.allocUnsafe(chunkSize);
    let used = 0;
    const { chunks, chunkOf, offsetOf, lengthOf } = this;
    for (let k = 0; k < order.length; k++) {
      const n = order[k]!;
      const len = lengthOf[n]!;
      if (used + len + 1 > out.length) {
        if (used > 0) yield out.subarray(0, used);
        out = Buffer.allocUnsafe(Math.max(chunkSize, len + 1));
        used = 0;
      }
      const off = offsetOf[n]!;
      // Buffer#copy takes offsets: no view object per event.
      chunks[chunkOf[n]!]!.copy(out, used, off, off + len);
      used += len;
      out[used++] = 0x0a;
    }
    if (used > 0) yield out.subarray(0, used);
  }
}
