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
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode, NaraError, usageError, unreadableFile } from "../errors.ts";
import { openInput } from "../io/input.ts";
import { openOutput, type Compression, type Output } from "../io/output.ts";
import { type ByteSource, type Cursor, FileSource, type InvalidLine, JsonlCursor, OutOfOrder, StreamSource } from "./cursor.ts";
import { mergeCursors, yieldToLoop } from "./heap.ts";
import { IdSet } from "../events/idset.ts";
import { type Head, keyText } from "../events/order.ts";
import { RunBuilder, RunCursor, RunWriter, type RunStats } from "./runs.ts";
import { type SealedWriter, TempSealer } from "../io/tempfile.ts";
import { defaultMaxMemory } from "../io/tempfile.ts";

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
  /** On SIGINT/SIGTERM remove temporary files and the partial output, then exit 130/143 (default true). */
  handleSignals?: boolean;
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

/** Shared with the dump. */
export { defaultMaxMemory };

/** Runs merged at once; more are first merged in groups into longer runs. */
export const FAN_IN = 128;
/** Malformed lines and conflicts named one by one before "… in all". */
const SHOWN = 10;

/** The private temporary directory, created on first use. */
class TempDir {
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

/** Output written to a private (sealed) file first, then copied to stdout once complete. */
class Spool {
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
class LineOut {
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

async function advance(c: Cursor): Promise<boolean> {
  const r = c.advance();
  return r === true || (r !== false && (await r));
}

export async function mergeBackups(opts: MergeOptions, hooks: MergeHooks = {}): Promise<MergeSummary> {
  const started = performance.now();
  const { inputs } = opts;
  if (inputs.length === 0) throw usageError("no input given", "name the backups to merge: nara-backup merge A B ... -o OUT");
  if (inputs.filter((p) => p === "-").length > 1) throw usageError("stdin (-) can be read only once");
  // Fail before any work when an input is missing (openInput says the same later, with the file's kind).
  for (const path of inputs) {
    if (path === "-") continue;
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      throw unreadableFile(path, err);
    }
    if (isDir) throw usageError(`${path} is a directory, not a backup file`);
  }
  const maxMemory = opts.maxMemory ?? defaultMaxMemory();
  if (!(maxMemory >= 1)) throw usageError("--max-memory must be more than 0");
  const runBudget = Math.max(1, Math.floor((maxMemory * 3) / 4));
  const idLimit = Math.floor(maxMemory / 4);
  const toStdout = opts.output === undefined || opts.output === "-";
  const temp = new TempDir(opts.tempDir ?? tmpdir());
  const warn = hooks.onWarn ?? (() => {});
  const info = hooks.onInfo ?? (() => {});
  const debug = hooks.onDebug ?? (() => {});

  const reports: InputReport[] = inputs.map((p) => ({
    name: p === "-" ? "stdin" : p,
    compression: "none",
    encrypted: false,
    lines: 0,
    events: 0,
    invalid: 0,
    sorted: null,
  }));
  let bytesRead = 0;
  const warned = new Set<string>();
  const onInvalid = (bad: InvalidLine): boolean => {
    if (!opts.skipInvalid) return false;
    const where = `${bad.input}:${bad.line}`;
    if (warned.size < SHOWN && !warned.has(where)) {
      warned.add(where);
      warn(bad.bytes !== undefined ? `${where}: ${bad.reason}: left out` : `${where}: left out, not a valid event line: ${bad.reason} (column ${bad.column})`);
    }
    return true;
  };
  const countRead = (n: number) => (bytesRead += n);
  /** Opens input i; plain JSON Lines in a regular file is then read directly (synchronous reads, no chunk garbage). */
  const open = async (i: number): Promise<{ source: ByteSource; name: string }> => {
    const path = inputs[i]!;
    const opened = await openInput(path, { soul: opts.soul, onRead: countRead });
    const r = reports[i]!;
    r.name = opened.name;
    r.compression = opened.kind.compression;
    r.encrypted = opened.kind.encrypted;
    if (path !== "-" && r.compression === "none" && !r.encrypted && statSync(path).isFile()) {
      await opened.stream.cancel().catch(() => {});
      return { source: new FileSource(path, countRead), name: opened.name };
    }
    return { source: new StreamSource(opened.stream), name: opened.name };
  };

  // Which inputs go through sorted runs: all of them with presorted false; by default those that
  // cannot be read twice (stdin, pipes, <(...)), should one turn out unsorted after streaming began.
  const mustSort = new Set<number>();
  inputs.forEach((p, i) => {
    if (opts.presorted === false || (opts.presorted === undefined && (p === "-" || !statSync(p).isFile()))) mustSort.add(i);
  });
  const built = new Set<number>();
  const runFiles: string[] = [];
  const runStats: RunStats = { duplicates: 0, replaced: 0 };
  const builder = new RunBuilder(runBudget);
  const sealer = new TempSealer();
  let memRun: Uint32Array | undefined;
  let runsSpilled = 0;
  let restarts = 0;

  let output: Output | undefined;
  let spool: Spool | undefined;
  let cursors: Cursor[] = [];
  const cleanup = () => {
    output?.abort();
    spool?.close();
    for (const c of cursors) void c.close();
    temp.remove();
  };
  const onSignal = (signal: NodeJS.Signals) => {
    cleanup();
    process.exit(signal === "SIGINT" ? ExitCode.interrupted : 143);
  };
  if (opts.handleSignals !== false) {
    // on, not once: a Ctrl-C often arrives twice (from the terminal and relayed by npx or the launcher), and a second
    // one after a once-handler would kill the process before it removed its temporary file.
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  const openFinal = () => openOutput(opts.output, { compress: opts.compress, encryptSeed: opts.encryptSeed });

  const spillRun = (order: Uint32Array): void => {
    const path = temp.file("run");
    builder.spill(sealer.writer(path), order);
    runFiles.push(path);
    runsSpilled++;
    debug(`spilled run ${runsSpilled}: ${order.length} events to ${path}`);
    const big = builder.bytes >= 1 << 20;
    builder.reset();
    // The run's garbage (the sort's scratch, key strings of odd ids) would otherwise pile up until the
    // engine's own GC gets round to it: ~18 MiB less peak RSS at --max-memory 32M, no measurable time.
    if (big) Bun.gc(true);
  };

  let progressEvents = 0;
  const sizes = inputs.map((p) => (p === "-" ? 0 : statSync(p).size));
  const bytesTotal = sizes.reduce((a, b) => a + b, 0);
  const tick = (phase: MergeProgress["phase"]) => {
    if (hooks.onProgress && (++progressEvents & 0x3fff) === 0) hooks.onProgress({ phase, events: progressEvents, bytesRead, bytesTotal });
  };

  /** Reads input i into the run builder, spilling full runs. */
  const readIntoRuns = async (i: number): Promise<void> => {
    const opened = await open(i);
    const cur = new JsonlCursor(opened.source, { origin: i, name: opened.name, checkOrder: "note", onInvalid, maxLineBytes: opts.maxLineBytes });
    cursors = [cur];
    try {
      let count = 0;
      while (await advance(cur)) {
        if (++count % 8192 === 0) await yieldToLoop();
        builder.add(cur.head);
        tick("sort");
        if (builder.full) spillRun(builder.sortedUnique(runStats));
      }
    } finally {
      await cur.close();
      cursors = [];
    }
    Object.assign(reports[i]!, { lines: cur.lines, events: cur.events, invalid: cur.invalid, sorted: !cur.outOfOrder });
  };

  /** Merges groups of runs into longer ones until the final merge has at most FAN_IN sources. */
  const reduceRuns = async (others: number): Promise<void> => {
    while (runFiles.length + others > FAN_IN) {
      const group = runFiles.splice(0, Math.min(FAN_IN, runFiles.length + others - FAN_IN + 1));
      const path = temp.file("run");
      const w = new RunWriter(sealer.writer(path));
      const readSize = readSizeFor(group.length);
      cursors = group.map((p) => new RunCursor(sealer.reader(p), readSize));
      try {
        await mergeCursors(cursors, (h) => w.write(h), runStats);
        w.finish();
      } catch (err) {
        w.close();
        throw err;
      } finally {
        for (const c of cursors) await c.close();
        cursors = [];
      }
      for (const p of group) rmSync(p, { force: true });
      runFiles.push(path);
      debug(`merged ${group.length} runs into ${path}`);
    }
  };
  const readSizeFor = (runs: number) => Math.max(64 << 10, Math.min(1 << 20, Math.floor(maxMemory / 8 / Math.max(1, runs))));

  try {
    if (!toStdout) output = openFinal(); // an unwritable path fails before any reading
    let merged: { out: LineOut; stats: RunStats; conflicts: number; ids: IdSet | undefined };
    for (;;) {
      // 1. Inputs that need sorting and are not in runs yet.
      const toBuild = [...mustSort].filter((i) => !built.has(i)).sort((a, b) => a - b);
      if (toBuild.length > 0) {
        if (memRun) {
          spillRun(memRun);
          memRun = undefined;
        }
        for (const i of toBuild) {
          await readIntoRuns(i);
          built.add(i);
        }
        if (builder.count > 0) memRun = builder.sortedUnique(runStats);
      }

      // 2. The final merge: streamed inputs, spilled runs, the run still in memory.
      const streamed = inputs.map((_, i) => i).filter((i) => !mustSort.has(i));
      bytesRead = [...built].reduce((n, i) => n + sizes[i]!, 0);
      await reduceRuns(streamed.length + (memRun ? 1 : 0));
      const jsonl: JsonlCursor[] = [];
      for (const i of streamed) {
        const opened = await open(i);
        const c = new JsonlCursor(opened.source, { origin: i, name: opened.name, checkOrder: "throw", onInvalid, maxLineBytes: opts.maxLineBytes }, readSizeFor(streamed.length));
        jsonl.push(c);
        cursors.push(c);
      }
      const readSize = readSizeFor(runFiles.length);
      for (const p of runFiles) cursors.push(new RunCursor(sealer.reader(p), readSize));
      if (memRun) cursors.push(builder.cursor(memRun));

      if (toStdout && streamed.length > 0) spool = new Spool(sealer, temp.file("spool"));
      if (toStdout && !spool) output ??= openFinal();
      const sink = spool ? (chunk: Uint8Array) => spool!.write(chunk) : (chunk: Uint8Array) => output!.write(chunk);
      const out = new LineOut(sink);
      const stats: RunStats = { duplicates: 0, replaced: 0 };
      const ids = opts.checkIds === false ? undefined : new IdSet(idLimit);
      let conflicts = 0;
      let idCheckStopped = false;
      const emit = (h: Head): void | Promise<void> => {
        if (ids) {
          if (!ids.add(h)) {
            conflicts++;
            if (conflicts <= SHOWN) {
              warn(`${reports[h.origin]!.name}:${h.line}: left out: id ${keyText(h)} was already written with another ts (the same id should never have two)`);
            }
            return;
          }
          if (ids.full && !idCheckStopped) {
            idCheckStopped = true;
            info(`stopped checking ids for conflicting timestamps after ${ids.size} events (memory limit; see --max-memory)`);
          }
        }
        tick("merge");
        return out.add(h);
      };
      try {
        await mergeCursors(cursors, emit, stats);
        await out.flush();
        for (const [k, c] of jsonl.entries()) {
          Object.assign(reports[streamed[k]!]!, { lines: c.lines, events: c.events, invalid: c.invalid, sorted: true });
        }
        merged = { out, stats, conflicts, ids };
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
      } finally {
        for (const c of cursors) await c.close();
        cursors = [];
      }
    }

    if (spool) {
      output = openFinal();
      await spool.copyTo(output);
      spool.close();
    }
    await output!.commit();

    for (const r of reports) if (r.encrypted && !opts.encryptSeed) warn(`${r.name} is encrypted, the merged output is not (pass --encrypt to encrypt it)`);
    if (warned.size > 0) {
      const invalid = reports.reduce((n, r) => n + r.invalid, 0);
      if (invalid > warned.size) warn(`${invalid} invalid lines left out in all`);
    }
    if (merged.conflicts > SHOWN) warn(`${merged.conflicts} events left out in all for an id already written with another ts`);
    const read = reports.reduce((n, r) => n + r.events, 0);
    return {
      inputs: reports,
      output: output!.target,
      read,
      invalid: reports.reduce((n, r) => n + r.invalid, 0),
      written: merged.out.events,
      duplicates: runStats.duplicates + merged.stats.duplicates,
      replaced: runStats.replaced + merged.stats.replaced,
      conflicts: merged.conflicts,
      idCheck: !merged.ids ? "off" : merged.ids.full ? "partial" : "complete",
      runs: runsSpilled,
      restarts,
      bytes: merged.out.bytes,
      seconds: (performance.now() - started) / 1000,
      exitCode: ExitCode.ok,
    };
  } catch (err) {
    cleanup();
    throw err;
  } finally {
    spool?.close();
    builder.release();
    temp.remove();
    if (opts.handleSignals !== false) {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  }
}
