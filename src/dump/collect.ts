import { EventFlag, compactJson } from "../events/scan.ts";
import { IdTable } from "../events/idtable.ts";
import { compareIds, compareSplitTs } from "../events/order.ts";
import { STRING_ID, type PageBatch } from "./messages.ts";
import { grown } from "../typed.ts";
import { EventArena } from "../events/arena.ts";
import { HeldRuns } from "../events/heldruns.ts";
import { AFTER_ALL, BEFORE_ALL, lowerFloor, type TsFloor } from "./floor.ts";

/**
 * Arena chunk size. A chunk is reused once all its events are written, and
 * events of one chunk come from the few pages that arrived together: small
 * chunks free sooner (bench: 4 MiB chunks held 52 MiB for 25 MiB of
 * events, 256 KiB chunks 33 MiB).
 */
const CHUNK = 256 * 1024;

/** Per-entry state bits. */
const SIGNED = 1;
/** Held by an earlier backup (`--ids-from`): counted, never written. */
const EXISTING = 2;
/** Handed out by `drain`: its bytes are (being) written and a later copy cannot replace it. */
const RELEASED = 4;
/** Its bytes are in a spill run (`runOf`), not in memory. */
const SPILLED = 8;

/**
 * Where held events go when they pass the memory budget (dump/spill.ts):
 * `writeRun` takes them (sorted) with `copyEvent` and names the run.
 */
export type SpillTarget = {
  /** Held bytes allowed with `entries` events known (their ids stay in memory). */
  limit(entries: number): number;
  writeRun(order: Uint32Array, from: Collector): number;
};

export { AFTER_ALL, BEFORE_ALL, lowerFloor, type TsFloor } from "./floor.ts";
/** Is the split ts (hi, lo) older than `f`? */
const below = (hi: number, lo: number, f: TsFloor): boolean => compareSplitTs(hi, lo, f.hi, f.lo) < 0;

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
  /**
   * New events older than what was already written: a peer served them
   * after promising (by its cursor) only newer ones. Kept and written, but
   * out of order.
   */
  late: number;
  /** The most event bytes held in memory at once, waiting to be written. */
  peakHeldBytes: number;
  /** Events written to spill runs (--max-memory), and how many runs. */
  spilledEvents: number;
  spilledRuns: number;
};

/**
 * Keeps one copy of every event, by id, as the exact bytes a peer served.
 * Kept bytes are copied out of the page buffers into an arena so that a page
 * is freed as soon as it is read: memory follows the unique events, not the
 * (overlapping) pages. Per event it keeps 4 id words, the split ts, where its
 * bytes are and a state byte; no string or object per event.
 *
 * Events leave in ts order through `drain(floor)`: once no peer can send
 * anything older than `floor`, everything below it is final, so it is
 * sorted, written and its arena chunks reused. Only the ids stay (for
 * dedup); the bytes in memory are those of the window between the slowest
 * and the fastest peer.
 */
export class Collector extends EventArena {
  readonly stats: CollectStats = { fetched: 0, unique: 0, duplicates: 0, replaced: 0, existing: 0, bytes: 0, late: 0, peakHeldBytes: 0, spilledEvents: 0, spilledRuns: 0 };
  /** Hex ids (nearly all of them) by their four words; other ids by their string key. */
  private readonly index = new IdTable();
  private readonly stringOf = new Map<number, string>();
  private count = 0;
  private state = new Uint8Array(1024);
  /**
   * Events in each arena chunk not yet written. Once every event in a chunk
   * is written, its buffer goes to `spare` and its number to `freeSlots`:
   * drained entries never look at their chunk again, so both are reused and
   * the chunk list stays as long as the most chunks ever in use, however long
   * the dump.
   */
  private readonly live: number[] = [];
  private readonly freeSlots: number[] = [];
  private readonly spare: Buffer[] = [];
  /** Entries kept and not yet drained (EXISTING entries are never here), as runs: the new events of one page. */
  private readonly held = new HeldRuns();
  private heldBytes = 0;
  /** Everything below this has been drained. */
  private drained: TsFloor = BEFORE_ALL;
  private drainBuffer = new Uint32Array(0);
  /** Reused by every `lines` call: drains are written one after the other. */
  private lineBuffer: Buffer | undefined;
  /** Set before the first `add` to bound memory (--max-memory). */
  spill: SpillTarget | undefined;
  /** Per entry: the spill run that holds its current copy (0: none); made at the first spill. */
  private runOf: Uint32Array | undefined;

  /** Ids to leave out because an earlier backup has them. */
  skipExisting(keys: Iterable<string>): void {
    for (const k of keys) {
      if (this.index.findText(k) >= 0) continue;
      const n = this.newEntry(this.index.addText());
      this.state[n] = EXISTING;
    }
  }

  /** Makes room for entry `n`, the id table's number of the id just added. */
  private newEntry(n: number): number {
    this.count = n + 1;
    this.room(n);
    return n;
  }

  add(batch: PageBatch): void {
    const keys = batch.ids.length > 0 ? batch.ids.split("\n") : [];
    let nextKey = 0;
    const { start, end, flags, tsHi, tsLo, idWords } = batch;
    const page = Buffer.from(batch.bytes.buffer, batch.bytes.byteOffset, batch.bytes.length);
    const s = this.stats;
    // This page's new events: a run that hold() extends (compactHeld may move it meanwhile).
    this.held.open();
    // New events that sit next to each other in the page are copied as one run.
    let runFrom = -1;
    let runTo = -1;
    for (let i = 0; i < batch.count; i++) {
      s.fetched++;
      const key = flags[i]! & STRING_ID ? keys[nextKey++]! : undefined;
      const at = key === undefined ? this.index.find(idWords, i * 4) : this.index.findOther(key);
      const isSigned = (flags[i]! & EventFlag.signed) !== 0;
      if (at >= 0) {
        const st = this.state[at]!;
        if (st & EXISTING) {
          s.existing++;
          continue;
        }
        s.duplicates++;
        // Two copies of one event can differ in bytes (a peer that dropped `sig`): keep the signed one.
        // (A released copy is final: every peer had moved past its ts when it was drained.)
        if (isSigned && !(st & (SIGNED | RELEASED))) {
          s.bytes -= this.lengthOf[at]!;
          if (st & SPILLED) {
            // The run's copy is stale now (the merge skips it): the signed one is held again.
            this.runOf![at] = 0;
            this.hold(at);
          } else {
            this.heldBytes -= this.lengthOf[at]!;
            this.unlive(this.chunkOf[at]!);
          }
          this.state[at] = (st & ~SPILLED) | SIGNED;
          this.tsHi[at] = tsHi[i]!;
          this.tsLo[at] = tsLo[i]!;
          if (runFrom >= 0) this.flushRun(page, runFrom, runTo);
          runFrom = -1;
          this.storeOne(at, page, start[i]!, end[i]!, flags[i]!);
          s.replaced++;
        }
        continue;
      }
      const n = this.newEntry(key === undefined ? this.index.add() : this.index.addOther(key));
      if (key !== undefined) this.stringOf.set(n, key);
      this.tsHi[n] = tsHi[i]!;
      this.tsLo[n] = tsLo[i]!;
      this.state[n] = isSigned ? SIGNED : 0;
      if (below(tsHi[i]!, tsLo[i]!, this.drained)) s.late++;
      this.hold(n);
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
        if (this.used + (to - from) > CHUNK || this.current < 0) this.nextChunk(to - from);
        runFrom = from;
      }
      runTo = to;
      const c = this.current;
      this.chunkOf[n] = c;
      this.live[c]!++;
      this.offsetOf[n] = this.used + (from - runFrom);
      this.lengthOf[n] = to - from;
      s.bytes += to - from;
      this.heldBytes += to - from;
    }
    if (runFrom >= 0) this.flushRun(page, runFrom, runTo);
    if (this.heldBytes > s.peakHeldBytes) s.peakHeldBytes = this.heldBytes;
    this.held.close(this.tsHi, this.tsLo);
    if (this.spill && this.heldBytes > this.spill.limit(this.count)) this.spillHeld();
  }

  /** Everything held goes to a sorted run on disk; from now on only the final merge writes. */
  private spillHeld(): void {
    this.runOf ??= new Uint32Array(this.tsHi.length);
    // Its own buffer: a drain being written may still use drainBuffer.
    const order = this.take(AFTER_ALL, new Uint32Array(this.held.count), SPILLED);
    const run = this.spill!.writeRun(order, this);
    for (const n of order) this.runOf[n] = run;
    this.stats.spilledEvents += order.length;
    this.stats.spilledRuns++;
  }

  /** For the final merge with the runs: every held event, sorted, released. */
  unspilled(): Uint32Array {
    return this.take(AFTER_ALL, new Uint32Array(this.held.count), RELEASED);
  }

  /** Copies held event `n` into `out` at `at` (it then counts as written); returns its length. */
  copyEvent(n: number, out: Buffer, at: number): number {
    const len = this.copyOut(n, out, at);
    this.heldBytes -= len;
    this.unlive(this.chunkOf[n]!);
    return len;
  }

  /** Is `run`'s copy of event `n` the one kept (not replaced since by a signed copy)? */
  inRun(n: number, run: number): boolean {
    return this.runOf?.[n] === run;
  }

  /** The output order: by ts, then id. */
  compare(a: number, b: number): number {
    const { tsHi, tsLo } = this;
    return compareSplitTs(tsHi[a]!, tsLo[a]!, tsHi[b]!, tsLo[b]!) || this.compareIds(a, b);
  }

  private compareIds(a: number, b: number): number {
    return compareIds(this.index.records, a * 4, this.stringOf.get(a), b * 4, this.stringOf.get(b));
  }

  private hold(n: number): void {
    this.held.push(n);
  }

  private flushRun(page: Buffer, from: number, to: number): void {
    page.copy(this.chunks[this.current]!, this.used, from, to);
    this.used += to - from;
  }

  protected nextChunk(atLeast: number): void {
    const left = this.current;
    const buffer = (atLeast <= CHUNK ? this.spare.pop() : undefined) ?? Buffer.allocUnsafe(Math.max(CHUNK, atLeast));
    const slot = this.freeSlots.pop() ?? this.chunks.length;
    this.chunks[slot] = buffer;
    this.live[slot] = 0;
    this.current = slot;
    this.used = 0;
    // The chunk being left may already be all written.
    if (left >= 0 && this.live[left] === 0) this.retire(left);
  }

  /** One event of chunk `c` is written or replaced; an all-written chunk that is no longer filled is reused. */
  private unlive(c: number): void {
    if (--this.live[c]! === 0 && c !== this.current) this.retire(c);
  }

  private retire(c: number): void {
    const chunk = this.chunks[c]!;
    this.chunks[c] = undefined;
    this.freeSlots.push(c);
    // Oversized chunks (one huge event) are left to the GC.
    if (chunk.length === CHUNK) this.spare.push(chunk);
  }

  private storeOne(n: number, page: Buffer, s: number, e: number, flags: number): void {
    if (flags & EventFlag.multiline) {
      const raw = Buffer.from(compactJson(page.subarray(s, e)));
      this.store(n, raw, 0, raw.length);
    } else this.store(n, page, s, e);
    const len = this.lengthOf[n]!;
    this.live[this.current]!++;
    this.stats.bytes += len;
    this.heldBytes += len;
  }

  protected growColumns(size: number): void {
    this.state = grown(this.state, size);
    if (this.runOf) this.runOf = grown(this.runOf, size);
  }

  /**
   * The held events below `floor`, ordered by (ts, id), now released: the
   * caller writes them (with `lines`) before the next drain. Two dumps of
   * the same events are byte-identical; draining everything at once
   * (`AFTER_ALL`) or floor by floor gives the same bytes, since every drain
   * holds only events older than everything held back.
   */
  drain(floor: TsFloor): Uint32Array {
    // Once events were spilled, what lies below a floor may sit in a run: the final merge (`unspilled`) writes it all.
    if (this.stats.spilledRuns > 0) return new Uint32Array(0);
    // Reused: a drain is written before the next one is asked for (and drains come once a page).
    if (this.drainBuffer.length < this.held.count) this.drainBuffer = new Uint32Array(this.held.capacity);
    const order = this.take(floor, this.drainBuffer, RELEASED);
    if (lowerFloor(this.drained, floor)) this.drained = floor;
    return order;
  }

  /** The held events below `floor`, out of the held runs, sorted, each marked `mark`. */
  private take(floor: TsFloor, out: Uint32Array, mark: number): Uint32Array {
    const { tsHi, tsLo, state } = this;
    const order = out.subarray(0, this.held.take(tsHi, tsLo, floor, out));
    for (let k = 0; k < order.length; k++) state[order[k]!]! |= mark;
    // Sorted runs, concatenated: the sort merges them.
    order.sort((a, b) => compareSplitTs(tsHi[a]!, tsLo[a]!, tsHi[b]!, tsLo[b]!) || this.compareIds(a, b));
    return order;
  }

  /** Events kept and not yet drained. */
  get heldEvents(): number {
    return this.held.count;
  }

  /** Bytes of arena chunks allocated (in use or spare). */
  get arenaBytes(): number {
    let n = 0;
    for (const c of this.chunks) n += c?.length ?? 0;
    for (const c of this.spare) n += c.length;
    return n;
  }

  /**
   * The kept events as JSON Lines, in `order`, in chunks of about
   * `chunkSize` bytes. One buffer is reused: a chunk is valid until the
   * consumer asks for the next (Output.write consumes it before resolving),
   * so writing 100 MB leaves 1 MB of garbage, not 100.
   */
  *lines(order: Uint32Array, chunkSize = 1 << 20): Generator<Uint8Array> {
    if (this.lineBuffer?.length !== chunkSize) this.lineBuffer = Buffer.allocUnsafe(chunkSize);
    let out = this.lineBuffer;
    let used = 0;
    const { lengthOf } = this;
    for (let k = 0; k < order.length; k++) {
      const n = order[k]!;
      const len = lengthOf[n]!;
      if (used + len + 1 > out.length) {
        if (used > 0) yield out.subarray(0, used);
        if (len + 1 > out.length) out = Buffer.allocUnsafe(len + 1);
        used = 0;
      }
      used += this.copyEvent(n, out, used);
      out[used++] = 0x0a;
    }
    if (used > 0) yield out.subarray(0, used);
  }
}
