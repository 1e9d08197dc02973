/**
 * The merge's second phase: inputs that are not sorted are cut into sorted
 * runs of at most the run budget, spilled to a private temporary directory;
 * the last run may stay in memory. Too many runs are first merged in groups
 * into longer ones, so the final merge has at most FAN_IN sources.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ExitCode, NaraError } from "../errors.ts";
import { type TempSealer } from "../io/tempfile.ts";
import type { Cursor } from "./cursor.ts";
import { mergeCursors, yieldToLoop } from "./heap.ts";
import type { MergeInputs, MergePlan } from "./merge-plan.ts";
import { RunBuilder, RunCursor, RunWriter, type RunStats } from "./runs.ts";

/** Runs merged at once; more are first merged in groups into longer runs. */
export const FAN_IN = 128;

/** The private temporary directory, created on first use. */
export class TempDir {
  path: string | undefined;
  private n = 0;
  constructor(private readonly parent: string) {}
  file(prefix: string): string {
    if (this.path === undefined) {
      try {
        this.path = mkdtempSync(join(this.parent, "nara-merge-"));
      } catch (err) {
        throw new NaraError(`cannot create a temporary directory in ${this.parent}`, {
          cause: err,
          hint: "set --temp-dir (or TMPDIR) to a writable directory with room for about the size of the inputs",
          exitCode: ExitCode.usage,
        });
      }
    }
    return join(this.path, `${prefix}-${++this.n}`);
  }
  remove(): void {
    if (this.path === undefined) return;
    rmSync(this.path, { recursive: true, force: true });
    this.path = undefined;
  }
}

/** Buffer of each of `sources` cursors read at once in a merge: maxMemory / 8 shared out, 64 KiB to 1 MiB each. */
export const readSizeFor = (maxMemory: number, sources: number): number =>
  Math.max(64 << 10, Math.min(1 << 20, Math.floor(maxMemory / 8 / Math.max(1, sources))));

/** The sorted runs of the inputs read so far: spilled files, and the last run still in memory. */
export class SortedRuns {
  /** Copies left out while runs were made and merged. */
  readonly stats: RunStats = { duplicates: 0, replaced: 0 };
  /** Runs written to temporary files. */
  spilled = 0;
  /** Cursors open now: closed at once on an abort. */
  cursors: Cursor[] = [];
  private readonly files: string[] = [];
  private readonly builder: RunBuilder;
  private memRun: Uint32Array | undefined;

  constructor(
    private readonly plan: MergePlan,
    private readonly reading: MergeInputs,
    private readonly temp: TempDir,
    private readonly sealer: TempSealer,
    private readonly debug: (message: string) => void,
  ) {
    this.builder = new RunBuilder(plan.runBudget);
  }

  /** Reads these inputs into runs; the last run stays in memory. */
  async add(inputs: number[]): Promise<void> {
    if (this.memRun) {
      this.spill(this.memRun);
      this.memRun = undefined;
    }
    for (const i of inputs) await this.read(i);
    if (this.builder.count > 0) this.memRun = this.builder.sortedUnique(this.stats);
  }

  /** Merges groups of spilled runs into longer ones until they and `others` sources are at most FAN_IN. */
  async reduce(others: number): Promise<void> {
    others += this.memRun ? 1 : 0;
    while (this.files.length + others > FAN_IN) {
      this.reading.checkSignal();
      const group = this.files.splice(0, Math.min(FAN_IN, this.files.length + others - FAN_IN + 1));
      const path = this.temp.file("run");
      const w = new RunWriter(this.sealer.writer(path));
      const readSize = readSizeFor(this.plan.maxMemory, group.length);
      this.cursors = group.map((p) => new RunCursor(this.sealer.reader(p), readSize));
      try {
        await mergeCursors(this.cursors, (h) => w.write(h), this.stats);
        w.finish();
      } catch (err) {
        w.close();
        throw err;
      } finally {
        for (const c of this.cursors) await c.close();
        this.cursors = [];
      }
      for (const p of group) rmSync(p, { force: true });
      this.files.push(path);
      this.debug(`merged ${group.length} runs into ${path}`);
    }
  }

  /** A cursor over each run, for the final merge. */
  open(): Cursor[] {
    const readSize = readSizeFor(this.plan.maxMemory, this.files.length);
    const cursors: Cursor[] = this.files.map((p) => new RunCursor(this.sealer.reader(p), readSize));
    if (this.memRun) cursors.push(this.builder.cursor(this.memRun));
    return cursors;
  }

  release(): void {
    this.builder.release();
  }

  /** Reads input i into the run builder, spilling full runs. */
  private async read(i: number): Promise<void> {
    const cur = await this.reading.cursor(i, "note");
    this.cursors = [cur];
    try {
      let count = 0;
      while (await advance(cur)) {
        if (++count % 8192 === 0) {
          await yieldToLoop();
          this.reading.checkSignal();
        }
        this.builder.add(cur.head);
        this.reading.tick("sort");
        if (this.builder.full) this.spill(this.builder.sortedUnique(this.stats));
      }
    } finally {
      await cur.close();
      this.cursors = [];
    }
    Object.assign(this.reading.reports[i]!, { lines: cur.lines, events: cur.events, invalid: cur.invalid, sorted: !cur.outOfOrder });
  }

  private spill(order: Uint32Array): void {
    this.reading.checkSignal();
    const path = this.temp.file("run");
    this.builder.spill(this.sealer.writer(path), order);
    this.files.push(path);
    this.spilled++;
    this.debug(`spilled run ${this.spilled}: ${order.length} events to ${path}`);
    const big = this.builder.bytes >= 1 << 20;
    this.builder.reset();
    // The run's garbage (the sort's scratch, key strings of odd ids) would otherwise pile up until the
    // engine's own GC gets round to it: ~18 MiB less peak RSS at --max-memory 32M, no measurable time.
    if (big) Bun.gc(true);
  }
}

async function advance(c: Cursor): Promise<boolean> {
  const r = c.advance();
  return r === true || (r !== false && (await r));
}
