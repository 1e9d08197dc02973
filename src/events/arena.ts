/**
 * Events held in memory as columns, with no object or string per event: the
 * split ts (splitTsInto) and where each event's bytes are, in chunks of an
 * arena. The dump's collector and the merge's run builder extend it with
 * their own columns and their own policy for chunks.
 */
import { grown } from "../typed.ts";

export abstract class EventArena {
  /** The ts of event n, split: the digits before the last nine, and the last nine. */
  protected tsHi = new Float64Array(1024);
  protected tsLo = new Int32Array(1024);
  /** Event n's bytes: chunks[chunkOf[n]], from offsetOf[n], lengthOf[n] long. */
  protected chunkOf = new Uint32Array(1024);
  protected offsetOf = new Uint32Array(1024);
  protected lengthOf = new Uint32Array(1024);
  protected chunks: (Buffer | undefined)[] = [];
  /** The chunk being filled (-1 before the first), and how far. */
  protected current = -1;
  protected used = 0;

  /** Makes `current` a chunk with room for `atLeast` bytes (and `used` where they go). */
  protected abstract nextChunk(atLeast: number): void;

  /** Grows the subclass's own columns to `size` events. */
  protected abstract growColumns(size: number): void;

  /** Makes room for event n (events are numbered 0, 1, ...). */
  protected room(n: number): void {
    if (n < this.tsHi.length) return;
    const size = this.tsHi.length * 2;
    this.tsHi = grown(this.tsHi, size);
    this.tsLo = grown(this.tsLo, size);
    this.chunkOf = grown(this.chunkOf, size);
    this.offsetOf = grown(this.offsetOf, size);
    this.lengthOf = grown(this.lengthOf, size);
    this.growColumns(size);
  }

  /** Copies bytes [s, e) of `src` into the arena as event n's. */
  protected store(n: number, src: Buffer, s: number, e: number): void {
    const len = e - s;
    if (this.current < 0 || this.used + len > this.chunks[this.current]!.length) this.nextChunk(len);
    src.copy(this.chunks[this.current]!, this.used, s, e);
    this.chunkOf[n] = this.current;
    this.offsetOf[n] = this.used;
    this.lengthOf[n] = len;
    this.used += len;
  }

  /** Copies event n's bytes into `out` at `at` (Buffer#copy takes offsets: no view object per event); their length. */
  protected copyOut(n: number, out: Buffer, at: number): number {
    const len = this.lengthOf[n]!;
    const off = this.offsetOf[n]!;
    this.chunks[this.chunkOf[n]!]!.copy(out, at, off, off + len);
    return len;
  }

  eventLength(n: number): number {
    return this.lengthOf[n]!;
  }
}
