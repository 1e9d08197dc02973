/**
 * Pass 1 of a restore: read every input once, validate every line and
 * decide, per line, whether it is sent: valid, the chosen copy of its ID (a
 * signed copy beats an unsigned one, otherwise the first wins) and selected
 * by the filters. What it keeps is a compact ID index and one bit per line,
 * never the events; then the send plan (counts, batches, services) follows.
 * If any line is invalid nothing is sent (unless skipInvalid).
 */
import { noFTL } from "bun:jsc";
import { ExitCode, NaraError } from "../errors.ts";
import { IdIndex, LineBits } from "../events/idindex.ts";
import { DEFAULT_MAX_LINE_BYTES, longLineReason } from "../events/lines.ts";
import { lineCrc, LineHashes } from "../events/linecheck.ts";
import { bomLength, validateLine } from "../events/validate.ts";
import { interrupted, invalidInputError } from "./diagnose.ts";
import { matches } from "./filter.ts";
import { forEachHeldLine, holdInput, KeptLines, LineSpans } from "./held.ts";
import { HOLD_BYTES, KEEP_HEY_THERE_BYTES, parallelCheckBytes, type RestoreOptions } from "./options.ts";
import { recordOf, startChecker, type CheckedLine } from "./parallel.ts";
import { isPlainFile, plainSplit, readLines, type Source } from "./sources.ts";
import type { InputReport, RestoreHooks, RestoreSummary } from "./summary.ts";

export const HEY_THERE = "hey-there";

/** Pass 1's bookkeeping per line, besides the closures planRestore makes. */
const BOOKKEEPING = [IdIndex.prototype.getAt, IdIndex.prototype.setFound, IdIndex.prototype.get, LineBits.prototype.set, LineSpans.prototype.set, matches];

/**
 * Held inputs (64 MiB at most, a few hundred thousand lines) make a short
 * pass 1: JSC's top tier (FTL) compiles its bookkeeping once it is hot, and
 * that compile costs more CPU than the faster code saves before the pass
 * ends, so it stays a tier lower (DFG), for the rest of the process. Read
 * as a stream, a longer pass loses more than the compile (bench/RESULTS.md).
 */
function shortPass(closures: ((...args: never[]) => unknown)[]): void {
  for (const f of [...BOOKKEEPING, ...closures]) noFTL(f);
}

/**
 * Where a checked line is: its span (kept for a held input) and, lazily, its CRC (kept otherwise);
 * `buf` holds it, unless another thread checked it.
 */
type Where = { s: number; e: number; crc: () => number; idS: number; idE: number; svc: string; buf?: Uint8Array };

/** What pass 1 keeps, per source, for the send passes: which lines are sent and what they were. */
export type Selection = {
  /** The selected lines. */
  bits: LineBits[];
  /** The selected hey-there lines (sent in pass 2; pass 3 sends bits minus these). */
  heyBits: LineBits[];
  /** Per selected line: its CRC-32 (what the send passes trust), for an input read again. */
  crcs: LineHashes[];
  /** Per selected line of a held input (sources.ts, held.ts): where its bytes are. */
  spans: (LineSpans | undefined)[];
  /** The last selected line. */
  lastLine: number[];
  /** The selected lines the fast check answered (their leading fields can be read again without validating). */
  plain: LineBits[];
  /** The last selected hey-there line (pass 2 reads no further). */
  lastHeyThere: number[];
  /** The selected hey-there lines of compressed or encrypted inputs, copied (pass 2 reads an input only when it kept none). */
  kept: KeptLines;
  /** Selected events in all, --skip included, and the hey-there ones among them. */
  total: number;
  heyThere: number;
};

/**
 * Pass 1 and the plan, into `summary`. Returns what to send, or undefined
 * when nothing is (interrupted, invalid input, nothing selected): then
 * `summary` says why.
 */
export async function planRestore(sources: Source[], opts: RestoreOptions, hooks: RestoreHooks, summary: RestoreSummary): Promise<Selection | undefined> {
  const filter = opts.filter ?? {};
  const skip = opts.skip ?? 0;
  // Sized for the events the inputs' bytes suggest (~256 bytes each, more when compressed): no regrowing on the way.
  const index = new IdIndex(Math.min(sources.reduce((n, src) => n + src.size, 0) / 256, 1 << 20));
  const bits = sources.map(() => new LineBits());
  const heyBits = sources.map(() => new LineBits());
  // All inputs or none: a held input beside one read as a stream (and checked on two threads) would add
  // the held bytes to the streaming's own peak (two 56 MiB files: 258 MiB against 162 MiB holding neither).
  let holdLeft = opts.holdBytes ?? HOLD_BYTES;
  const holdAll = sources.reduce((n, src) => n + src.size, 0) <= holdLeft;
  for (const src of sources) {
    src.held = holdAll && holdLeft > 0 ? holdInput(src.path, holdLeft) : undefined;
    holdLeft -= src.held?.length ?? 0;
  }
  const kept = new KeptLines(sources.length, opts.keepHeyThereBytes ?? KEEP_HEY_THERE_BYTES, HEY_THERE);
  // Only where a pass costs a decompression or decryption: a plain file is read again for 60-100 ms per 100 MiB,
  // less than the copies' memory is worth (bench/RESULTS.md); a held input is not read again at all.
  for (let i = 0; i < sources.length; i++) if (sources[i]!.held || (await isPlainFile(sources[i]!).catch(() => false))) kept.drop(i);
  const crcs = sources.map(() => new LineHashes());
  const spans = sources.map((src) => (src.held ? new LineSpans() : undefined));
  const lastLine = sources.map(() => 0);
  const plain = sources.map(() => new LineBits());
  /** A line is kept: by its span when held, else by its CRC. */
  const keep = (i: number, line: number, at: Where, isPlain: boolean) => {
    bits[i]!.set(line, true);
    const sp = spans[i];
    if (sp) sp.set(line, at.s, at.e, at.idS, at.idE, at.svc);
    else crcs[i]!.set(line, at.crc());
    if (isPlain) plain[i]!.set(line, true);
    if (line > lastLine[i]!) lastLine[i] = line;
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
    const accept = (line: number, v: CheckedLine, at: Where) => {
      report.valid++;
      const selected = matches(filter, v);
      // No ID string for a line whose ID is its plain bytes (validated withoutId): looked up by them.
      const old = v.id === "" ? index.getAt(at.buf!, at.idS, at.idE) : index.get(v.id);
      if (old === undefined) {
        index.setFound({ input: i, line, signed: v.signed, selected });
        if (selected) {
          keep(i, line, at, v.plain);
          services.set(v.svc, (services.get(v.svc) ?? 0) + 1);
          if (v.svc === HEY_THERE) {
            heyBits[i]!.set(line, true);
            lastHeyThere[i] = line;
            kept.add(i, line, at.buf, at.s, at.e, at.idS, at.idE);
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
        kept.remove(old.input, old.line);
        services.set(v.svc, services.get(v.svc)! - 1);
      }
      index.setFound({ input: i, line, signed: true, selected });
      if (selected) {
        keep(i, line, at, v.plain);
        services.set(v.svc, (services.get(v.svc) ?? 0) + 1);
        if (v.svc === HEY_THERE) {
          heyBits[i]!.set(line, true);
          lastHeyThere[i] = Math.max(lastHeyThere[i]!, line);
          kept.add(i, line, at.buf, at.s, at.e, at.idS, at.idE);
        }
      }
    };
    const invalid = (line: number, reason: string) => {
      report.invalid++;
      hooks.onInvalid?.({ input: src.name, line, reason });
    };
    // A large plain file: its second half is checked by a worker meanwhile (parallel.ts), where a core is spare.
    const split = !withNaras && !src.held && src.size >= (opts.parallelCheckBytes ?? parallelCheckBytes()) ? await plainSplit(src) : undefined;
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
              accept(line, v, { s: 0, e: 0, crc: () => v.crc, idS: -1, idE: -1, svc: "" });
            }
            while (bad < c.invalid.length) invalid(nearLines + c.invalid[bad]!.line, c.invalid[bad++]!.reason);
            report.lines += c.count + c.invalid.length;
            linesRead += c.count + c.invalid.length;
            hooks.onScan?.({ lines: linesRead, bytes: bytesRead, totalBytes });
          });
    const where: Where & { buf: Uint8Array } = { s: 0, e: 0, buf: new Uint8Array(0), crc: () => lineCrc(where.buf, where.s, where.e), idS: -1, idE: -1, svc: "" };
    const withoutTs = filter.since === undefined && filter.until === undefined;
    const bytesBefore = bytesRead;
    const visit = (buf: Uint8Array, s: number, e: number, line: number) => {
      report.lines++;
      if (++linesRead % 16384 === 0) {
        if (src.held) bytesRead = bytesBefore + s;
        hooks.onScan?.({ lines: linesRead, bytes: bytesRead, totalBytes });
      }
      if (line === 1) s += bomLength(buf, s, e);
      const v = validateLine(buf, s, e, { withNaras, withoutTs, withoutId: true });
      if (!v.ok) return invalid(line, v.reason);
      where.buf = buf;
      where.s = s;
      where.e = e;
      where.idS = v.idS;
      where.idE = v.idE;
      where.svc = v.svc;
      accept(line, v, where);
    };
    if (src.held) shortPass([accept, visit, keep]);
    const onLong = (line: number, bytes: number) => {
      report.lines++;
      invalid(line, longLineReason(bytes, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES));
    };
    try {
      nearLines = src.held
        ? await forEachHeldLine(src.held, 0, src.held.length, visit, { maxLineBytes: opts.maxLineBytes, onLong, stop: () => opts.signal?.aborted === true })
        : await readLines(src, opts, visit, (n) => (bytesRead += n), split, onLong);
      if (src.held) bytesRead = bytesBefore + src.held.length;
      if (checker && !opts.signal?.aborted) await checker.ready();
    } catch (err) {
      throw err instanceof NaraError ? err : new NaraError(`cannot read ${src.name}`, { cause: err, exitCode: ExitCode.internal });
    } finally {
      checker?.stop();
    }
    summary.lines += report.lines;
    summary.valid += report.valid;
    summary.invalid += report.invalid;
    if (opts.signal?.aborted) {
      interrupted(summary);
      return undefined;
    }
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
    summary.failure = invalidInputError(summary.invalid);
    summary.exitCode = summary.failure.exitCode;
    return undefined;
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
  if (summary.toSend === 0) return undefined;
  return { bits, heyBits, crcs, spans, lastLine, plain, lastHeyThere, kept, total: selectedTotal, heyThere: heyThereTotal };
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
