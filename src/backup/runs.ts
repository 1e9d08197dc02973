/**
 * Sorted runs for inputs that are not in (ts, id) order: events are
 * gathered in memory up to a budget, sorted, deduplicated (the signed copy
 * wins, else the first), and either kept in memory (the last run) or written
 * to a private temporary file in a compact binary form that is read back
 * without scanning the JSON again.
 *
 * Run record (little endian): u32 length, origin, line, flags (1 signed,
 * 2 id escaped), idStart, idEnd, tsStart, tsEnd (offsets within the event),
 * then the event's bytes.
 */
import { ExitCode, NaraError } from "../errors.ts";
import { Cursor } from "./cursor.ts";
import { Head, compareIdText, compareIntTokens, compareSplitTs, compareWords, setIdKey, setTs, tsNeedsDigits } from "../events/order.ts";
import { wordsHex } from "../events/idtable.ts";
import { SEAL_BLOCK, type SealedReader, type SealedWriter } from "../io/tempfile.ts";
import { grown } from "../typed.ts";
import { EventArena } from "../events/arena.ts";

export const RECORD_HEADER = 32;
/** What one event costs in memory besides its bytes: index arrays with growth slack, the sort's index. */
export const EVENT_OVERHEAD = 128;
const F_SIGNED = 1;
const F_ESCAPED = 2;
/** In memory only: the id is hex (its words hold it). */
const F_HEX = 4;

export type RunStats = { duplicates: number; replaced: number };

/** Events gathered for one run, with their bytes in an arena of chunks. */
export class RunBuilder extends EventArena {
  count = 0;
  /** Bytes of the events held. */
  bytes = 0;
  private originOf = new Uint32Array(1024);
  private lineOf = new Uint32Array(1024);
  /** idS, idE, tsS, tsE relative to the event start, four per event. */
  private offsets = new Uint32Array(4096);
  private flags = new Uint8Array(1024);
  /** Four words per event with a hex id. */
  private words = new Uint32Array(4096);
  /** Keys of the other ids, by event number. */
  private keys = new Map<number, string>();
  private readonly chunkSize: number;

  constructor(readonly budget: number) {
    super();
    this.chunkSize = Math.max(64 << 10, Math.min(16 << 20, 2 ** Math.floor(Math.log2(Math.max(1, budget / 8)))));
  }

  /** Memory the run takes by the budget's measure. */
  get weight(): number {
    return this.bytes + this.count * EVENT_OVERHEAD;
  }

  get full(): boolean {
    return this.weight >= this.budget;
  }

  add(h: Head): void {
    const n = this.count;
    this.room(n);
    const len = h.e - h.s;
    this.store(n, h.buf, h.s, h.e);
    this.tsHi[n] = h.tsHi;
    this.tsLo[n] = h.tsLo;
    this.originOf[n] = h.origin;
    this.lineOf[n] = h.line;
    const o = n * 4;
    this.offsets[o] = h.idS - h.s;
    this.offsets[o + 1] = h.idE - h.s;
    this.offsets[o + 2] = h.tsS - h.s;
    this.offsets[o + 3] = h.tsE - h.s;
    this.flags[n] = (h.signed ? F_SIGNED : 0) | (h.idEscaped ? F_ESCAPED : 0) | (h.hex ? F_HEX : 0);
    if (h.hex) {
      this.words[o] = h.w0;
      this.words[o + 1] = h.w1;
      this.words[o + 2] = h.w2;
      this.words[o + 3] = h.w3;
    } else this.keys.set(n, h.key);
    this.count = n + 1;
    this.bytes += len;
  }

  protected nextChunk(atLeast: number): void {
    // Chunks are kept from run to run: reuse the next one when it is big enough.
    const next = this.current + 1;
    if (next >= this.chunks.length || this.chunks[next]!.length < atLeast) {
      const chunk = Buffer.allocUnsafe(Math.max(this.chunkSize, atLeast));
      if (next < this.chunks.length) this.chunks[next] = chunk;
      else this.chunks.push(chunk);
    }
    this.current = next;
    this.used = 0;
  }

  protected growColumns(size: number): void {
    this.originOf = grown(this.originOf, size);
    this.lineOf = grown(this.lineOf, size);
    this.offsets = grown(this.offsets, size * 4);
    this.words = grown(this.words, size * 4);
    this.flags = grown(this.flags, size);
  }

  /** Empties the builder, keeping its memory for the next run. */
  reset(): void {
    this.count = 0;
    this.bytes = 0;
    this.current = this.chunks.length > 0 ? 0 : -1;
    this.used = 0;
    this.keys.clear();
  }

  /** Drops the memory too. */
  release(): void {
    this.chunks = [];
    this.reset();
  }

  /** ts order of events a and b. */
  private compareTs(a: number, b: number): number {
    const { tsHi, tsLo } = this;
    const ha = tsHi[a]!;
    if (ha === tsHi[b]! && tsNeedsDigits(ha)) return this.compareTsExact(a, b);
    return compareSplitTs(ha, tsLo[a]!, tsHi[b]!, tsLo[b]!);
  }

  private compareTsExact(a: number, b: number): number {
    const ca = this.chunks[this.chunkOf[a]!]!;
    const cb = this.chunks[this.chunkOf[b]!]!;
    const oa = this.offsetOf[a]!;
    const ob = this.offsetOf[b]!;
    const o = this.offsets;
    return compareIntTokens(ca, oa + o[a * 4 + 2]!, oa + o[a * 4 + 3]!, cb, ob + o[b * 4 + 2]!, ob + o[b * 4 + 3]!);
  }

  /** The key string of event n (built from the words for a hex id). */
  private keyText(n: number): string {
    return this.keys.get(n) ?? wordsHex(this.words, n * 4);
  }

  /** Key order of events a and b: the order of their key strings. */
  private compareKeys(a: number, b: number): number {
    const f = this.flags;
    if (f[a]! & f[b]! & F_HEX) return compareWords(this.words, a * 4, this.words, b * 4);
    return compareIdText(this.keyText(a), this.keyText(b));
  }

  /** Same (ts, key)? */
  private same(a: number, b: number): boolean {
    return this.compareTs(a, b) === 0 && this.compareKeys(a, b) === 0;
  }

  /**
   * The events in (ts, key) order, one per event: the first signed copy when
   * there is one, else the first copy (by input, then line).
   */
  sortedUnique(stats: RunStats): Uint32Array {
    const n = this.count;
    const order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const { tsHi, tsLo, originOf, lineOf } = this;
    // compareTs on the arrays at hand: the sort of a whole input calls this tens of millions of times.
    order.sort((a, b) => {
      const t = tsHi[a] === tsHi[b] && tsNeedsDigits(tsHi[a]!) ? this.compareTsExact(a, b) : compareSplitTs(tsHi[a]!, tsLo[a]!, tsHi[b]!, tsLo[b]!);
      return t || this.compareKeys(a, b) || originOf[a]! - originOf[b]! || lineOf[a]! - lineOf[b]!;
    });
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const x = order[i]!;
      if (kept > 0 && this.same(order[kept - 1]!, x)) {
        stats.duplicates++;
        if (this.flags[x]! & F_SIGNED && !(this.flags[order[kept - 1]!]! & F_SIGNED)) {
          order[kept - 1] = x;
          stats.replaced++;
        }
        continue;
      }
      order[kept++] = x;
    }
    return order.subarray(0, kept);
  }

  /** Writes the events of `order` as a run file. */
  spill(file: SealedWriter, order: Uint32Array): void {
    const w = new RunWriter(file);
    try {
      const h = new Head();
      for (const n of order) w.write(this.headAt(n, h));
      w.finish();
    } catch (err) {
      w.close();
      throw err;
    }
  }

  /** Fills `h` with event `n` (the key string is the one stored); `h`. */
  headAt(n: number, h: Head): Head {
    const buf = this.chunks[this.chunkOf[n]!]!;
    const s = this.offsetOf[n]!;
    const o = n * 4;
    h.buf = buf;
    h.s = s;
    h.e = s + this.lengthOf[n]!;
    h.idS = s + this.offsets[o]!;
    h.idE = s + this.offsets[o + 1]!;
    h.tsS = s + this.offsets[o + 2]!;
    h.tsE = s + this.offsets[o + 3]!;
    h.tsHi = this.tsHi[n]!;
    h.tsLo = this.tsLo[n]!;
    const f = this.flags[n]!;
    h.signed = (f & F_SIGNED) !== 0;
    h.idEscaped = (f & F_ESCAPED) !== 0;
    h.hex = (f & F_HEX) !== 0;
    if (h.hex) {
      h.w0 = this.words[o]!;
      h.w1 = this.words[o + 1]!;
      h.w2 = this.words[o + 2]!;
      h.w3 = this.words[o + 3]!;
      h.key = "";
    } else h.key = this.keys.get(n)!;
    h.origin = this.originOf[n]!;
    h.line = this.lineOf[n]!;
    return h;
  }

  /** A cursor over the events of `order`, straight from memory. */
  cursor(order: Uint32Array): Cursor {
    return new ArenaCursor(this, order);
  }
}

class ArenaCursor extends Cursor {
  private at = 0;
  constructor(
    private readonly run: RunBuilder,
    private readonly order: Uint32Array,
  ) {
    super();
  }
  advance(): boolean {
    if (this.at >= this.order.length) return false;
    this.run.headAt(this.order[this.at++]!, this.head);
    return true;
  }
  async close(): Promise<void> {}
}

/** Writes run records through a 1 MiB buffer to a sealed temporary file. */
export class RunWriter {
  private buf = Buffer.allocUnsafe(1 << 20);
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private used = 0;
  count = 0;
  bytes = 0;

  constructor(private readonly file: SealedWriter) {}

  write(h: Head): void {
    const len = h.e - h.s;
    const need = RECORD_HEADER + len;
    if (this.used + need > this.buf.length) {
      this.flush();
      if (need > this.buf.length) {
        this.buf = Buffer.allocUnsafe(need);
        this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
      }
    }
    const v = this.view;
    const at = this.used;
    v.setUint32(at, len, true);
    v.setUint32(at + 4, h.origin, true);
    v.setUint32(at + 8, h.line, true);
    v.setUint32(at + 12, (h.signed ? F_SIGNED : 0) | (h.idEscaped ? F_ESCAPED : 0), true);
    v.setUint32(at + 16, h.idS - h.s, true);
    v.setUint32(at + 20, h.idE - h.s, true);
    v.setUint32(at + 24, h.tsS - h.s, true);
    v.setUint32(at + 28, h.tsE - h.s, true);
    h.buf.copy(this.buf, at + RECORD_HEADER, h.s, h.e);
    this.used = at + need;
    this.count++;
    this.bytes += need;
  }

  private flush(): void {
    this.file.write(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  finish(): void {
    try {
      this.flush();
    } finally {
      this.close();
    }
  }

  close(): void {
    this.file.close();
  }
}

/**
 * Reads a run file back, record by record, into one reused buffer (grown
 * only for a record longer than it): advance() never waits on a Promise,
 * and the head is valid until the next advance() (mergeCursors copies what
 * it holds back).
 */
export class RunCursor extends Cursor {
  private buf: Buffer;
  private view: DataView;
  private pos = 0;
  private fill = 0;
  private eof = false;

  constructor(
    private readonly file: SealedReader,
    readSize = 256 << 10,
  ) {
    super();
    this.buf = Buffer.allocUnsafe(Math.max(readSize, 2 * SEAL_BLOCK));
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }

  get path(): string {
    return this.file.path;
  }

  advance(): boolean {
    for (;;) {
      const avail = this.fill - this.pos;
      if (avail >= RECORD_HEADER) {
        const len = this.view.getUint32(this.pos, true);
        if (avail >= RECORD_HEADER + len) {
          this.read(len);
          return true;
        }
        if (this.eof) throw new NaraError(`temporary run ${this.path} is cut short`, { exitCode: ExitCode.internal });
        this.refill(RECORD_HEADER + len);
      } else {
        if (this.eof) {
          if (avail === 0) return false;
          throw new NaraError(`temporary run ${this.path} is cut short`, { exitCode: ExitCode.internal });
        }
        this.refill(RECORD_HEADER);
      }
    }
  }

  /** Moves the unread rest to the front and appends blocks until `need` bytes are there (or the buffer is full). */
  private refill(need: number): void {
    const rest = this.fill - this.pos;
    if (need + SEAL_BLOCK > this.buf.length) {
      const bigger = Buffer.allocUnsafe(need + SEAL_BLOCK);
      this.buf.copy(bigger, 0, this.pos, this.fill);
      this.buf = bigger;
      this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
    } else if (rest > 0 && this.pos > 0) this.buf.copy(this.buf, 0, this.pos, this.fill);
    this.pos = 0;
    this.fill = rest;
    while (this.fill + SEAL_BLOCK <= this.buf.length) {
      const block = this.file.next();
      if (!block) {
        this.eof = true;
        break;
      }
      block.copy(this.buf, this.fill);
      this.fill += block.length;
    }
  }

  private read(len: number): void {
    const v = this.view;
    const at = this.pos;
    const s = at + RECORD_HEADER;
    const h = this.head;
    const b = this.buf;
    h.buf = b;
    h.s = s;
    h.e = s + len;
    h.origin = v.getUint32(at + 4, true);
    h.line = v.getUint32(at + 8, true);
    const f = v.getUint32(at + 12, true);
    h.signed = (f & F_SIGNED) !== 0;
    h.idEscaped = (f & F_ESCAPED) !== 0;
    h.idS = s + v.getUint32(at + 16, true);
    h.idE = s + v.getUint32(at + 20, true);
    h.tsS = s + v.getUint32(at + 24, true);
    h.tsE = s + v.getUint32(at + 28, true);
    setTs(h);
    setIdKey(h);
    this.pos = h.e;
  }

  async close(): Promise<void> {
    this.file.close();
  }
}
