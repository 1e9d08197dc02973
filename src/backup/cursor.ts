/**
 * Cursors: pull-based readers that expose one event at a time as a Head.
 * `advance()` is synchronous while the buffer holds a whole line (always,
 * for a regular file) and returns a Promise only when it has to wait for a
 * stream, so a k-way merge pays for a Promise per chunk, not per event.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { ExitCode, NaraError } from "../errors.ts";
import { type ByteSource, ChunkSource, DEFAULT_MAX_LINE_BYTES, LineReader, longLineReason } from "../events/lines.ts";
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

export type { ByteSource };

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
export class StreamSource extends ChunkSource {
  constructor(stream: ReadableStream<Uint8Array>) {
    super(stream, noteGarbage);
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
  private readonly reader: LineReader;
  private spare = new Head();
  /** Where the previous head is copied before the buffer moves (the order check still needs it). */
  private kept = Buffer.allocUnsafe(1024);
  private hasHead = false;

  constructor(
    source: ByteSource,
    readonly opts: JsonlCursorOptions,
    bufferSize = 1 << 20,
  ) {
    super();
    this.reader = new LineReader(source, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, bufferSize);
    this.reader.beforeMove = (buf) => this.keepHead(buf);
  }

  /** Bytes of the decoded input read so far. */
  get bytes(): number {
    return this.reader.bytes;
  }

  advance(): boolean | Promise<boolean> {
    for (;;) {
      const more = this.reader.next();
      if (more === false) return false;
      if (more !== true) return more.then((m) => m && (this.handle() || this.advance()));
      if (this.handle()) return true;
    }
  }

  /** The line the reader is at: true when it became the head. */
  private handle(): boolean {
    const r = this.reader;
    if (r.long < 0) return this.take(r.buf, r.start, r.end);
    this.tooLong(r.long);
    return false;
  }

  /** The previous head is about to be overwritten: keep its bytes for the order check. */
  private keepHead(buf: Buffer): void {
    if (!this.hasHead || this.head.buf !== buf) return;
    const len = this.head.e - this.head.s;
    if (this.kept.length < len) this.kept = Buffer.allocUnsafe(len * 2);
    copyHeadInto(this.spare, this.head, this.kept);
    const h = this.head;
    this.head = this.spare;
    this.spare = h;
  }

  async close(): Promise<void> {
    await this.reader.close();
  }

  /** An over-long line of `bytes` bytes has ended: invalid, reported as such. */
  private tooLong(bytes: number): void {
    this.lines++;
    this.invalid++;
    const bad: InvalidLine = { input: this.opts.name, line: this.reader.lineNo, column: 0, reason: longLineReason(bytes, this.reader.maxLineBytes), bytes };
    if (this.opts.onInvalid(bad)) return;
    throw new NaraError(`${bad.input}:${bad.line}: ${bad.reason}`, {
      hint: "a damaged or foreign file? remove the line, or pass --skip-invalid to leave such lines out (--max-line-bytes raises the limit)",
      exitCode: ExitCode.usage,
    });
  }

  /** Handles line [s, e) of `b`; true when it became the head. */
  private take(b: Buffer, s: number, e: number): boolean {
    const lineNo = this.reader.lineNo;
    // A UTF-8 byte order mark (some editors add one) is not part of the first event.
    if (lineNo === 1 && b[s] === 0xef && b[s + 1] === 0xbb && b[s + 2] === 0xbf) s += 3;
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
      const bad = { input: this.opts.name, line: lineNo, column, reason };
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
    h.line = lineNo;
    if (this.hasHead && !this.outOfOrder && compareEvents(h, this.head) < 0) {
      this.outOfOrder = true;
      if (this.opts.checkOrder === "note") return this.accept(h);
      const prev = this.head;
      const detail =
        h.tsHi === prev.tsHi && h.tsLo === prev.tsLo && tsText(h) === tsText(prev)
          ? `id ${keyText(h)} after ${keyText(prev)} at the same ts ${tsText(h)}`
          : `ts ${tsText(h)} after ${tsText(prev)} on line ${prev.line}`;
      throw new OutOfOrder(this.opts.origin, this.opts.name, lineNo, detail);
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
