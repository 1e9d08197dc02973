/**
 * Streams JSON Lines as byte ranges, without decoding: memory stays bounded
 * by the line cap (plus a chunk), whatever the file size and whatever its
 * longest line.
 */

export type LineVisitor = (buf: Uint8Array, start: number, end: number, lineNo: number) => void | Promise<void>;

/** A real nara event is a few KB (a checkpoint a few tens); the Go tool's reader stops at 1 MB lines. */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

export type LineOptions = {
  /** Longest line (bytes, without its "\n") given to `visit`; longer ones go to `onLong`. */
  maxLineBytes?: number;
  /** A line longer than the cap, skipped without being held; `bytes` is its whole length. */
  onLong?: (lineNo: number, bytes: number) => void | Promise<void>;
};

/**
 * The chunks of a skipped line are garbage the engine collects late (RSS grew
 * by ~40 MiB over a 150 MB line): a full collection every this many bytes
 * skipped keeps it flat, a few collections for an absurd line, none otherwise.
 * (restore-events over a 150 MB line, bench/long-line.ts: every 32 MiB peaked
 * at 146 MiB, 16 MiB at 129-137 MiB for 0.1-0.2 s more, 8 MiB at 124-128 MiB
 * for 0.5 s more.)
 */
const GC_EVERY_SKIPPED = 16 << 20;

/** "1 MiB", "512 KiB", "1000 bytes": how a cap is named in messages. */
export function formatLimit(bytes: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** The reason given for an over-long line, the same in every reader. */
export function longLineReason(bytes: number, limit: number): string {
  return `line of ${bytes} bytes, longer than any event (limit ${formatLimit(limit)})`;
}

/** Where a LineReader's bytes come from: reads into the caller's buffer; 0 = the end. */
export interface ByteSource {
  read(into: Buffer, at: number, max: number): number | Promise<number>;
  /**
   * Optional, for sources that already hold their bytes in chunks (a stream):
   * the next chunk itself, undefined at the end. The reader then splits inside
   * each chunk and copies only a line that straddles two.
   */
  chunk?(): Uint8Array | undefined | Promise<Uint8Array | undefined>;
  close(): Promise<void>;
}

/** Chunks of a stream or async iterable, copied out as they are read; `onDone` hears of each chunk used up. */
export class ChunkSource implements ByteSource {
  private readonly chunks: AsyncIterator<Uint8Array>;
  private left: Uint8Array | undefined;
  private closed = false;
  constructor(
    source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
    private readonly onDone?: (bytes: number) => void,
  ) {
    this.chunks = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  }
  read(into: Buffer, at: number, max: number): number | Promise<number> {
    if (this.left) return this.copy(this.left, into, at, max);
    return this.chunks.next().then((r) => (r.done ? 0 : this.copy(r.value, into, at, max)));
  }
  chunk(): Uint8Array | undefined | Promise<Uint8Array | undefined> {
    const left = this.left;
    if (left) {
      this.left = undefined;
      this.onDone?.(left.length);
      return left;
    }
    return this.chunks.next().then((r) => {
      if (r.done) return undefined;
      this.onDone?.(r.value.length);
      return r.value;
    });
  }
  private copy(chunk: Uint8Array, into: Buffer, at: number, max: number): number | Promise<number> {
    if (chunk.length === 0) {
      this.left = undefined;
      return this.read(into, at, max);
    }
    const n = Math.min(max, chunk.length);
    into.set(n === chunk.length ? chunk : chunk.subarray(0, n), at);
    this.left = n === chunk.length ? undefined : chunk.subarray(n);
    if (this.left === undefined) this.onDone?.(chunk.length);
    return n;
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.left = undefined;
    try {
      await this.chunks.return?.();
    } catch {
      // Cancelling a failed stream fails too: nothing is left to release.
    }
  }
}

/**
 * Splits JSON Lines, one `next()` at a time, in one reused buffer (grown for
 * a longer line, up to the cap): `next()` is synchronous while the buffer
 * holds a whole line (always, for a synchronous source) and a Promise only
 * when it must wait for one. A line longer than the cap is counted while it
 * streams past and reported by its length (`long`), never held. A last line
 * without "\n" is a line.
 */
export class LineReader {
  /** The line: buf[start, end), without its "\n"; valid until the next `next()`. */
  buf: Buffer;
  start = 0;
  end = 0;
  /** Its number: from 1, blank lines counted. */
  lineNo = 0;
  /** The length of the line over the cap that `next()` found instead of a line; -1 for a line. */
  long = -1;
  /** Bytes read so far. */
  bytes = 0;
  /** Called before the bytes in `buf` move: whatever still points into them must copy them now. */
  beforeMove: ((buf: Buffer) => void) | undefined;
  /** Called with the bytes of an over-long line skipped in each read. */
  onSkip: ((bytes: number) => void) | undefined;
  private store: Buffer;
  private pos = 0;
  private fill = 0;
  private eof = false;
  /** Bytes of the over-long line being skipped; -1 when not inside one. */
  private skipped = -1;
  /** What is left of a source chunk whose head went to `store` to finish a straddling line. */
  private pending: Uint8Array | undefined;

  constructor(
    private readonly source: ByteSource,
    readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES,
    bufferSize = 1 << 20,
  ) {
    this.store = Buffer.allocUnsafe(bufferSize);
    // store[0, fill): what a search sees, so that it never runs into stale bytes.
    this.buf = this.store.subarray(0, 0);
  }

  /** Moves to the next line (or over-long line): false at the end. */
  next(): boolean | Promise<boolean> {
    for (;;) {
      const view = this.buf;
      const nl = view.indexOf(0x0a, this.pos);
      if (this.skipped >= 0) {
        // Inside an over-long line: only its length is kept, the buffer is reused as it streams past.
        if (nl === -1) {
          this.skipped += this.fill - this.pos;
          this.onSkip?.(this.fill - this.pos);
          this.pos = this.fill;
          if (!this.eof) {
            const r = this.refill();
            if (r !== undefined) return r.then(() => this.next());
            continue;
          }
        } else {
          this.skipped += nl - this.pos;
          this.pos = nl + 1;
        }
        this.lineNo++;
        this.long = this.skipped;
        this.skipped = -1;
        return true;
      }
      if (nl !== -1) {
        this.line(this.pos, nl);
        this.pos = nl + 1;
        return true;
      }
      if (this.eof) {
        if (this.pos >= this.fill) return false;
        this.line(this.pos, this.fill);
        this.pos = this.fill;
        return true;
      }
      const r = this.refill();
      if (r !== undefined) return r.then(() => this.next());
    }
  }

  private line(s: number, e: number): void {
    this.lineNo++;
    this.long = e - s > this.maxLineBytes ? e - s : -1;
    this.start = s;
    this.end = e;
  }

  /** Moves the unfinished line to the front and reads more after it; a Promise when the source is async. */
  private refill(): Promise<void> | undefined {
    this.beforeMove?.(this.buf);
    if (this.source.chunk) return this.nextChunk();
    let rest = this.fill - this.pos;
    if (rest > this.maxLineBytes) {
      // The unfinished line is already over the cap: drop it, count the rest as it comes.
      this.skipped = rest;
      this.onSkip?.(rest);
      this.pos = this.fill;
      rest = 0;
    } else if (rest === this.store.length) {
      const bigger = Buffer.allocUnsafe(this.store.length * 2);
      this.store.copy(bigger, 0, this.pos, this.fill);
      this.store = bigger;
    } else if (rest > 0 && this.pos > 0) this.store.copy(this.store, 0, this.pos, this.fill);
    this.pos = 0;
    this.fill = rest;
    const n = this.source.read(this.store, rest, this.store.length - rest);
    if (typeof n === "number") {
      this.filled(n);
      return undefined;
    }
    return n.then((k) => this.filled(k));
  }

  /**
   * Chunk mode: lines are split inside the source's chunks as they come; only
   * the unfinished line at a chunk's end is kept (in `store`) and joined with
   * the next chunk's head up to its first newline, unless it passes the cap.
   */
  private nextChunk(): Promise<void> | undefined {
    const rest = this.fill - this.pos;
    if (rest > this.maxLineBytes) {
      this.skipped = rest;
      this.onSkip?.(rest);
    } else if (rest > 0) {
      if (rest > this.store.length) this.store = Buffer.allocUnsafe(capacityFor(rest));
      if (this.buf.buffer !== this.store.buffer || this.pos > 0) this.store.set(this.buf.subarray(this.pos, this.fill));
    }
    const carried = this.skipped >= 0 ? 0 : rest;
    const pending = this.pending;
    if (pending) {
      this.pending = undefined;
      this.adopt(pending, carried);
      return undefined;
    }
    const c = this.source.chunk!();
    if (c === undefined || c instanceof Uint8Array) {
      this.took(c, carried);
      return undefined;
    }
    return c.then((chunk) => this.took(chunk, carried));
  }

  private took(c: Uint8Array | undefined, carried: number): void {
    if (c === undefined) {
      this.eof = true;
      this.buf = this.store.subarray(0, carried);
      this.pos = 0;
      this.fill = carried;
      return;
    }
    this.bytes += c.length;
    this.adopt(c, carried);
  }

  /** Makes `c` the buffer, after finishing in `store` the `carried` bytes of a line begun in the chunk before. */
  private adopt(c: Uint8Array, carried: number): void {
    if (carried > 0) {
      const nl = c.indexOf(0x0a);
      const head = nl === -1 ? c.length : nl + 1;
      if (carried + head - (nl === -1 ? 0 : 1) > this.maxLineBytes) {
        // Over the cap: counted from here on as it streams past, never joined.
        this.skipped = carried;
        this.onSkip?.(carried);
      } else {
        if (carried + head > this.store.length) {
          const bigger = Buffer.allocUnsafe(capacityFor(carried + head));
          this.store.copy(bigger, 0, 0, carried);
          this.store = bigger;
        }
        this.store.set(head === c.length ? c : c.subarray(0, head), carried);
        this.buf = this.store.subarray(0, carried + head);
        this.pos = 0;
        this.fill = carried + head;
        if (head < c.length) this.pending = c.subarray(head);
        return;
      }
    }
    // A Buffer view of the chunk (no copy): readers of `buf` use Buffer's methods.
    this.buf = Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.length);
    this.pos = 0;
    this.fill = c.length;
  }

  private filled(n: number): void {
    if (n === 0) this.eof = true;
    this.fill += n;
    this.bytes += n;
    this.buf = this.store.subarray(0, this.fill);
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

/** A power of two at least `n` (and 64 KiB). */
const capacityFor = (n: number): number => 2 ** Math.max(16, Math.ceil(Math.log2(n)));

/**
 * Calls `visit` for every non-blank line (the range excludes "\n" and a
 * trailing "\r"). Line numbers start at 1 and count blank lines too. `buf`
 * is only valid until `visit` (or the Promise it returns) is done: copy what
 * must outlive it. A line longer than `maxLineBytes` is counted while it
 * streams past and given to `onLong` at its end, never held.
 */
export async function forEachLine(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  visit: LineVisitor,
  opts: LineOptions = {},
): Promise<number> {
  const reader = new LineReader(new ChunkSource(source), opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, 256 << 10);
  let sinceGc = 0;
  reader.onSkip = (bytes) => {
    if ((sinceGc += bytes) >= GC_EVERY_SKIPPED) {
      sinceGc = 0;
      Bun.gc(true);
    }
  };
  const onLong = opts.onLong;
  try {
    for (;;) {
      let more = reader.next();
      if (more !== true && more !== false) more = await more;
      if (!more) break;
      const pending = reader.long >= 0 ? onLong?.(reader.lineNo, reader.long) : visitLine(reader, visit);
      if (pending) await pending;
    }
  } catch (err) {
    // A visitor that stops the reading (or a failing stream): the stream is released, as `for await` would.
    await reader.close();
    throw err;
  }
  return reader.lineNo;
}

/** `visit` for the line `r` is at, unless it is blank; without a trailing "\r". */
function visitLine(r: LineReader, visit: LineVisitor): void | Promise<void> {
  return visitNonBlank(r.buf, r.start, r.end, r.lineNo, visit);
}

/** `visit` for the line buf[s, e) without a trailing "\r", unless it is blank (spaces and tabs only). */
function visitNonBlank<R>(buf: Uint8Array, s: number, e: number, lineNo: number, visit: (buf: Uint8Array, start: number, end: number, lineNo: number) => R): R | undefined {
  if (e > s && buf[e - 1] === 0x0d) e--;
  let k = s;
  while (k < e && (buf[k] === 0x20 || buf[k] === 0x09)) k++;
  return k < e ? visit(buf, s, e, lineNo) : undefined;
}

/**
 * forEachLine over bytes already in memory, buf[from, to): the same lines,
 * numbers, blank-line and "\r" rules and cap, visited synchronously with
 * views of `buf` itself (nothing copied). `firstLine` numbers the first
 * line (a range that starts mid-file). Returns the number of lines, blank
 * ones included.
 */
export function forEachLineIn(
  buf: Uint8Array,
  from: number,
  to: number,
  visit: (buf: Uint8Array, start: number, end: number, lineNo: number) => void,
  opts: { maxLineBytes?: number; onLong?: (lineNo: number, bytes: number) => void; firstLine?: number } = {},
): number {
  const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let lineNo = (opts.firstLine ?? 1) - 1;
  let s = from;
  while (s < to) {
    let nl = buf.indexOf(0x0a, s);
    if (nl === -1 || nl > to) nl = to;
    lineNo++;
    if (nl - s > max) opts.onLong?.(lineNo, nl - s);
    else visitNonBlank(buf, s, nl, lineNo, visit);
    s = nl + 1;
  }
  return lineNo - ((opts.firstLine ?? 1) - 1);
}
