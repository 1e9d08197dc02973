/**
 * The restore: validate everything, then send in signed batches.
 *
 * Pass 1 reads every input once, validates every line and decides, per
 * line, whether it is sent: valid, the chosen copy of its ID (a signed copy
 * beats an unsigned one, otherwise the first wins) and selected by the
 * filters. What it keeps is a compact ID index and one bit per line, never
 * the events. If any line is invalid nothing is sent (unless skipInvalid).
 * Pass 2 re-reads the inputs for the hey-there events (peers learn keys from
 * them before checking signatures), pass 3 for everything else; they trust
 * a line whose bytes still give the CRC pass 1 kept (linecheck.ts) instead
 * of validating it again. Sending is pipelined (pipeline.ts): the next
 * batch is read and encoded while the current one is with the nara. stdin is
 * spooled (raw, as it came) to a private temp file so that it can be read
 * three times. Each pass opens its source through openInput, which
 * decompresses (zstd, gzip) and decrypts as it reads.
 */
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode, NaraError, usageError, unreadableFile } from "../errors.ts";
import { DEFAULT_MAX_LINE_BYTES, forEachLine, longLineReason } from "../events/lines.ts";
import { Batch, signBatch } from "./batch.ts";
import { refusalError } from "./diagnose.ts";
import { matches, type EventFilter } from "./filter.ts";
import { IdIndex, LineBits, MAX_INPUTS } from "../events/idindex.ts";
import { leadingFields, lineCrc, LineHashes } from "../events/linecheck.ts";
import { InFlight } from "./pipeline.ts";
import { displayUrl, formatMs, naraBaseUrl, sendBatch, type Attempt, type FetchLike } from "./import.ts";
import type { RestoreIdentity } from "../identity/signer.ts";
import { bomLength, validateLine } from "../events/validate.ts";
import { openInput, sniff } from "../io/input.ts";
import { recordOf, splitPoint, startChecker, type CheckedLine } from "./parallel.ts";
import type { SeedSource } from "../io/encrypt.ts";
import { errorCode, isSystemError, systemCause } from "../io/ioerror.ts";

export type RestoreOptions = {
  /** Files to read; "-" (or none at all) is stdin. */
  inputs: readonly string[];
  /** The import endpoint (see importUrl). */
  url: string;
  signer: RestoreIdentity;
  batchSize: number;
  /** Plain files at least this big are checked on two threads (default 16 MiB; tests lower it). */
  parallelCheckBytes?: number;
  /** Batches sent at once (default 1: the next is prepared while one is with the nara). */
  inFlight?: number;
  /** Per request (each attempt). */
  timeoutMs: number;
  /** Attempts after the first, per batch. */
  retries: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  dryRun?: boolean;
  /** Leave out the first N events of the send order (to resume). */
  skip?: number;
  /** Send the valid lines even when some are invalid. */
  skipInvalid?: boolean;
  /** Longer lines are invalid, skipped without being held (default DEFAULT_MAX_LINE_BYTES, 1 MiB). */
  maxLineBytes?: number;
  filter?: EventFilter;
  /**
   * The soul that decrypts encrypted inputs (the backup owner's). Default:
   * the signer's own soul (a nara restoring its own backup).
   */
  decryptSoul?: SeedSource;
  /** Advice when an encrypted input needs another soul (e.g. "--backup-soul-file"). */
  decryptSoulHint?: string;
  /** stdin, injectable for tests. */
  stdin?: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  /** Where stdin is spooled (default: the OS temp dir, i.e. $TMPDIR). */
  tmpDir?: string;
  /** Stops the restore between requests (a request in flight is let finish). */
  signal?: AbortSignal;
  fetch?: FetchLike;
  /** The clock batches are signed with. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
};

export type InvalidLine = { input: string; line: number; reason: string };

export type Plan = {
  /** Events that will be sent, after --skip. */
  toSend: number;
  batches: number;
  heyThere: number;
  services: Record<string, number>;
};

export type BatchReport = {
  /** 1-based. */
  index: number;
  /** Planned total. */
  of: number;
  events: number;
  bytes: number;
  imported: number;
  duplicates: number;
  warnings: number;
  attempts: number;
  ms: number;
  /** Events accepted so far (this batch included), --skip not counted. */
  sentSoFar: number;
  services: Record<string, number>;
};

export type RestoreHooks = {
  onInvalid?: (bad: InvalidLine) => void;
  onWarn?: (message: string) => void;
  onDebug?: (message: string) => void;
  /** After validation, before anything is sent. */
  onPlan?: (plan: Plan) => void;
  onBatch?: (report: BatchReport) => void;
  onRetry?: (info: { batch: number; attempt: number; of: number; error: string; delayMs: number }) => void;
  /** Progress of pass 1: lines and bytes read so far in all inputs, and the total bytes. */
  onScan?: (progress: { lines: number; bytes: number; totalBytes: number }) => void;
};

export type InputReport = { name: string; lines: number; valid: number; invalid: number };

export type RestoreSummary = {
  /** The nara's base URL (what the user gave), without credentials. */
  url: string;
  /** The import endpoint. */
  endpoint: string;
  dryRun: boolean;
  inputs: InputReport[];
  /** Non-blank lines read. */
  lines: number;
  valid: number;
  invalid: number;
  /** Extra copies of an ID within or across inputs (one copy of each is kept). */
  duplicatesInInput: number;
  /** Distinct valid events. */
  unique: number;
  /** Distinct events left out by --service/--since/--until/--nara. */
  filtered: number;
  /** Left out by --skip. */
  skipped: number;
  /** Events planned to be sent (after filters and --skip). */
  toSend: number;
  /** Per service, of toSend. */
  services: Record<string, number>;
  /** Batches accepted (dry run: batches planned and signed). */
  batches: number;
  batchesPlanned: number;
  /** Events in accepted batches (dry run: 0). */
  sent: number;
  imported: number;
  duplicates: number;
  warnings: number;
  /** Failed attempts that were retried. */
  retries: number;
  /** When stopped early: the --skip value that resumes where this run stopped. */
  resumeSkip?: number;
  exitCode: ExitCode;
  /** Why the restore stopped or failed (also for invalid input); the caller prints it. */
  failure?: NaraError;
  seconds: number;
};

/** Thrown inside a line visitor to stop reading an input early. */
class StopReading extends Error {}

type Source = { name: string; path: string; size: number; cleanup?: () => void };

const HEY_THERE = "hey-there";

export async function restoreEvents(opts: RestoreOptions, hooks: RestoreHooks = {}): Promise<RestoreSummary> {
  const started = performance.now();
  const filter = opts.filter ?? {};
  const skip = opts.skip ?? 0;
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) throw usageError("--batch-size must be at least 1");
  const inFlightLimit = opts.inFlight ?? 1;
  if (!Number.isInteger(inFlightLimit) || inFlightLimit < 1) throw usageError("--in-flight must be at least 1");
  const inputs = opts.inputs.length === 0 ? ["-"] : [...opts.inputs];
  if (inputs.filter((p) => p === "-").length > 1) throw usageError("stdin (-) can be read only once");
  if (inputs.length > MAX_INPUTS) throw usageError(`too many input files (at most ${MAX_INPUTS})`);

  const summary: RestoreSummary = {
    url: naraBaseUrl(displayUrl(opts.url)),
    endpoint: displayUrl(opts.url),
    dryRun: opts.dryRun === true,
    inputs: [],
    lines: 0,
    valid: 0,
    invalid: 0,
    duplicatesInInput: 0,
    unique: 0,
    filtered: 0,
    skipped: 0,
    toSend: 0,
    services: {},
    batches: 0,
    batchesPlanned: 0,
    sent: 0,
    imported: 0,
    duplicates: 0,
    warnings: 0,
    retries: 0,
    exitCode: ExitCode.ok,
    seconds: 0,
  };
  const finish = (): RestoreSummary => {
    summary.seconds = (performance.now() - started) / 1000;
    return summary;
  };

  const sources: Source[] = [];
  try {
    for (const p of inputs) sources.push(p === "-" ? await stdinSource(opts) : fileSource(p));
    if (opts.signal?.aborted) return interrupted(summary, finish);

    // ---- pass 1: validate, dedup, filter
    // Sized for the events the inputs' bytes suggest (~256 bytes each, more when compressed): no regrowing on the way.
    const index = new IdIndex(Math.min(sources.reduce((n, src) => n + src.size, 0) / 256, 1 << 20));
    const bits = sources.map(() => new LineBits());
    /** The selected hey-there lines (sent in pass 2; pass 3 sends bits minus these). */
    const heyBits = sources.map(() => new LineBits());
    /** Per selected line: its CRC-32, and whether the fast check answered (what the send passes trust). */
    const crcs = sources.map(() => new LineHashes());
    const plain = sources.map(() => new LineBits());
    const keep = (i: number, line: number, crc: number, isPlain: boolean) => {
      bits[i]!.set(line, true);
      crcs[i]!.set(line, crc);
      if (isPlain) plain[i]!.set(line, true);
    };
    const services = new Map<string, number>();
    const lastHeyThere = sources.map(() => 0);
    const withNaras = filter.naras !== undefined;
    let linesRead = 0;
    /** Raw bytes (compressed or encrypted as stored), to compare with the sizes of the sources. */
    let bytesRead = 0;
    const totalBytes = sources.reduce((n, s) => n + s.size, 0);
    for (let i = 0; i < sources.length; i++) {
      const src = sources[i]!;
      const report: InputReport = { name: src.name, lines: 0, valid: 0, invalid: 0 };
      summary.inputs.push(report);
      /** Takes one checked line in, in file order: dedup (a signed copy beats an unsigned one, else the first wins) and filters. */
      const accept = (line: number, v: CheckedLine, crc: () => number) => {
        report.valid++;
        const selected = matches(filter, v);
        const old = index.get(v.id);
        if (old === undefined) {
          index.set(v.id, { input: i, line, signed: v.signed, selected });
          if (selected) {
            keep(i, line, crc(), v.plain);
            services.set(v.svc, (services.get(v.svc) ?? 0) + 1);
            if (v.svc === HEY_THERE) {
              heyBits[i]!.set(line, true);
              lastHeyThere[i] = line;
            }
          }
          return;
        }
        summary.duplicatesInInput++;
        if (old.signed || !v.signed) return;
        // A signed copy replaces an unsigned one (copies of an ID share their service).
        if (old.selected) {
          bits[old.input]!.set(old.line, false);
          heyBits[old.input]!.set(old.line, false);
          services.set(v.svc, services.get(v.svc)! - 1);
        }
        index.set(v.id, { input: i, line, signed: true, selected });
        if (selected) {
          keep(i, line, crc(), v.plain);
          services.set(v.svc, (services.get(v.svc) ?? 0) + 1);
          if (v.svc === HEY_THERE) {
            heyBits[i]!.set(line, true);
            lastHeyThere[i] = Math.max(lastHeyThere[i]!, line);
          }
        }
      };
      const invalid = (line: number, reason: string) => {
        report.invalid++;
        hooks.onInvalid?.({ input: src.name, line, reason });
      };
      // A large plain file: its second half is checked by a worker meanwhile (parallel.ts).
      const split = !withNaras && src.size >= (opts.parallelCheckBytes ?? PARALLEL_CHECK_BYTES) ? await plainSplit(src) : undefined;
      let nearLines = 0;
      let farBytes = 0;
      const checker =
        split === undefined
          ? undefined
          : startChecker({ path: src.path, start: split, end: src.size, withTs: filter.since !== undefined || filter.until !== undefined, maxLineBytes: opts.maxLineBytes }, (c) => {
              bytesRead += c.bytes - farBytes;
              farBytes = c.bytes;
              let bad = 0;
              for (let k = 0; k < c.count; k++) {
                const line = nearLines + c.line[k]!;
                while (bad < c.invalid.length && c.invalid[bad]!.line < c.line[k]!) invalid(nearLines + c.invalid[bad]!.line, c.invalid[bad++]!.reason);
                const v = recordOf(c, k);
                accept(line, v, () => v.crc);
              }
              while (bad < c.invalid.length) invalid(nearLines + c.invalid[bad]!.line, c.invalid[bad++]!.reason);
              report.lines += c.count + c.invalid.length;
              linesRead += c.count + c.invalid.length;
              hooks.onScan?.({ lines: linesRead, bytes: bytesRead, totalBytes });
            });
      try {
        nearLines = await readLines(
          src,
          opts,
          (buf, s, e, line) => {
            report.lines++;
            if (++linesRead % 16384 === 0) hooks.onScan?.({ lines: linesRead, bytes: bytesRead, totalBytes });
            if (line === 1) s += bomLength(buf, s, e);
            const v = validateLine(buf, s, e, { withNaras });
            if (!v.ok) return invalid(line, v.reason);
            accept(line, v, () => lineCrc(buf, s, e));
          },
          (n) => {
            bytesRead += n;
          },
          split,
          (line, bytes) => {
            report.lines++;
            invalid(line, longLineReason(bytes, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES));
          },
        );
        if (checker && !opts.signal?.aborted) await checker.ready();
      } catch (err) {
        throw err instanceof NaraError ? err : new NaraError(`cannot read ${src.name}`, { cause: err, exitCode: ExitCode.internal });
      } finally {
        checker?.stop();
      }
      summary.lines += report.lines;
      summary.valid += report.valid;
      summary.invalid += report.invalid;
      if (opts.signal?.aborted) return interrupted(summary, finish);
    }
    hooks.onScan?.({ lines: linesRead, bytes: totalBytes, totalBytes });
    if (summary.lines === 0) hooks.onWarn?.(`no events in ${sources.map((s) => s.name).join(", ")}: the input is empty`);
    summary.unique = index.size;
    const selectedTotal = bits.reduce((n, b) => n + b.count, 0);
    summary.filtered = summary.unique - selectedTotal;
    summary.skipped = Math.min(skip, selectedTotal);
    summary.toSend = selectedTotal - summary.skipped;
    const heyThereTotal = services.get(HEY_THERE) ?? 0;
    hooks.onDebug?.(
      `validated ${summary.lines} lines: ${summary.unique} distinct events, ${summary.duplicatesInInput} repeated, ` +
        `${summary.invalid} invalid; ID index ~${Math.round(index.bytes / 1048576)} MiB`,
    );

    if (summary.invalid > 0 && !opts.skipInvalid) {
      summary.exitCode = ExitCode.usage;
      summary.failure = new NaraError(`${summary.invalid} invalid line(s) in the input: nothing was sent`, {
        hint: "fix or remove them (each is listed above with its file and line number), or pass --skip-invalid to send the valid events only",
        exitCode: ExitCode.usage,
      });
      return finish();
    }

    // Per-service counts of what is sent, --skip applied in send order.
    const planServices = plannedServices(services, heyThereTotal, summary.skipped);
    summary.services = planServices;
    summary.batchesPlanned = Math.ceil(summary.toSend / opts.batchSize);
    hooks.onPlan?.({
      toSend: summary.toSend,
      batches: summary.batchesPlanned,
      heyThere: Math.max(0, heyThereTotal - summary.skipped),
      services: planServices,
    });
    if (summary.toSend === 0) return finish();

    // ---- passes 2 and 3: send, hey-there events first
    let position = 0; // in send order, --skip included
    let batch = new Batch();
    /** Batches whose request is over, emptied for reuse: at most in-flight + 1 buffers, each allocated once. */
    const spare: Batch[] = [];
    let batchIndex = 0;
    let stopped = false;
    const inFlight = new InFlight(inFlightLimit);
    /** The first batch that failed (by time), settled into summary.failure once nothing is in flight. */
    let failed: { last: Exclude<Attempt, { kind: "ok" }>; batch: number; attempts: number } | undefined;
    const retry = {
      url: opts.url,
      identity: opts.signer.identity,
      timeoutMs: opts.timeoutMs,
      retries: opts.retries,
      backoffMs: opts.backoffMs ?? 500,
      maxBackoffMs: opts.maxBackoffMs ?? 30_000,
      signal: opts.signal,
      fetch: opts.fetch,
      now: opts.now,
      sleep: opts.sleep,
      random: opts.random,
    };

    /** Sends one batch (signed in sendBatch just before each attempt) and accounts for its outcome. */
    const send = async (current: Batch, index: number): Promise<void> => {
      const bytes = current.eventBytes;
      const result = await sendBatch(current, {
        ...retry,
        onRetry: (r) =>
          hooks.onRetry?.({ batch: index, attempt: r.attempt, of: r.of, error: r.failure.kind === "ok" ? "" : r.failure.error, delayMs: r.delayMs }),
      });
      summary.retries += result.failures.length;
      const last = result.last;
      const events = current.count;
      const services = Object.fromEntries(current.services);
      current.reset();
      spare.push(current);
      if (last.kind === "ok") {
        inFlight.accepted(index, events);
        summary.batches++;
        summary.sent += events;
        summary.imported += last.counts.imported;
        summary.duplicates += last.counts.duplicates;
        summary.warnings += last.counts.warnings;
        hooks.onBatch?.({
          index,
          of: summary.batchesPlanned,
          events,
          bytes,
          ...last.counts,
          attempts: result.attempts,
          ms: last.ms,
          sentSoFar: summary.sent,
          services,
        });
        return;
      }
      stopped = true;
      failed ??= { last, batch: index, attempts: result.attempts };
    };

    const flush = async (): Promise<void> => {
      if (batch.count === 0) return;
      const current = batch;
      batch = spare.pop() ?? new Batch(current.eventBytes + 4096); // the next one is about as big: no regrowing
      const index = ++batchIndex;
      if (opts.dryRun) {
        signBatch(current, opts.signer.identity, (opts.now ?? Date.now)()); // exercised, never sent
        summary.batches++;
        hooks.onBatch?.({
          index,
          of: summary.batchesPlanned,
          events: current.count,
          bytes: current.eventBytes,
          imported: 0,
          duplicates: 0,
          warnings: 0,
          attempts: 0,
          ms: 0,
          sentSoFar: summary.sent,
          services: Object.fromEntries(current.services),
        });
        current.reset();
        spare.push(current);
        return;
      }
      // Waits only while `limit` batches are out; reading goes on while this one is with the nara.
      await inFlight.room();
      if (stopped) throw new StopReading();
      if (!opts.signal?.aborted) inFlight.start(() => send(current, index));
    };

    /** Pass 2 (heyThere) sends the lines of heyBits; pass 3 those of bits that are not in heyBits. */
    const sendPass = async (heyThere: boolean): Promise<void> => {
      for (let i = 0; i < sources.length && !stopped; i++) {
        const src = sources[i]!;
        const b = bits[i]!;
        const hey = heyBits[i]!;
        const crc = crcs[i]!;
        const isPlain = plain[i]!;
        if ((heyThere ? hey.count : b.count - hey.count) === 0) continue;
        const until = heyThere ? lastHeyThere[i]! : Infinity;
        await readLines(src, opts, async (buf, s, e, line) => {
          if (line > until) throw new StopReading();
          if (!b.has(line) || hey.has(line) !== heyThere) return;
          if (line === 1) s += bomLength(buf, s, e);
          // The bytes pass 1 validated (same CRC): their ID and service, without checking them again.
          if (lineCrc(buf, s, e) !== crc.get(line)) throw changedError(src.name, line);
          let lead = isPlain.has(line) ? leadingFields(buf, s, e) : null;
          if (lead === null) {
            const v = validateLine(buf, s, e);
            if (!v.ok) throw changedError(src.name, line);
            lead = v;
          }
          if ((lead.svc === HEY_THERE) !== heyThere) throw changedError(src.name, line);
          if (++position <= skip) return;
          batch.add(buf, s, e, lead.id, lead.svc);
          if (batch.count >= opts.batchSize) await flush();
        });
        if (opts.signal?.aborted) return;
      }
    };

    try {
      if (heyThereTotal > 0) await sendPass(true);
      if (!stopped && !opts.signal?.aborted) await sendPass(false);
      if (!stopped && !opts.signal?.aborted) {
        try {
          await flush();
        } catch (err) {
          if (!(err instanceof StopReading)) throw err;
        }
      }
    } finally {
      // What is in flight is let finish, whatever stopped the reading: its outcome is counted.
      await inFlight.drain();
    }
    if (failed || opts.signal?.aborted) summary.resumeSkip = summary.skipped + inFlight.acceptedPrefixEvents;
    if (failed) {
      summary.failure = batchFailure(failed.last, { batch: failed.batch, attempts: failed.attempts, opts, summary, now: opts.now ?? Date.now });
      summary.exitCode = summary.failure.exitCode;
      return finish();
    }
    if (opts.signal?.aborted) return interrupted(summary, finish);
    if (position !== selectedTotal) {
      throw new NaraError(`the input changed while restoring: ${selectedTotal} events were validated, ${position} found when sending`, {
        hint: "do not modify the backup during a restore; rerun it",
        exitCode: summary.sent > 0 ? ExitCode.partial : ExitCode.failed,
      });
    }
    return finish();
  } finally {
    for (const s of sources) s.cleanup?.();
  }
}

function interrupted(summary: RestoreSummary, finish: () => RestoreSummary): RestoreSummary {
  summary.exitCode = ExitCode.interrupted;
  const resumable = summary.resumeSkip !== undefined && summary.sent > 0;
  summary.failure = new NaraError(
    resumable
      ? `interrupted: ${summary.sent} event(s) restored in ${summary.batches} batch(es); --skip ${summary.resumeSkip} resumes`
      : "interrupted: nothing restored",
    {
      hint: resumable
        ? `${summary.sent} events were accepted before the interruption; resume with --skip ${summary.resumeSkip} (same inputs and filters)`
        : "rerunning the same command is safe (import skips what the nara already has)",
      exitCode: ExitCode.interrupted,
    },
  );
  return finish();
}

/** Service counts of the send order (hey-there first) once the first `skip` events are left out. */
export function plannedServices(services: Map<string, number>, heyThere: number, skip: number): Record<string, number> {
  const out: Record<string, number> = {};
  if (skip === 0) {
    for (const [k, v] of services) if (v > 0) out[k] = v;
    return out;
  }
  // Which services the skipped non-hey-there events belonged to is only known in file order:
  // report the hey-there part exactly and the rest as a total under "(mixed)" when it is ambiguous.
  const skipHey = Math.min(skip, heyThere);
  if (heyThere - skipHey > 0) out[HEY_THERE] = heyThere - skipHey;
  const restSkip = skip - skipHey;
  const others = [...services].filter(([k, v]) => k !== HEY_THERE && v > 0);
  if (restSkip === 0) for (const [k, v] of others) out[k] = v;
  else {
    const rest = others.reduce((n, [, v]) => n + v, 0) - restSkip;
    if (others.length === 1 && rest > 0) out[others[0]![0]] = rest;
    else if (rest > 0) out["(after --skip, mixed)"] = rest;
  }
  return out;
}

function changedError(input: string, line: number): NaraError {
  return new NaraError(`${input}:${line} changed while restoring (it was valid when checked, it is not now)`, {
    hint: "do not modify the backup during a restore; rerun it",
    exitCode: ExitCode.failed,
  });
}

function resumeHint(summary: RestoreSummary): string {
  const n = summary.resumeSkip ?? 0;
  return n > 0
    ? `${summary.sent} event(s) were accepted before this. To resume, rerun the same command (same inputs and filters) with --skip ${n}; rerunning without --skip is also safe (the nara skips what it already has), only slower.`
    : "nothing was accepted; rerunning the same command is safe (import skips what the nara already has).";
}

function batchFailure(
  last: Exclude<Attempt, { kind: "ok" }>,
  ctx: { batch: number; attempts: number; opts: RestoreOptions; summary: RestoreSummary; now: () => number },
): NaraError {
  const { summary, opts } = ctx;
  const endpoint = displayUrl(opts.url);
  const url = naraBaseUrl(endpoint);
  const anyAccepted = summary.batches > 0;
  const code = anyAccepted ? ExitCode.partial : ExitCode.failed;
  switch (last.kind) {
    case "refused":
      return refusalError({
        error: last.error,
        serverDateMs: last.serverDateMs,
        localNowMs: ctx.now(),
        acceptedBatches: summary.batches,
        url,
        signer: opts.signer,
        resume: anyAccepted ? resumeHint(summary) : "Nothing was imported.",
      });
    case "rejected": {
      let why = resumeHint(summary);
      if (last.status === 404 || last.status === 405) {
        why = `is ${url} the nara's own HTTP server (its web UI, default port 8080)? POST ${endpoint} answered ${last.status}. ${why}`;
      } else if (last.status === 400) {
        why = `an event of batch ${ctx.batch} does not decode in the nara although it passed validation here: please report it. ${why}`;
      } else if (last.status >= 300 && last.status < 400) {
        why = `the nara answered with a redirect${last.location ? ` to ${last.location}` : ""}: pass the final URL as --nara-url (a signed body is not resent through redirects). ${why}`;
      } else if (last.status === 401) {
        why = `the server wants authentication this tool does not send: is ${url} the nara's own HTTP server? ${why}`;
      }
      return new NaraError(`the nara rejected batch ${ctx.batch} (${last.error})`, { hint: why, exitCode: code });
    }
    case "aborted":
      return new NaraError("interrupted", { hint: resumeHint(summary), exitCode: ExitCode.interrupted });
    case "transient":
      return new NaraError(
        `batch ${ctx.batch} failed ${ctx.attempts} time(s), giving up: ${last.error}`,
        {
          hint: `${resumeHint(summary)} Raise --retries or --timeout (now ${formatMs(opts.timeoutMs)} per request) if the nara is slow or restarting.`,
          exitCode: code,
        },
      );
  }
}

// ---------------------------------------------------------------- inputs

function fileSource(path: string): Source {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw unreadableFile(path, err);
  }
  if (st.isDirectory()) throw usageError(`${path} is a directory, not a backup file`);
  return { name: path, path, size: st.size };
}

/**
 * stdin as a file that can be read three times: a redirected regular file
 * is reopened through /proc (Linux), anything else (a pipe) is copied to a
 * private temp file, removed when the restore ends.
 */
async function stdinSource(opts: RestoreOptions): Promise<Source> {
  if (opts.stdin === undefined) {
    if (process.stdin.isTTY) {
      throw usageError("no input: stdin is a terminal", "give backup files as arguments, or redirect one: nara-backup restore-events … < backup.jsonl");
    }
    if (process.platform === "linux") {
      try {
        if (fstatSync(0).isFile()) return { name: "stdin", path: "/proc/self/fd/0", size: fstatSync(0).size };
      } catch {}
    }
  }
  const stream = opts.stdin ?? Bun.stdin.stream();
  let dir: string;
  try {
    dir = mkdtempSync(join(opts.tmpDir ?? tmpdir(), "nara-restore-"));
  } catch (err) {
    throw new NaraError("cannot create a temporary file to hold stdin", {
      cause: err,
      hint: "set TMPDIR to a writable directory, or pass the backup as a FILE argument",
      exitCode: ExitCode.usage,
    });
  }
  // The raw bytes as they came (maybe compressed or encrypted): each pass decodes them through openInput.
  const path = join(dir, "stdin.jsonl");
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  // A signal kills us without running finally blocks: remove the spool on exit too.
  const onExit = () => cleanup();
  process.once("exit", onExit);
  try {
    closeSync(openSync(path, "wx", 0o600));
    const sink = Bun.file(path).writer();
    let sinceFlush = 0;
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      if (opts.signal?.aborted) break;
      const r = sink.write(chunk);
      if (typeof r !== "number") await r;
      sinceFlush += chunk.length;
      if (sinceFlush >= 1 << 20) {
        await sink.flush();
        sinceFlush = 0;
      }
    }
    await sink.end();
  } catch (err) {
    cleanup();
    process.off("exit", onExit);
    // The disk failing (ENOSPC, EIO): one line with the path, exit 1; stdin itself failing: a usage error.
    if (isSystemError(err) && errorCode(err) !== "EPIPE") {
      throw new NaraError(`cannot copy stdin to ${path}: ${systemCause(err)}`, {
        hint: "set TMPDIR to a disk with room, or pass the backup as a FILE argument",
        exitCode: ExitCode.internal,
      });
    }
    throw new NaraError("cannot copy stdin to a temporary file", { cause: err, hint: "pass the backup as a FILE argument", exitCode: ExitCode.usage });
  }
  return {
    name: "stdin",
    path,
    size: statSync(path).size,
    cleanup: () => {
      cleanup();
      process.off("exit", onExit);
    },
  };
}

/**
 * Reads the lines of a source through openInput (decompressing, decrypting);
 * with `end`, only its bytes before `end` (a plain file being split for
 * parallel checking). Returns the number of lines read, blank ones included.
 */
async function readLines(
  src: Source,
  opts: RestoreOptions,
  visit: (buf: Uint8Array, s: number, e: number, line: number) => void | Promise<void>,
  onRead?: (rawBytes: number) => void,
  end?: number,
  /** A line over the cap (skipped unread); the send passes need not say, pass 1 has. */
  onLong?: (line: number, bytes: number) => void,
): Promise<number> {
  const signal = opts.signal;
  try {
    let stream: ReadableStream<Uint8Array>;
    if (end === undefined) {
      ({ stream } = await openInput(src.path, {
        name: src.name,
        soul: opts.decryptSoul ?? (() => ({ seed: opts.signer.identity.seedBytes() })),
        soulHint:
          opts.decryptSoulHint ??
          "give the soul of the nara that made the backup with NARA_BACKUP_SOUL or --backup-soul-file FILE (the restore signs with the target's soul, NARA_SOUL / --soul-file)",
        onRead,
      }));
    } else {
      stream = Bun.file(src.path).slice(0, end).stream();
      if (onRead) {
        stream = stream.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(c, ctl) {
              onRead(c.length);
              ctl.enqueue(c);
            },
          }),
        );
      }
    }
    return await forEachLine(
      stream,
      (buf, s, e, line) => {
        if (signal?.aborted) throw new StopReading();
        return visit(buf, s, e, line);
      },
      { maxLineBytes: opts.maxLineBytes, onLong },
    );
  } catch (err) {
    if (err instanceof StopReading) return 0;
    if (err instanceof NaraError) throw err;
    const code = (err as { code?: string }).code;
    throw new NaraError(`cannot read ${src.name}`, { cause: err, exitCode: code === "ENOENT" || code === "EACCES" ? ExitCode.usage : ExitCode.internal });
  }
}

/** Files at least this big are checked on two threads (pass 1). */
const PARALLEL_CHECK_BYTES = 16 << 20;

/** Where to split a source for parallel checking: only a plain (not compressed or encrypted) file. */
async function plainSplit(src: Source): Promise<number | undefined> {
  try {
    if (sniff(await Bun.file(src.path).slice(0, 8).bytes()) !== "none") return undefined;
    // The main thread also takes the worker's lines in after its own: it gets the smaller part.
    return await splitPoint(src.path, src.size, 0.42);
  } catch {
    return undefined; // read it the ordinary way, which says what is wrong
  }
}
