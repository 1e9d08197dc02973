/**
 * Entry numbers held as runs, each in ts order (the new events of one page:
 * peers serve in ts order), so that taking what lies below a floor takes a
 * prefix of each run instead of looking at every entry held. The split ts
 * columns are the caller's, passed at each call (they grow).
 */
import { grown } from "../typed.ts";
import { compareSplitTs } from "./order.ts";

/** A timestamp as the exact (hi, lo) halves of `splitTsInto`; ±Infinity for "before/after everything". */
export type TsFloor = { hi: number; lo: number };

export class HeldRuns {
  /** `held[runHead[r]..runEnd[r])` is what run r still holds. */
  private held = new Uint32Array(1024);
  private end = 0;
  private runHead: number[] = [];
  private runEnd: number[] = [];
  /** Entries held. */
  count = 0;

  /** Entries `held` has room for. */
  get capacity(): number {
    return this.held.length;
  }

  /** Starts a run, for `push`. */
  open(): void {
    this.runHead.push(this.end);
    this.runEnd.push(this.end);
  }

  /** Adds entry n to the run opened last. */
  push(n: number): void {
    if (this.end === this.held.length) this.compact(1);
    this.held[this.end++] = n;
    this.runEnd[this.runEnd.length - 1]++;
    this.count++;
  }

  /** The run opened last is complete: dropped when empty, sorted when it is out of ts order (a peer breaking the rules). */
  close(tsHi: Float64Array, tsLo: Int32Array): void {
    const { held } = this;
    const from = this.runHead[this.runHead.length - 1]!;
    const to = this.runEnd[this.runEnd.length - 1]!;
    if (from === to) {
      this.runHead.pop();
      this.runEnd.pop();
      return;
    }
    for (let k = from + 1; k < to; k++) {
      const a = held[k - 1]!;
      const b = held[k]!;
      if (compareSplitTs(tsHi[a]!, tsLo[a]!, tsHi[b]!, tsLo[b]!) > 0) {
        held.subarray(from, to).sort((x, y) => compareSplitTs(tsHi[x]!, tsLo[x]!, tsHi[y]!, tsLo[y]!));
        break;
      }
    }
  }

  /** Moves the entries older than `floor` out of the runs into `out` (sorted runs, concatenated); how many. */
  take(tsHi: Float64Array, tsLo: Int32Array, floor: TsFloor, out: Uint32Array): number {
    const { held, runHead, runEnd } = this;
    let taken = 0;
    let runs = 0;
    for (let r = 0; r < runHead.length; r++) {
      let k = runHead[r]!;
      const end = runEnd[r]!;
      for (; k < end; k++) {
        const n = held[k]!;
        if (compareSplitTs(tsHi[n]!, tsLo[n]!, floor.hi, floor.lo) >= 0) break;
        out[taken++] = n;
      }
      if (k === end) continue; // run done
      runHead[runs] = k;
      runEnd[runs++] = end;
    }
    runHead.length = runEnd.length = runs;
    this.count -= taken;
    if (this.end > 4096 && this.count < this.end / 4) this.compact(0);
    return taken;
  }

  /** Closes the gaps taken runs left in `held`, and grows it when that is not room enough. */
  private compact(atLeast: number): void {
    const { held, runHead, runEnd } = this;
    let to = 0;
    for (let r = 0; r < runHead.length; r++) {
      const len = runEnd[r]! - runHead[r]!;
      held.copyWithin(to, runHead[r]!, runEnd[r]!);
      runHead[r] = to;
      runEnd[r] = to + len;
      to += len;
    }
    this.end = to;
    if (to + atLeast > held.length / 2) this.held = grown(held, held.length * 2);
  }
}
