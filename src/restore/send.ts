/**
 * Passes 2 and 3 of a restore: the hey-there events first (peers learn keys
 * from them before checking signatures), from the copies pass 1 kept or by
 * reading the inputs again, then everything else. A line read again is
 * trusted when its bytes still give the CRC pass 1 kept (linecheck.ts)
 * instead of being validated again. Sending is pipelined
 * (pipeline.ts): the next batch is read and encoded while the current one is
 * with the nara; each is signed and retried in import.ts.
 */
import { leadingSpans, lineCrc, type LeadingSpans } from "../events/linecheck.ts";
import { bomLength, validateLine } from "../events/validate.ts";
import { Batch, signBatch } from "./batch.ts";
import { batchFailure, changedError, countChangedError, interrupted } from "./diagnose.ts";
import { sendBatch, type Attempt } from "./import.ts";
import { BACKOFF_MS, DEFAULT_IN_FLIGHT, MAX_BACKOFF_MS, type RestoreOptions } from "./options.ts";
import { InFlight } from "./pipeline.ts";
import type { LinesInMemory } from "./held.ts";
import { HEY_THERE, type Selection } from "./plan.ts";
import { readLines, StopReading, type Source } from "./sources.ts";
import type { RestoreHooks, RestoreSummary } from "./summary.ts";

/** Sends what pass 1 selected, into `summary` (a failure or an interruption included). */
export async function sendSelected(sources: Source[], sel: Selection, opts: RestoreOptions, hooks: RestoreHooks, summary: RestoreSummary): Promise<void> {
  const skip = opts.skip ?? 0;
  const { bits, heyBits, crcs, spans, lastLine, plain, lastHeyThere, kept } = sel;
  let position = 0; // in send order, --skip included
  let batch = new Batch();
  /** Batches whose request is over, emptied for reuse: at most in-flight + 1 buffers, each allocated once. */
  const spare: Batch[] = [];
  let batchIndex = 0;
  let stopped = false;
  const inFlight = new InFlight(opts.inFlight ?? DEFAULT_IN_FLIGHT);
  /** The first batch that failed (by time), settled into summary.failure once nothing is in flight. */
  let failed: { last: Exclude<Attempt, { kind: "ok" }>; batch: number; attempts: number } | undefined;
  const { url, timeoutMs, retries, signal, fetch, now, sleep, random } = opts;
  const backoff = { backoffMs: opts.backoffMs ?? BACKOFF_MS, maxBackoffMs: opts.maxBackoffMs ?? MAX_BACKOFF_MS };
  const retry = { url, identity: opts.signer.identity, timeoutMs, retries, ...backoff, signal, fetch, now, sleep, random };

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

  const lead: LeadingSpans = { idS: 0, idE: 0, svc: "" };
  /**
   * Adds a line pass 1 checked to the batch: by its leading bytes when it
   * was plain (no strings made), else validated again. Returns its service.
   */
  const take = (buf: Uint8Array, s: number, e: number, isPlain: boolean, name: string, line: number): string => {
    if (isPlain && leadingSpans(buf, s, e, lead)) {
      batch.addLine(buf, s, e, lead.idS, lead.idE, lead.svc);
      return lead.svc;
    }
    const v = validateLine(buf, s, e);
    if (!v.ok) throw changedError(name, line);
    batch.add(buf, s, e, v.id, v.svc);
    return v.svc;
  };
  const serviceOf = (buf: Uint8Array, s: number, e: number, isPlain: boolean): string | undefined => {
    if (isPlain && leadingSpans(buf, s, e, lead)) return lead.svc;
    const v = validateLine(buf, s, e);
    return v.ok ? v.svc : undefined;
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
      // Lines already in memory, the bytes pass 1 checked: a held input, or the hey-there lines it copied.
      const copies = heyThere ? kept.of(i) : undefined;
      const sp: LinesInMemory | undefined = spans[i] ?? copies;
      const bytes = src.held ?? copies?.bytes;
      if (sp && bytes) {
        // Cut out in place, nothing read again.
        const until = heyThere ? lastHeyThere[i]! : lastLine[i]!;
        try {
          for (let line = 1; line <= until; line++) {
            if (!b.has(line) || hey.has(line) !== heyThere) continue;
            if (opts.signal?.aborted) break;
            const s = sp.start(line);
            const e = sp.end(line);
            if (++position <= skip) continue;
            const idS = sp.idStart(line);
            if (idS >= 0) batch.addLine(bytes, s, e, idS, sp.idEnd(line), sp.svc(line));
            else take(bytes, s, e, isPlain.has(line), src.name, line);
            if (batch.count >= opts.batchSize) await flush();
          }
        } catch (err) {
          if (!(err instanceof StopReading)) throw err;
        }
        if (copies) kept.drop(i);
        if (opts.signal?.aborted) return;
        continue;
      }
      const until = heyThere ? lastHeyThere[i]! : Infinity;
      await readLines(src, opts, async (buf, s, e, line) => {
        if (line > until) throw new StopReading();
        if (!b.has(line) || hey.has(line) !== heyThere) return;
        if (line === 1) s += bomLength(buf, s, e);
        // The bytes pass 1 validated (same CRC): their ID and service, without checking them again.
        if (lineCrc(buf, s, e) !== crc.get(line)) throw changedError(src.name, line);
        if (++position <= skip) {
          if ((serviceOf(buf, s, e, isPlain.has(line)) === HEY_THERE) !== heyThere) throw changedError(src.name, line);
          return;
        }
        if ((take(buf, s, e, isPlain.has(line), src.name, line) === HEY_THERE) !== heyThere) throw changedError(src.name, line);
        if (batch.count >= opts.batchSize) await flush();
      });
      if (opts.signal?.aborted) return;
    }
  };

  try {
    if (sel.heyThere > 0) await sendPass(true);
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
    return;
  }
  if (opts.signal?.aborted) return interrupted(summary);
  if (position !== sel.total) throw countChangedError(sel.total, position, summary.sent);
}
