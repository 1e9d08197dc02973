/**
 * The merge's last phase: the streamed inputs, the spilled runs and the run
 * in memory merged into the output, copies left out, ids checked for a
 * second ts. One pass; it throws OutOfOrder when a streamed input turns out
 * not to be sorted, and the caller starts again with that input in runs.
 */
import type { Output } from "../io/output.ts";
import { type SealedWriter, TempSealer } from "../io/tempfile.ts";
import { IdSet } from "../events/idset.ts";
import { type Head, keyText } from "../events/order.ts";
import type { Cursor, JsonlCursor } from "./cursor.ts";
import { mergeCursors } from "./heap.ts";
import { type MergeInputs, type MergePlan, SHOWN } from "./merge-plan.ts";
import { readSizeFor, type SortedRuns } from "./merge-runs.ts";
import type { RunStats } from "./runs.ts";

/** Output written to a private (sealed) file first, then copied to stdout once complete. */
export class Spool {
  private readonly file: SealedWriter;
  constructor(
    private readonly sealer: TempSealer,
    readonly path: string,
  ) {
    this.file = sealer.writer(path);
  }
  write(chunk: Uint8Array): void {
    this.file.write(chunk);
  }
  async copyTo(out: Output): Promise<void> {
    this.file.close();
    const r = this.sealer.reader(this.path);
    try {
      for (let block = r.next(); block; block = r.next()) await out.write(block);
    } finally {
      r.close();
    }
  }
  close(): void {
    this.file.close();
  }
}

/** Event bytes + "\n" into a 1 MiB buffer handed to `sink`, reused once the sink is done with it (outputs and the spool copy). */
export class LineOut {
  private buf = Buffer.allocUnsafe(1 << 20);
  private used = 0;
  events = 0;
  bytes = 0;
  constructor(private readonly sink: (chunk: Uint8Array) => void | Promise<void>) {}

  add(h: Head): void | Promise<void> {
    if (this.used + (h.e - h.s) + 1 > this.buf.length) return this.flushThenPut(h);
    this.put(h);
  }

  private async flushThenPut(h: Head): Promise<void> {
    await this.flush();
    if (h.e - h.s + 1 > this.buf.length) this.buf = Buffer.allocUnsafe(h.e - h.s + 1);
    this.put(h);
  }

  private put(h: Head): void {
    const len = h.e - h.s;
    h.buf.copy(this.buf, this.used, h.s, h.e);
    this.buf[this.used + len] = 0x0a;
    this.used += len + 1;
    this.events++;
    this.bytes += len + 1;
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const chunk = this.buf.subarray(0, this.used);
    this.used = 0;
    await this.sink(chunk);
  }
}

export type FinalMerge = { out: LineOut; stats: RunStats; conflicts: number; ids: IdSet | undefined };

export type FinalMergeContext = {
  plan: MergePlan;
  reading: MergeInputs;
  runs: SortedRuns;
  /** Remember written ids (the conflict check). */
  checkIds: boolean;
  /** Where the merged bytes go: the output, or the spool. */
  sink: (chunk: Uint8Array) => void | Promise<void>;
  /** Cursors open now: closed at once on an abort. */
  cursors: Cursor[];
  warn: (message: string) => void;
  info: (message: string) => void;
};

/** Inputs read as streams in the final merge: those not in runs. */
export const streamedInputs = (plan: MergePlan): number[] => plan.inputs.map((_, i) => i).filter((i) => !plan.mustSort.has(i));

/** One pass of the final merge; throws OutOfOrder when a streamed input is found out of order. */
export async function finalMerge(ctx: FinalMergeContext): Promise<FinalMerge> {
  const { plan, reading, runs, cursors } = ctx;
  const streamed = streamedInputs(plan);
  const jsonl: JsonlCursor[] = [];
  try {
    for (const i of streamed) {
      const c = await reading.cursor(i, "throw", readSizeFor(plan.maxMemory, streamed.length));
      jsonl.push(c);
      cursors.push(c);
    }
    cursors.push(...runs.open());

    const out = new LineOut(ctx.sink);
    const stats: RunStats = { duplicates: 0, replaced: 0 };
    const ids = ctx.checkIds ? new IdSet(plan.idLimit) : undefined;
    let conflicts = 0;
    let idCheckStopped = false;
    const emit = (h: Head): void | Promise<void> => {
      if (ids) {
        if (!ids.add(h)) {
          conflicts++;
          if (conflicts <= SHOWN) {
            ctx.warn(`${reading.reports[h.origin]!.name}:${h.line}: left out: id ${keyText(h)} was already written with another ts (the same id should never have two)`);
          }
          return;
        }
        if (ids.full && !idCheckStopped) {
          idCheckStopped = true;
          ctx.info(`stopped checking ids for conflicting timestamps after ${ids.size} events (memory limit; see --max-memory)`);
        }
      }
      reading.tick("merge");
      return out.add(h);
    };
    await mergeCursors(cursors, emit, stats);
    await out.flush();
    for (const [k, c] of jsonl.entries()) {
      Object.assign(reading.reports[streamed[k]!]!, { lines: c.lines, events: c.events, invalid: c.invalid, sorted: true });
    }
    return { out, stats, conflicts, ids };
  } finally {
    for (const c of cursors) await c.close();
    cursors.length = 0;
  }
}
