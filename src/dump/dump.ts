import { existsSync } from "node:fs";
import { ExitCode, NaraError, usageError } from "../errors.ts";
import { DEFAULT_MAX_LINE_BYTES, forEachLine, longLineReason } from "../events/lines.ts";
import { EventFlag, ScanError, idKey, newEventFields, scanEventLine } from "../events/scan.ts";
import { Collector, type CollectStats } from "./collect.ts";
import { AFTER_ALL, BEFORE_ALL, lowerFloor, type TsFloor } from "./floor.ts";
import { Spill } from "./spill.ts";
import { defaultMaxMemory } from "../io/tempfile.ts";
import { tmpdir } from "node:os";
import { runDump, type CoordinatorEvents, type DumpPlan } from "./coordinator.ts";
import type { FetchSettings, PeerReport } from "./messages.ts";
import { DEFAULT_CONCURRENCY, defaultWorkers, fetchSettings } from "./plan.ts";
import { openInput } from "../io/input.ts";
import { openOutput, type Compression, type Output } from "../io/output.ts";
import type { SeedSource } from "../io/encrypt.ts";

/** What dumpEvents takes: whom to fetch as whom; the fetch settings, workers and concurrency default as dump-events' flags do. */
export type DumpOptions = Omit<DumpPlan, "settings" | "workers" | "concurrency"> & {
  settings?: Partial<FetchSettings>;
  /** Fetch threads (default defaultWorkers()). */
  workers?: number;
  /** Peers fetched at once (default DEFAULT_CONCURRENCY). */
  concurrency?: number;
  /** A file path, or undefined / "-" for stdout. */
  output?: string;
  /** Leave out events whose ids this JSON Lines file already holds. */
  idsFrom?: string;
  /** Default: by the output's extension (.zst, .gz), none for stdout. */
  compress?: Compression;
  /** Encrypt the backup with the key of this soul seed (the owner's). */
  encryptSeed?: Uint8Array;
  /** The soul that decrypts an encrypted --ids-from file. */
  decryptSoul?: SeedSource;
  /** Where temporary files go (the stdout spool, spills), default TMPDIR. */
  tempDir?: string;
  /** Memory for held events and their ids; past it they spill to disk (default defaultMaxMemory()). */
  maxMemory?: number;
  /** Longest --ids-from line read as an event (default DEFAULT_MAX_LINE_BYTES, 1 MiB). */
  maxLineBytes?: number;
  /**
   * Aborting it discards the output and removes the temporary files at once,
   * synchronously (a caller may exit straight after); the run then ends with an error.
   */
  signal?: AbortSignal;
};

export type DumpSummary = CollectStats & {
  peers: PeerReport[];
  written: number;
  output: string;
  seconds: number;
  exitCode: ExitCode;
};

export type DumpHooks = CoordinatorEvents & {
  onWarn?: (message: string) => void;
  /**
   * The output is open (from here an abort has files to remove), then being
   * committed: to stdout, the spool's copy begins, and an interruption
   * leaves part of the backup there.
   */
  onOutput?: (phase: "open" | "committing", target: string) => void;
};

/**
 * The whole dump: fetch every peer in parallel, keep one copy of each event,
 * sort by (ts, id) and write JSON Lines.
 *
 * To a file, events are written as soon as they are final: once every peer
 * has moved past a ts (peers serve in ts order), nothing older can come, so
 * it is sorted and written while the rest is fetched, and memory holds only
 * the window between the slowest and the fastest peer. The file only
 * appears under its final name once it is whole. To stdout the same goes
 * to a private spool file, copied to stdout once every peer has finished,
 * so a run that dies half way leaves no half backup in a redirect.
 */
export async function dumpEvents(opts: DumpOptions, hooks: DumpHooks = {}): Promise<DumpSummary> {
  const started = performance.now();
  const plan: DumpPlan = {
    ...opts,
    settings: fetchSettings(opts.settings),
    workers: opts.workers ?? defaultWorkers(),
    concurrency: opts.concurrency ?? DEFAULT_CONCURRENCY,
  };
  // Zero of either would wait forever for a fetch that never starts.
  if (!(plan.workers >= 1) || !(plan.concurrency >= 1)) throw usageError("workers and concurrency must be at least 1");
  const collector = new Collector();
  const spill = new Spill(opts.maxMemory ?? defaultMaxMemory(), opts.tempDir ?? tmpdir());
  collector.spill = spill;
  if (opts.idsFrom) collector.skipExisting(await readIds(opts.idsFrom, hooks.onWarn, opts.decryptSoul, opts.maxLineBytes));
  // Opened before the network work so that an unwritable path fails fast.
  const output = openOutput(opts.output, { compress: opts.compress, encryptSeed: opts.encryptSeed, spool: true, tempDir: opts.tempDir });
  const onAbort = () => {
    output.abort();
    spill.remove();
  };
  opts.signal?.addEventListener("abort", onAbort);
  if (opts.signal?.aborted) onAbort();
  hooks.onOutput?.("open", output.target);
  let written = 0;
  const writeBelow = async (sink: Output, floor: TsFloor) => {
    const order = collector.drain(floor);
    for (const chunk of collector.lines(order)) await sink.write(chunk);
    written += order.length;
  };
  // Drains run one at a time; a floor that rises meanwhile is picked up by the running one.
  let wanted = BEFORE_ALL;
  let reached = BEFORE_ALL;
  let pumping: Promise<void> | undefined;
  let writeError: unknown;
  const pump = async (sink: Output) => {
    try {
      while (writeError === undefined && lowerFloor(reached, wanted)) {
        const floor = wanted;
        await writeBelow(sink, floor);
        reached = floor;
      }
    } catch (err) {
      writeError = err;
    } finally {
      pumping = undefined;
    }
  };
  const onFloor = (floor: TsFloor) => {
    wanted = floor;
    pumping ??= pump(output);
  };
  try {
    const peers = await runDump(plan, collector, { ...hooks, onFloor });
    await pumping;
    if (writeError !== undefined) throw writeError;
    const okPeers = peers.filter((p) => p.status === "ok").length;
    const gotAny = peers.some((p) => p.events > 0);
    const exitCode: ExitCode = okPeers === peers.length ? ExitCode.ok : okPeers === 0 && !gotAny ? ExitCode.failed : ExitCode.partial;

    let target = output.target;
    if (exitCode === ExitCode.failed) {
      // Nothing came back: no file that looks like a backup.
      output.abort();
      target = "(nothing written)";
    } else {
      if (spill.runs === 0) await writeBelow(output, AFTER_ALL);
      else {
        for (const chunk of spill.merged(collector)) await output.write(chunk);
        written += spill.written;
      }
      spill.remove();
      hooks.onOutput?.("committing", output.target);
      await output.commit();
    }
    if (collector.stats.late > 0) {
      hooks.onWarn?.(
        `${collector.stats.late} event(s) came older than what their peer's cursor promised (a peer that breaks the paging rules): they are in the backup, but out of order; \`nara-backup merge\` sorts it`,
      );
    }
    return {
      ...collector.stats,
      peers,
      written,
      output: target,
      seconds: (performance.now() - started) / 1000,
      exitCode,
    };
  } catch (err) {
    output.abort();
    throw err;
  } finally {
    spill.remove();
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

/** The event ids of an earlier backup; a missing file holds none, a malformed line is a warning. */
export async function readIds(path: string, onWarn?: (m: string) => void, soul?: SeedSource, maxLineBytes = DEFAULT_MAX_LINE_BYTES): Promise<Set<string>> {
  const ids = new Set<string>();
  if (!existsSync(path)) return ids;
  const f = newEventFields();
  let bad = 0;
  try {
    // Compressed or encrypted earlier backups are read as they are (src/io/input.ts).
    const { stream } = await openInput(path, { soul });
    await forEachLine(stream, (buf, s, e, lineNo) => {
      try {
        scanEventLine(buf, s, e, f);
        if (f.flags & EventFlag.noId) throw new ScanError("no string id", s);
        ids.add(idKey(buf, f.idStart, f.idEnd, (f.flags & EventFlag.idEscaped) !== 0));
      } catch (err) {
        if (!(err instanceof ScanError)) throw err;
        if (++bad <= 10) onWarn?.(`${path}:${lineNo}: not an event line (${err.reason} at column ${Math.max(1, err.offset - s + 1)}); its id, if any, is not skipped`);
      }
    }, {
      maxLineBytes,
      onLong(lineNo, bytes) {
        if (++bad <= 10) onWarn?.(`${path}:${lineNo}: ${longLineReason(bytes, maxLineBytes)}; its id, if any, is not skipped`);
      },
    });
  } catch (err) {
    const hint = err instanceof NaraError ? err.hint : undefined;
    throw new NaraError(`cannot read --ids-from ${path}`, { cause: err, hint, exitCode: ExitCode.usage });
  }
  if (bad > 10) onWarn?.(`${path}: ${bad} malformed lines in all`);
  return ids;
}
