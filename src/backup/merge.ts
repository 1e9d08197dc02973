/**
 * merge: several backups into one deduplicated JSON Lines file in (ts, id)
 * order, byte for byte what dump-events would write for the same events.
 *
 * Sorted inputs (as dump-events writes them) are merged as streams with a
 * heap: memory is a chunk or two per input. An input that is not sorted
 * (found while reading it, or every input with `presorted: false`, or stdin
 * when the order is not promised) is first cut into sorted runs of at most
 * `maxMemory` bytes, spilled to a private temporary directory, and the runs
 * join the same heap merge. When streaming finds an input out of order, the
 * output written so far is dropped and the merge starts again with that
 * input sorted first; runs already made are kept.
 *
 * Nothing reaches the final output name (a file) or stdout before the merge
 * is complete: a file is written under a temporary name and renamed, and
 * stdout is fed from a spool file when an input is still being streamed
 * (a malformed line could appear at its end).
 *
 * The phases: merge-plan.ts (checks, budgets, the inputs read), merge-runs.ts
 * (sorted runs), merge-final.ts (the final merge); this file runs them.
 */
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { ExitCode, NaraError } from "../errors.ts";
import { openOutput, type Compression, type Output } from "../io/output.ts";
import { defaultMaxMemory, TempSealer } from "../io/tempfile.ts";
import { type Cursor, OutOfOrder } from "./cursor.ts";
import { type FinalMerge, finalMerge, Spool, streamedInputs } from "./merge-final.ts";
import { interruptedError, MergeInputs, planMerge, requireInputs, SHOWN } from "./merge-plan.ts";
import { FAN_IN, SortedRuns, TempDir } from "./merge-runs.ts";

export type MergeOptions = {
  /** Paths; "-" is stdin (at most once). */
  inputs: string[];
  /** A file path, or undefined / "-" for stdout. */
  output?: string;
  /**
   * true: the inputs are sorted, an event out of order is an error;
   * false: sort every input with bounded memory;
   * undefined (default): stream, and sort the inputs found out of order.
   */
  presorted?: boolean;
  /** Bytes of events held in memory for sorting (default: defaultMaxMemory()). */
  maxMemory?: number;
  /** Where the private temporary directory goes (default: os.tmpdir(), i.e. $TMPDIR or /tmp). */
  tempDir?: string;
  /** Leave malformed lines out with a warning instead of failing. */
  skipInvalid?: boolean;
  /** Longer lines are invalid lines (default DEFAULT_MAX_LINE_BYTES, 1 MiB). */
  maxLineBytes?: number;
  /** Remember written ids to catch one id under two timestamps (default true; bounded by maxMemory / 4). */
  checkIds?: boolean;
  /** The soul's seed, asked for only when an input is encrypted. */
  soul?: () => { seed: Uint8Array } | undefined;
  /** Output compression (default: by the file's extension; none for stdout). */
  compress?: Compression;
  /** Encrypt the output with the key of this soul seed. */
  encryptSeed?: Uint8Array;
  /**
   * Stops the merge. The temporary files and the partial output are removed the moment it aborts (a command
   * exits right after), and the merge then rejects with an interrupted error (exit code 130).
   */
  signal?: AbortSignal;
};

export type MergeProgress = {
  /** "sort": reading inputs into runs; "merge": the final merge. */
  phase: "sort" | "merge";
  /** Events read (all phases, restarts included). */
  events: number;
  /** Raw (possibly compressed) input bytes read in this pass, and the inputs' total size (0 when unknown). */
  bytesRead: number;
  bytesTotal: number;
};

export type MergeHooks = {
  onWarn?: (message: string) => void;
  onInfo?: (message: string) => void;
  onDebug?: (message: string) => void;
  onProgress?: (p: MergeProgress) => void;
};

export type InputReport = {
  name: string;
  compression: "none" | "gzip" | "zstd";
  encrypted: boolean;
  /** Lines that were not blank. */
  lines: number;
  /** Valid event lines. */
  events: number;
  invalid: number;
  /** In (ts, id) order; null when not known (sorted without being streamed). */
  sorted: boolean | null;
};

export type MergeSummary = {
  inputs: InputReport[];
  output: string;
  /** Valid event lines read, all inputs. */
  read: number;
  invalid: number;
  written: number;
  /** Copies of an event already kept (left out). */
  duplicates: number;
  /** Kept copies replaced by a signed copy of the same event. */
  replaced: number;
  /** Events left out because their id was already written with another ts. */
  conflicts: number;
  /** "complete", "partial" (stopped at its memory limit) or "off". */
  idCheck: "complete" | "partial" | "off";
  /** Sorted runs written to temporary files. */
  runs: number;
  /** Times the merge started again because an input was found out of order. */
  restarts: number;
  /** Bytes written (before compression/encryption). */
  bytes: number;
  seconds: number;
  exitCode: ExitCode;
};

/** defaultMaxMemory is shared with the dump; FAN_IN is the runs' (merge-runs.ts). */
export { defaultMaxMemory, FAN_IN, requireInputs };

export async function mergeBackups(opts: MergeOptions, hooks: MergeHooks = {}): Promise<MergeSummary> {
  const started = performance.now();
  const plan = planMerge(opts);
  const { toStdout, mustSort } = plan;
  const warn = hooks.onWarn ?? (() => {});
  const info = hooks.onInfo ?? (() => {});
  const temp = new TempDir(opts.tempDir ?? tmpdir());
  const sealer = new TempSealer();
  const reading = new MergeInputs(plan, opts, hooks);
  const runs = new SortedRuns(plan, reading, temp, sealer, hooks.onDebug ?? (() => {}));
  const built = new Set<number>();
  let restarts = 0;

  let output: Output | undefined;
  let spool: Spool | undefined;
  const cursors: Cursor[] = [];
  const cleanup = () => {
    output?.abort();
    spool?.close();
    for (const c of [...cursors, ...runs.cursors]) void c.close();
    temp.remove();
  };
  const signal = opts.signal;
  signal?.addEventListener("abort", cleanup);
  const openFinal = () => openOutput(opts.output, { compress: opts.compress, encryptSeed: opts.encryptSeed });

  try {
    reading.checkSignal();
    if (!toStdout) output = openFinal(); // an unwritable path fails before any reading
    let merged: FinalMerge;
    for (;;) {
      // 1. Inputs that need sorting and are not in runs yet.
      const toBuild = [...mustSort].filter((i) => !built.has(i)).sort((a, b) => a - b);
      if (toBuild.length > 0) {
        await runs.add(toBuild);
        for (const i of toBuild) built.add(i);
      }

      // 2. The final merge: streamed inputs, spilled runs, the run still in memory.
      const streamed = streamedInputs(plan);
      reading.bytesRead = [...built].reduce((n, i) => n + plan.sizes[i]!, 0);
      await runs.reduce(streamed.length);
      if (toStdout && streamed.length > 0) spool = new Spool(sealer, temp.file("spool"));
      if (toStdout && !spool) output ??= openFinal();
      const sink = spool ? (chunk: Uint8Array) => spool!.write(chunk) : (chunk: Uint8Array) => output!.write(chunk);
      try {
        merged = await finalMerge({ plan, reading, runs, checkIds: opts.checkIds !== false, sink, cursors, warn, info });
        break;
      } catch (err) {
        if (!(err instanceof OutOfOrder)) throw err;
        if (opts.presorted === true) {
          throw new NaraError(`${err.input}:${err.line}: not sorted: ${err.detail}`, {
            hint: "drop --presorted to have merge sort such inputs itself",
            exitCode: ExitCode.usage,
          });
        }
        info(`${err.input}:${err.line} is out of order (${err.detail}): sorting ${err.input} first, then merging again`);
        restarts++;
        mustSort.add(err.origin);
        if (spool) {
          spool.close();
          rmSync(spool.path, { force: true });
          spool = undefined;
        }
        if (output) {
          output.abort();
          output = toStdout ? undefined : openFinal();
        }
      }
    }

    if (spool) {
      output = openFinal();
      await spool.copyTo(output);
      spool.close();
    }
    reading.checkSignal();
    await output!.commit();
    return summarize(reading, runs, merged, output!.target, restarts, opts, started, warn);
  } catch (err) {
    cleanup();
    if (signal?.aborted) throw interruptedError();
    throw err;
  } finally {
    signal?.removeEventListener("abort", cleanup);
    spool?.close();
    runs.release();
    temp.remove();
  }
}

/** The closing warnings, and the summary. */
function summarize(
  reading: MergeInputs,
  runs: SortedRuns,
  merged: FinalMerge,
  output: string,
  restarts: number,
  opts: MergeOptions,
  started: number,
  warn: (message: string) => void,
): MergeSummary {
  const reports = reading.reports;
  for (const r of reports) if (r.encrypted && !opts.encryptSeed) warn(`${r.name} is encrypted, the merged output is not (pass --encrypt to encrypt it)`);
  const invalid = reports.reduce((n, r) => n + r.invalid, 0);
  if (reading.warned.size > 0 && invalid > reading.warned.size) warn(`${invalid} invalid lines left out in all`);
  if (merged.conflicts > SHOWN) warn(`${merged.conflicts} events left out in all for an id already written with another ts`);
  return {
    inputs: reports,
    output,
    read: reports.reduce((n, r) => n + r.events, 0),
    invalid,
    written: merged.out.events,
    duplicates: runs.stats.duplicates + merged.stats.duplicates,
    replaced: runs.stats.replaced + merged.stats.replaced,
    conflicts: merged.conflicts,
    idCheck: !merged.ids ? "off" : merged.ids.full ? "partial" : "complete",
    runs: runs.spilled,
    restarts,
    bytes: merged.out.bytes,
    seconds: (performance.now() - started) / 1000,
    exitCode: ExitCode.ok,
  };
}
