/**
 * The merge's first phase: the inputs checked before any work, the memory
 * shared out, which inputs go through sorted runs; then the reading side
 * every later phase shares (one report per input, malformed lines named,
 * progress counted, the signal polled).
 */
import { statSync } from "node:fs";
import { ExitCode, NaraError, usageError } from "../errors.ts";
import { openInput, statBackup } from "../io/input.ts";
import { defaultMaxMemory } from "../io/tempfile.ts";
import { type ByteSource, FileSource, type InvalidLine, JsonlCursor, StreamSource } from "./cursor.ts";
import type { InputReport, MergeHooks, MergeOptions, MergeProgress } from "./merge.ts";

/** Malformed lines and conflicts named one by one before "… in all". */
export const SHOWN = 10;

export type MergePlan = {
  inputs: string[];
  maxMemory: number;
  /** Bytes of events in one sorted run (3/4 of maxMemory). */
  runBudget: number;
  /** Bytes for the ids remembered by the conflict check (1/4 of maxMemory). */
  idLimit: number;
  toStdout: boolean;
  /** Each input's size on disk (stdin 0), and their sum. */
  sizes: number[];
  bytesTotal: number;
  /** Inputs read into sorted runs before the final merge; grows when a streamed one is found out of order. */
  mustSort: Set<number>;
};

/** At least one input (the command checks it before it loads a soul). */
export function requireInputs(inputs: string[]): void {
  if (inputs.length === 0) throw usageError("no input given", "name the backups to merge: nara-backup merge A B ... -o OUT");
}

/** Checks the inputs and options (usage errors before any work) and plans the merge. */
export function planMerge(opts: MergeOptions): MergePlan {
  const { inputs } = opts;
  requireInputs(inputs);
  if (inputs.filter((p) => p === "-").length > 1) throw usageError("stdin (-) can be read only once");
  // Fail before any work when an input is missing (openInput says the same later, with the file's kind).
  for (const path of inputs) if (path !== "-") statBackup(path);
  const maxMemory = opts.maxMemory ?? defaultMaxMemory();
  if (!(maxMemory >= 1)) throw usageError("--max-memory must be more than 0");
  // Which inputs go through sorted runs: all of them with presorted false; by default those that
  // cannot be read twice (stdin, pipes, <(...)), should one turn out unsorted after streaming began.
  const mustSort = new Set<number>();
  inputs.forEach((p, i) => {
    if (opts.presorted === false || (opts.presorted === undefined && (p === "-" || !statSync(p).isFile()))) mustSort.add(i);
  });
  const sizes = inputs.map((p) => (p === "-" ? 0 : statSync(p).size));
  return {
    inputs,
    maxMemory,
    runBudget: Math.max(1, Math.floor((maxMemory * 3) / 4)),
    idLimit: Math.floor(maxMemory / 4),
    toStdout: opts.output === undefined || opts.output === "-",
    sizes,
    bytesTotal: sizes.reduce((a, b) => a + b, 0),
    mustSort,
  };
}

/** What a merge stopped by its AbortSignal rejects with (the temporary files are gone by then). */
export const interruptedError = (): NaraError => new NaraError("merge interrupted: nothing was written", { exitCode: ExitCode.interrupted });

/** The inputs as every phase reads them: opened, reported on, counted. */
export class MergeInputs {
  readonly reports: InputReport[];
  /** Raw (possibly compressed) input bytes read in this pass. */
  bytesRead = 0;
  /** Malformed lines named so far (at most SHOWN). */
  readonly warned = new Set<string>();
  private events = 0;
  private readonly countRead = (n: number) => (this.bytesRead += n);

  constructor(
    private readonly plan: MergePlan,
    private readonly opts: MergeOptions,
    private readonly hooks: MergeHooks,
  ) {
    this.reports = plan.inputs.map((p) => ({
      name: p === "-" ? "stdin" : p,
      compression: "none",
      encrypted: false,
      lines: 0,
      events: 0,
      invalid: 0,
      sorted: null,
    }));
  }

  readonly onInvalid = (bad: InvalidLine): boolean => {
    if (!this.opts.skipInvalid) return false;
    const where = `${bad.input}:${bad.line}`;
    if (this.warned.size < SHOWN && !this.warned.has(where)) {
      this.warned.add(where);
      this.hooks.onWarn?.(bad.bytes !== undefined ? `${where}: ${bad.reason}: left out` : `${where}: left out, not a valid event line: ${bad.reason} (column ${bad.column})`);
    }
    return true;
  };

  /** Opens input i; plain JSON Lines in a regular file is then read directly (synchronous reads, no chunk garbage). */
  async open(i: number): Promise<{ source: ByteSource; name: string }> {
    this.checkSignal();
    const path = this.plan.inputs[i]!;
    const opened = await openInput(path, { soul: this.opts.soul, onRead: this.countRead });
    const r = this.reports[i]!;
    r.name = opened.name;
    r.compression = opened.kind.compression;
    r.encrypted = opened.kind.encrypted;
    if (path !== "-" && r.compression === "none" && !r.encrypted && statSync(path).isFile()) {
      await opened.stream.cancel().catch(() => {});
      return { source: new FileSource(path, this.countRead), name: opened.name };
    }
    return { source: new StreamSource(opened.stream), name: opened.name };
  }

  /** Input i as a cursor over its events. */
  async cursor(i: number, checkOrder: "throw" | "note", readSize?: number): Promise<JsonlCursor> {
    const opened = await this.open(i);
    const opts = { origin: i, name: opened.name, checkOrder, onInvalid: this.onInvalid, maxLineBytes: this.opts.maxLineBytes };
    return new JsonlCursor(opened.source, opts, readSize);
  }

  /** One more event read; now and then progress, and a stop when the signal was aborted. */
  tick(phase: MergeProgress["phase"]): void {
    if ((++this.events & 0x3fff) !== 0) return;
    this.checkSignal();
    this.hooks.onProgress?.({ phase, events: this.events, bytesRead: this.bytesRead, bytesTotal: this.plan.bytesTotal });
  }

  checkSignal(): void {
    if (this.opts.signal?.aborted) throw interruptedError();
  }
}
