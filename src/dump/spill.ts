/**
 * --max-memory for the dump: when the events held in the collector pass the
 * budget (a hanging peer keeps the write window open, one peer is far
 * behind, more peers than slots), they go to a sorted run in a private
 * temporary directory, sealed with a key that exists only in memory
 * (io/tempfile.ts). At the end the runs and what is still held are merged
 * into the output: the same bytes as a dump that never spilled.
 *
 * Run record: u32 entry number, u32 length, the event's bytes. The entry
 * number is the collector's: ts and id for the merge's order come from its
 * arrays (the ids stay in memory for dedup anyway), and a copy replaced
 * since by a signed one is recognised and skipped.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ExitCode, NaraError } from "../errors.ts";
import { privateDir } from "../io/output.ts";
import { TempSealer, type SealedReader } from "../io/tempfile.ts";
import type { Collector, SpillTarget } from "./collect.ts";

/** Memory per known event that is not held bytes: id words, index slot, ts halves, offsets. */
const ENTRY_BYTES = 64;
/** The least held before a spill (unless the budget is tiny): runs of a few events would only cost seeks. */
const MIN_HELD = 4 << 20;
const RECORD_HEAD = 8;
const OUT_CHUNK = 1 << 20;

export class Spill implements SpillTarget {
  private dir: string | undefined;
  private readonly sealer = new TempSealer();
  private readonly files: string[] = [];
  /** Events the last `merged` wrote. */
  written = 0;

  constructor(
    /** --max-memory: a quarter of it for held events, less what the known events' ids take (the rest: pages in flight, the runtime). */
    private readonly maxMemory: number,
    private readonly parent: string,
  ) {}

  get runs(): number {
    return this.files.length;
  }

  limit(entries: number): number {
    return Math.max(Math.min(MIN_HELD, this.maxMemory / 4), this.maxMemory / 4 - entries * ENTRY_BYTES);
  }

  writeRun(order: Uint32Array, from: Collector): number {
    this.dir ??= privateDir(this.parent, "nara-dump-");
    const path = join(this.dir, `run-${this.files.length + 1}`);
    const file = this.sealer.writer(path);
    try {
      let out = Buffer.allocUnsafe(OUT_CHUNK);
      let used = 0;
      for (const n of order) {
        const len = from.eventLength(n);
        if (used + RECORD_HEAD + len > out.length) {
          file.write(out.subarray(0, used));
          used = 0;
          if (RECORD_HEAD + len > out.length) out = Buffer.allocUnsafe(RECORD_HEAD + len);
        }
        out.writeUInt32LE(n, used);
        out.writeUInt32LE(len, used + 4);
        from.copyEvent(n, out, used + RECORD_HEAD);
        used += RECORD_HEAD + len;
      }
      file.write(out.subarray(0, used));
    } finally {
      file.close();
    }
    this.files.push(path);
    return this.files.length;
  }

  /**
   * Every kept event as JSON Lines, in (ts, id) order: the runs merged with
   * what the collector still holds. A chunk is valid until the next is asked for.
   */
  *merged(collector: Collector): Generator<Uint8Array> {
    const memory = collector.unspilled();
    const readers = this.files.map((path, i) => new RunReader(this.sealer.reader(path), path, collector, i + 1));
    // Source 0 is memory, source r the run r; heads[s] is its current entry.
    const heads: number[] = [];
    let memAt = 0;
    const advance = (src: number): boolean => {
      if (src === 0) {
        if (memAt >= memory.length) return false;
        heads[0] = memory[memAt++]!;
        return true;
      }
      const r = readers[src - 1]!;
      if (!r.next()) return false;
      heads[src] = r.n;
      return true;
    };
    const heap = new MinHeap((a, b) => collector.compare(heads[a]!, heads[b]!));
    for (let src = 0; src <= readers.length; src++) if (advance(src)) heap.push(src);

    let out = Buffer.allocUnsafe(OUT_CHUNK);
    let used = 0;
    this.written = 0;
    try {
      while (heap.size > 0) {
        const src = heap.top();
        const n = heads[src]!;
        const len = src === 0 ? collector.eventLength(n) : readers[src - 1]!.length;
        if (used + len + 1 > out.length) {
          if (used > 0) yield out.subarray(0, used);
          if (len + 1 > out.length) out = Buffer.allocUnsafe(len + 1);
          used = 0;
        }
        if (src === 0) collector.copyEvent(n, out, used);
        else readers[src - 1]!.copyTo(out, used);
        used += len;
        out[used++] = 0x0a;
        this.written++;
        if (advance(src)) heap.replaceTop(src);
        else heap.pop();
      }
      if (used > 0) yield out.subarray(0, used);
    } finally {
      for (const r of readers) r.close();
    }
  }

  /** Removes the runs and their directory; safe to call more than once, and on a signal. */
  remove(): void {
    if (this.dir === undefined) return;
    rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}

/** The records of one run, skipping copies replaced since it was written. */
class RunReader {
  n = -1;
  length = 0;
  private buf: Buffer = Buffer.alloc(0);
  private at = 0;
  private start = 0;

  constructor(
    private readonly file: SealedReader,
    private readonly path: string,
    private readonly collector: Collector,
    private readonly run: number,
  ) {}

  next(): boolean {
    for (;;) {
      if (!this.fill(RECORD_HEAD)) {
        if (this.at < this.buf.length) throw this.damaged();
        return false;
      }
      const n = this.buf.readUInt32LE(this.at);
      const len = this.buf.readUInt32LE(this.at + 4);
      if (!this.fill(RECORD_HEAD + len)) throw this.damaged();
      this.start = this.at + RECORD_HEAD;
      this.at = this.start + len;
      if (!this.collector.inRun(n, this.run)) continue;
      this.n = n;
      this.length = len;
      return true;
    }
  }

  copyTo(out: Buffer, at: number): void {
    this.buf.copy(out, at, this.start, this.start + this.length);
  }

  close(): void {
    this.file.close();
  }

  /** At least `need` bytes from `at` on in `buf`; false at the end of the run. */
  private fill(need: number): boolean {
    while (this.buf.length - this.at < need) {
      const block = this.file.next();
      if (!block) return false;
      this.buf = this.at < this.buf.length ? Buffer.concat([this.buf.subarray(this.at), block]) : block;
      this.at = 0;
    }
    return true;
  }

  private damaged(): NaraError {
    return new NaraError(`temporary file ${this.path} was cut short on disk`, { exitCode: ExitCode.internal });
  }
}

/** A binary heap of small integers under an order that may change only at the top (replaceTop). */
class MinHeap {
  private readonly items: number[] = [];
  constructor(private readonly less: (a: number, b: number) => number) {}
  get size(): number {
    return this.items.length;
  }
  top(): number {
    return this.items[0]!;
  }
  push(x: number): void {
    const h = this.items;
    h.push(x);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[i]!, h[p]!) >= 0) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): void {
    const h = this.items;
    const last = h.pop()!;
    if (h.length > 0) this.replaceTop(last);
  }
  replaceTop(x: number): void {
    const h = this.items;
    h[0] = x;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!) < 0) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!) < 0) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}
