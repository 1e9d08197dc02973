/**
 * Cursors: pull-based readers that expose one event at a time as a Head.
 * `advance()` is synchronous while the buffer holds a whole line (always,
 * for a regular file) and returns a Promise only when it has to wait for a
 * stream, so a k-way merge pays for a Promise per chunk, not per event.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { ExitCode, NaraError } from "../errors.ts";
import { DEFAULT_MAX_LINE_BYTES, longLineReason } from "../events/lines.ts";
import { EventFlag, ScanError, compactJson, newEventFields, scanEventAt } from "../events/scan.ts";
import { noteGarbage } from "../io/gc.ts";
import { Head, compareEvents, copyHeadInto, keyText, setIdKey, setTs, tsText } from "../events/order.ts";

export abstract class Cursor {
  /** The current event, valid until the next advance(). */
  head = new Head();
  /** Moves to the next event: false at the end. */
  abstract advance(): boolean | Promise<boolean>;
  /** Releases the underlying stream early (after an error or a restart). */
  abstract close(): Promise<void>;
}

/** A line the scanner refused (or an event without id or integer ts, or a line over the cap: `bytes` set, no column). */
export type InvalidLine = { input: string; line: number; column: number; reason: string; bytes?: number };

/** Thrown by a JsonlCursor with checkOrder "throw" when an event sorts before the previous one. */
export class OutOfOrder extends Error {
  constructor(
    readonly origin: number,
    readonly input: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${input}:${line}: out of order (${detail})`);
    this.name = "OutOfOrder";
  }
}

export type JsonlCursorOptions = {
  /** Input number: ties between copies of one event go to the lowest. */
  origin: number;
  /** Name in messages (a path, or "stdin"). */
  name: string;
  /** When an event sorts before the previous one: throw OutOfOrder, or only set `outOfOrder`. */
  checkOrder: "throw" | "note";
  /** Called for a malformed line; return true to skip it, false to fail (a NaraError naming file:line). */
  onInvalid: (bad: InvalidLine) => boolean;
  /** Longer lines are invalid, skipped without being held (default DEFAULT_MAX_LINE_BYTES). */
  maxLineBytes?: number;
};

const fields = newEventFields();

/** A Buffer over the same memory (no copy). */
export const asBuffer = (u: Uint8Array): Buffer => (Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/**
 * Fills `h` from an event already scanned into `fields` (positions in `b`);
 * [s, e) is the event object.
 */
function fillHead(h: Head, b: Buffer, s: number, e: number): void {
  h.buf = b;
  h.s = s;
  h.e = e;
  h.tsS = fields.tsStart;
  h.tsE = fields.tsEnd;
  setTs(h);
  h.idS = fields.idStart;
  h.idE = fields.idEnd;
  h.idEscaped = (fields.flags & EventFlag.idEscaped) !== 0;
  setIdKey(h);
  h.signed = (fields.flags & EventFlag.signed) !== 0;
}

const isBlank = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0d;

/** Where a JsonlCursor's bytes come from: reads into the caller's buffer; 0 = the end. */
export interface ByteSource {
  read(into: Buffer, at: number, max: number): number | Promise<number>;
  close(): Promise<void>;
}

/** A regular file read with synchronous reads: no Promise, no garbage chunk per read. */
export class FileSource implements ByteSource {
  private fd: number;
  constructor(
    path: string,
    private readonly onRead?: (bytes: number) => void,
  ) {
    this.fd = openSync(path, "r");
  }
  read(into: Buffer, at: number, max: number): number {
    const n = readSync(this.fd, into, at, max, null);
    this.onRead?.(n);
    return n;
  }
  async close(): Promise<void> {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

/** A stream (stdin, decompressed or decrypted input): chunks are copied out as they arrive. */
export class StreamSource implements ByteSource {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private left: Uint8Array | undefined;
  private closed = false;
  constructor(stream: ReadableStream<Uint8Array>) {
    this.reader = stream.getReader();
  }
  read(into: Buffer, at: number, max: number): number | Promise<number> {
    if (this.left) return this.copy(this.left, into, at, max);
    return this.reader.read().then((r) => (r.done ? 0 : this.copy(r.value, into, at, max)));
  }
  private copy(chunk: Uint8Array, into: Buffer, at: number, max: number): number | Promise<number> {
    if (chunk.length === 0) {
      this.left = undefined;
      return this.read(into, at, max);
    }
    const n = Math.min(max, chunk.length);
    into.set(n === chunk.length ? chunk : chunk.subarray(0, n), at);
    this.left = n === chunk.length ? undefined : chunk.subarray(n);
    if (this.left === undefined) noteGarbage(chunk.length);
    return n;
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.left = undefined;
    await this.reader.cancel().catch(() => {});
  }
}

/**
 * Reads JSON Lines: validates every line with the byte scanner, keeps each
 * event's bytes as they are. Lines are read into one reused buffer (grown
 * for a longer line): the head is valid until the next advance().
 */
export class JsonlCursor extends Cursor {
  /** Lines that were not blank. */
  lines = 0;
  events = 0;
  invalid = 0;
  /** Some event sorted before the one read just before it. */
  outOfOrder = false;
  /** Bytes of the decoded input read so far. */
  bytes = 0;
  private buf: Buffer;
  /** buf[0, fill): what `take` sees, so that a search never runs into stale bytes. */
  private view: Buffer;
  private pos = 0;
  private fill = 0;
  private eof = false;
  private lineNo = 0;
  private readonly maxLine: number;
  /** Bytes of the over-long line being skipped; -1 when not inside one. */
  private skipped = -1;
  private spare = new Head();
  /** Where the previous head is copied before the buffer moves (the order check still needs it). */
  private kept = Buffer.allocUnsafe(1024);
  private hasHead = false;

  constructor(
    private readonly source: ByteSource,
    readonly opts: JsonlCursorOptions,
    bufferSize = 1 << 20,
  ) {
    super();
    this.maxLine = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.buf = Buffer.allocUnsafe(bufferSize);
    this.view = this.buf.subarray(0, 0);
  }

  advance(): boolean | Promise<boolean> {
    for (;;) {
      const view = this.view;
      const nl = view.indexOf(0x0a, this.pos);
      if (this.skipped >= 0) {
        // Inside an over-long line: only its length is kept, the buffer is reused as it streams past.
        if (nl === -1) {
          this.skipped += this.fill - this.pos;
          this.pos = this.fill;
          if (!this.eof) {
            const r = this.refill();
            if (r !== undefined) return r.then(() => this.advance());
            continue;
          }
        } else {
          this.skipped += nl - this.pos;
          this.pos = nl + 1;
        }
        this.tooLong(this.skipped);
        continue;
      }
      if (nl !== -1) {
        const s = this.pos;
        this.pos = nl + 1;
        if (this.take(view, s, nl)) return true;
        continue;
      }
      if (this.eof) {
        if (this.pos >= this.fill) return false;
        const s = this.pos;
        this.pos = this.fill;
        if (this.take(view, s, this.fill)) return true;
        continue;
      }
      const r = this.refill();
      if (r !== undefined) return r.then(() => this.advance());
    }
  }

  /** Moves the unfinished line to the front and reads more after it; a Promise when the source is async. */
  private refill(): Promise<void> | undefined {
    if (this.hasHead && this.head.buf === this.view) {
      // The previous head is about to be overwritten: keep its bytes for the order check.
      const len = this.head.e - this.head.s;
      if (this.kept.length < len) this.kept = Buffer.allocUnsafe(len * 2);
      copyHeadInto(this.spare, this.head, this.kept);
      const h = this.head;
      this.head = this.spare;
      this.spare = h;
    }
    let rest = this.fill - this.pos;
    if (rest > this.maxLine) {
      // The unfinished line is already over the cap: drop it, count the rest as it comes.
      this.skipped = rest;
      this.pos = this.fill;
      rest = 0;
    } else if (rest === this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf.copy(bigger, 0, this.pos, this.fill);
      this.buf = bigger;
    } else if (rest > 0 && this.pos > 0) this.buf.copy(this.buf, 0, this.pos, this.fill);
    this.pos = 0;
    this.fill = rest;
    const n = this.source.read(this.buf, rest, this.buf.length - rest);
    if (typeof n === "number") {
      this.filled(n);
      return undefined;
    }
    return n.then((k) => this.filled(k));
  }

  private filled(n: number): void {
    if (n === 0) this.eof = true;
    this.fill += n;
    this.bytes += n;
    this.view = this.buf.subarray(0, this.fill);
  }

  async close(): Promise<void> {
    await this.source.close();
  }

  /** An over-long line of `bytes` bytes has ended: invalid, reported as such. */
  private tooLong(bytes: number): void {
    this.skipped = -1;
    this.lineNo++;
    this.lines++;
    this.invalid++;
    const bad: InvalidLine = { input: this.opts.name, line: this.lineNo, column: 0, reason: longLineReason(bytes, this.maxLine), bytes };
    if (this.opts.onInvalid(bad)) return;
    throw new NaraError(`${bad.input}:${bad.line}: ${bad.reason}`, {
      hint: "a damaged or foreign file? remove the line, or pass --skip-invalid to leave such lines out (--max-line-bytes raises the limit)",
      exitCode: ExitCode.usage,
    });
  }

  /** Handles line [s, e) of `b`; true when it became the head. */
  private take(b: Buffer, s: number, e: number): boolean {
    if (e - s > this.maxLine) {
      this.tooLong(e - s);
      return false;
    }
    this.lineNo++;
    // A UTF-8 byte order mark (some editors add one) is not part of the first event.
    if (this.lineNo === 1 && b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) s += 3;
    while (s < e && isBlank(b[s])) s++;
    while (e > s && isBlank(b[e - 1])) e--;
    if (s === e) return false;
    this.lines++;
    const lineStart = s;
    let reason: string | undefined;
    let column = 1;
    try {
      // Scanned in place (no view per line): an event that does not end on its line shows as an end past `e`.
      const end = scanEventAt(b, s, fields);
      if (end > e) {
        reason = "the event does not end on its line";
        column = e - lineStart + 1;
      } else if (end < e) {
        reason = "unexpected data after the event";
        column = end - lineStart + 1;
      } else if (fields.flags & EventFlag.noId) reason = "no string id";
      else if (fields.flags & EventFlag.badTs) reason = fields.tsStart < 0 ? "no ts" : "ts is not an integer";
    } catch (err) {
      if (!(err instanceof ScanError)) throw err;
      reason = err.offset >= e ? "unexpected end of line" : err.reason;
      column = Math.max(1, Math.min(err.offset, e) - lineStart + 1);
    }
    if (reason !== undefined) {
      this.invalid++;
      const bad = { input: this.opts.name, line: this.lineNo, column, reason };
      if (this.opts.onInvalid(bad)) return false;
      throw new NaraError(`${bad.input}:${bad.line}: not a valid event line: ${reason} (column ${column})`, {
        hint: "fix or remove the line, or pass --skip-invalid to leave such lines out",
        exitCode: ExitCode.usage,
      });
    }
    if (fields.flags & EventFlag.multiline) {
      // A bare CR between tokens: compact it as dump-events does with multi-line events.
      b = asBuffer(compactJson(b.subarray(s, e)));
      s = 0;
      e = b.length;
      scanEventAt(b, 0, fields);
    }
    const h = this.spare;
    fillHead(h, b, s, e);
    h.origin = this.opts.origin;
    h.line = this.lineNo;
    if (this.hasHead && !this.outOfOrder && compareEvents(h, this.head) < 0) {
      this.outOfOrder = true;
      if (this.opts.checkOrder === "note") return this.accept(h);
      const prev = this.head;
      const detail =
        h.tsHi === prev.tsHi && h.tsLo === prev.tsLo && tsText(h) === tsText(prev)
          ? `id ${keyText(h)} after ${keyText(prev)} at the same ts ${tsText(h)}`
          : `ts ${tsText(h)} after ${tsText(prev)} on line ${prev.line}`;
      throw new OutOfOrder(this.opts.origin, this.opts.name, this.lineNo, detail);
    }
    return this.accept(h);
  }

  private accept(h: Head): true {
    this.spare = this.head;
    this.head = h;
    this.hasHead = true;
    this.events++;
    return true;
  }

}
