/**
 * What restore-events prints: the invalid lines as they are found, progress,
 * the plan and each batch (--verbose), retries, and the summary at the end
 * (human lines, or one JSON object with --json), all on stderr.
 */
import { describeSigner, type RestoreIdentity } from "../../identity/signer.ts";
import { isEmptyFilter, type EventFilter, type FilterArgs } from "../../restore/filter.ts";
import { displayUrl, naraBaseUrl } from "../../restore/import.ts";
import type { InvalidLine, RestoreHooks, RestoreSummary } from "../../restore/restore.ts";
import { LogLevels } from "consola/core";
import type { OutputOptions } from "../args.ts";
import type { Log } from "../log.ts";
import { formatBytes, formatCount, formatDuration, type Progress } from "../progress.ts";

/** Invalid lines listed one by one before "… and N more" (all of them with --verbose). */
const INVALID_SHOWN = 1000;
/** Invalid lines kept in the --json summary. */
const INVALID_IN_JSON = 1000;

/** Debug lines on who signs and what is selected, before anything is read. */
export function logRestoreSetup(log: Log, signer: RestoreIdentity, filter: EventFilter, filterArgs: FilterArgs): void {
  // The public key behind describeSigner costs ~30 ms of CPU to derive: not for a line nobody sees.
  if (log.level < LogLevels.debug) return;
  if (signer.bondChecked) log.debug(`the soul is bonded to ${signer.identity.name} (nara ID ${signer.identity.naraId})`);
  else log.debug("no --name given: the soul's bond to a name was not checked (the signing key comes from the soul alone)");
  log.debug(`signing as ${describeSigner(signer)}`);
  if (!isEmptyFilter(filter)) log.debug(`filters: ${describeFilter(filterArgs)}`);
}

export type RestoreReport = {
  hooks: RestoreHooks;
  /** The summary (and the note on invalid lines not listed), once the restore returned. */
  end(summary: RestoreSummary, skipInvalid: boolean): void;
};

/** The restore's hooks drawn on stderr, and its summary at the end. */
export function restoreReport(ctx: { out: OutputOptions; log: Log; progress: Progress; dryRun: boolean; url: string }): RestoreReport {
  const { out, log, progress, dryRun, url } = ctx;
  const invalid: InvalidLine[] = [];
  let invalidCount = 0;
  let moreNoted = false;
  const noteMoreInvalid = () => {
    if (moreNoted || invalidCount <= INVALID_SHOWN || out.json || out.verbose) return;
    moreNoted = true;
    process.stderr.write(`… and ${invalidCount - INVALID_SHOWN} more invalid lines (--verbose lists them all)\n`);
  };
  const hooks: RestoreHooks = {
    onInvalid(bad) {
      invalidCount++;
      if (invalid.length < INVALID_IN_JSON) invalid.push(bad);
      if (!out.json && (out.verbose || invalidCount <= INVALID_SHOWN)) {
        progress.stop();
        process.stderr.write(`${bad.input}:${bad.line}: ${bad.reason}\n`);
      }
    },
    onWarn: (m) => log.warn(m),
    onDebug: (m) => log.debug(m),
    onScan(p) {
      progress.update({
        label: "validating",
        done: Math.round(p.bytes / 1048576),
        total: Math.round(p.totalBytes / 1048576),
        fraction: p.totalBytes > 0 ? p.bytes / p.totalBytes : 0,
        extra: `MiB · ${formatCount(p.lines)} lines`,
      });
    },
    onPlan(plan) {
      progress.stop();
      noteMoreInvalid();
      const verb = dryRun ? "would send" : "sending";
      log.info(`${verb} ${plan.toSend} event(s) in ${plan.batches} batch(es) to ${naraBaseUrl(displayUrl(url))}${plan.heyThere > 0 ? ` (${plan.heyThere} hey-there first)` : ""}`);
    },
    onBatch(b) {
      if (out.verbose) {
        const result = dryRun
          ? "signed, not sent (dry run)"
          : `imported ${b.imported}, duplicates ${b.duplicates}${b.warnings ? `, warnings ${b.warnings}` : ""} in ${formatDuration(b.ms)}${b.attempts > 1 ? ` (attempt ${b.attempts})` : ""}`;
        log.debug(`batch ${b.index}/${b.of}: ${b.events} events, ${formatBytes(b.bytes)}: ${result}`);
      }
      progress.update({ label: dryRun ? "signing" : "restoring", done: b.index, total: b.of, unit: "batches", extra: `${formatCount(b.sentSoFar)} events` });
    },
    onRetry(r) {
      progress.stop();
      log.warn(`batch ${r.batch}: ${r.error}; retry ${r.attempt}/${r.of - 1} in ${formatDuration(r.delayMs)}`);
    },
  };
  return {
    hooks,
    end(summary, skipInvalid) {
      noteMoreInvalid();
      if (out.json) {
        process.stderr.write(`${JSON.stringify(jsonSummary(summary, invalid))}\n`);
      } else if (!out.quiet) {
        process.stderr.write(formatSummary(summary, skipInvalid));
      }
    },
  };
}

function describeFilter(args: FilterArgs): string {
  const parts: string[] = [];
  if (args.service) parts.push(`--service ${args.service}`);
  if (args.since) parts.push(`--since ${args.since}`);
  if (args.until) parts.push(`--until ${args.until}`);
  if (args.nara) parts.push(`--nara ${args.nara}`);
  return parts.join(" ");
}

/** The --json object: the issue's keys first, then the details. */
export function jsonSummary(s: RestoreSummary, invalidLines: InvalidLine[] = []): Record<string, unknown> {
  return {
    url: s.url,
    endpoint: s.endpoint,
    dryRun: s.dryRun,
    imported: s.imported,
    duplicates: s.duplicates,
    warnings: s.warnings,
    filtered: s.filtered,
    invalid: s.invalid,
    batches: s.batches,
    sent: s.sent,
    toSend: s.toSend,
    skipped: s.skipped,
    batchesPlanned: s.batchesPlanned,
    services: s.services,
    lines: s.lines,
    valid: s.valid,
    unique: s.unique,
    duplicatesInInput: s.duplicatesInInput,
    retries: s.retries,
    inputs: s.inputs,
    ...(s.resumeSkip !== undefined ? { resumeSkip: s.resumeSkip } : {}),
    ...(invalidLines.length > 0 ? { invalidLines } : {}),
    seconds: Math.round(s.seconds * 1000) / 1000,
    exitCode: s.exitCode,
    ...(s.failure ? { error: s.failure.message, ...(s.failure.hint ? { hint: s.failure.hint } : {}) } : {}),
  };
}

/** The human summary on stderr; the first lines are those of the Go tool. */
export function formatSummary(s: RestoreSummary, skipInvalid = false): string {
  const lines: string[] = [];
  const extra = (label: string, n: number, note: string) => {
    if (n > 0) lines.push(`  ${label}: ${n} ${note}`);
  };
  if (s.dryRun) {
    lines.push(`Dry run: nothing was sent to ${s.url}`);
    lines.push(`  Would send: ${s.toSend} events in ${s.batchesPlanned} batch(es) (each signed, none sent)`);
    for (const [svc, n] of Object.entries(s.services).sort((a, b) => b[1] - a[1])) lines.push(`    ${svc}: ${n}`);
  } else if (s.failure && s.batches === 0 && s.invalid > 0 && !skipInvalid) {
    lines.push(`Nothing was sent to ${s.url}: ${s.invalid} of ${s.lines} lines are invalid`);
    return `${lines.join("\n")}\n`;
  } else {
    if (!s.failure) {
      lines.push(s.toSend === 0 ? `Nothing to send to ${s.url}` : `Successfully imported events to ${s.url}`);
    } else {
      lines.push(
        s.batches > 0
          ? `Stopped after ${s.batches} of ${s.batchesPlanned} batches to ${s.url}`
          : `Nothing was imported into ${s.url}`,
      );
    }
    lines.push(`  Imported: ${s.imported}`);
    lines.push(`  Duplicates: ${s.duplicates}${s.duplicates > 0 ? " (already there, or refused by the nara as invalid)" : ""}`);
    extra("Warnings", s.warnings, "(signed events whose emitter key is unknown or whose signature fails; imported anyway)");
    lines.push(`  Batches: ${s.batches} of ${s.batchesPlanned}, ${s.sent} events sent`);
  }
  extra("Filtered", s.filtered, "(left out by --service/--since/--until/--nara)");
  extra("Skipped", s.skipped, "(--skip)");
  extra("Invalid", s.invalid, skipInvalid ? "lines (left out: --skip-invalid)" : "lines");
  extra("Repeated in input", s.duplicatesInInput, "(extra copies of an ID: one copy sent)");
  extra("Retried", s.retries, "failed request(s), each sent again (import is idempotent: events of a retried batch may count as duplicates)");
  return `${lines.join("\n")}\n`;
}
