import { defineCommand } from "citty";
import { identityArgs, outputArgs, outputOptions, lineArgs, parseDuration, parseIntArg, parseMaxLineBytes } from "../cli/args.ts";
import { createLog } from "../cli/log.ts";
import { createProgress, formatBytes, formatDuration } from "../cli/progress.ts";
import { ExitCode, NaraError } from "../errors.ts";
import { KNOWN_SERVICES } from "../events/id.ts";
import { isEmptyFilter, parseFilter } from "../restore/filter.ts";
import { describeSigner, loadRestoreIdentity } from "../identity/signer.ts";
import { displayUrl, importUrl, naraBaseUrl } from "../restore/import.ts";
import { restoreEvents, type InvalidLine, type RestoreSummary } from "../restore/restore.ts";
import { loadDecryptSoul } from "../io/seed.ts";
import { checkTailnetUrl, meshArgs, meshFetch, openMesh } from "../cli/mesh.ts";

/** Invalid lines listed one by one before "… and N more" (all of them with --verbose). */
const INVALID_SHOWN = 1000;
/** Invalid lines kept in the --json summary. */
const INVALID_IN_JSON = 1000;

export default defineCommand({
  meta: {
    name: "restore-events",
    description: "Send a backup (JSON Lines) into a nara: validated, filtered, in signed batches, retried",
  },
  args: {
    "nara-url": {
      type: "string",
      required: true,
      description: "the target nara's own HTTP server (its web UI), e.g. http://localhost:8080",
      valueHint: "url",
    },
    ...identityArgs,
    name: {
      type: "string",
      description: "the target nara's name: checks that the soul is bonded to it before sending (optional)",
      valueHint: "name",
    },
    files: {
      type: "positional",
      required: false,
      description: "backup files (JSON Lines, plain, zstd or gzip, maybe encrypted), merged and deduplicated by ID; none or - reads stdin",
      valueHint: "FILE...",
      // Several files are allowed: read from args._ (src/cli.ts must not reject the extra words).
      variadic: true,
    } as { type: "positional"; required: false; description: string; valueHint: string },
    "backup-soul-file": {
      type: "string",
      description: "soul that decrypts an encrypted backup made by another nara (or NARA_BACKUP_SOUL); default: the restore's own soul",
      valueHint: "path",
    },
    "batch-size": { type: "string", default: "2000", description: "events per import request", valueHint: "n" },
    "in-flight": { type: "string", default: "1", description: "batches sent at once (the next is always prepared meanwhile); more only for a nara on a bigger machine", valueHint: "n" },
    timeout: { type: "string", default: "5m", description: "time allowed for each request (each attempt)", valueHint: "duration" },
    retries: { type: "string", default: "5", description: "retries of a batch after 5xx, timeouts, dropped connections", valueHint: "n" },
    "dry-run": { type: "boolean", description: "validate, filter, batch and sign, but send nothing" },
    service: { type: "string", description: "only these services, e.g. social,ping", valueHint: "list" },
    since: { type: "string", description: "only events at or after T (RFC 3339, Unix seconds or nanoseconds)", valueHint: "T" },
    until: { type: "string", description: "only events before T (exclusive)", valueHint: "T" },
    nara: { type: "string", description: "only events about these naras (emitter, actor, target, subject, observer)", valueHint: "list" },
    skip: { type: "string", default: "0", description: "leave out the first N events of the send order (resume an interrupted restore)", valueHint: "n" },
    "skip-invalid": { type: "boolean", description: "send the valid events even when some lines are invalid" },
    ...lineArgs,
    ...meshArgs,
    ...outputArgs,
    json: { type: "boolean", description: "print the summary as one JSON object on stderr" },
  },
  async run({ args }) {
    const out = outputOptions(args);
    // As dump-events: with --json the summary is what scripts read on stderr; only warnings besides it, unless --verbose.
    const log = createLog({ ...out, quiet: out.quiet || (out.json && !out.verbose) });

    const url = importUrl(args["nara-url"]);
    const batchSize = parseIntArg(args["batch-size"], "--batch-size", { min: 1, max: 1_000_000 });
    const inFlight = parseIntArg(args["in-flight"], "--in-flight", { min: 1, max: 64 });
    const timeoutMs = parseDuration(args.timeout, "--timeout");
    if (timeoutMs <= 0) throw new NaraError("--timeout must be more than 0", { exitCode: ExitCode.usage });
    const retries = parseIntArg(args.retries, "--retries", { min: 0, max: 1000 });
    const skip = parseIntArg(args.skip, "--skip", { min: 0 });
    const maxLineBytes = parseMaxLineBytes(args);
    const filter = parseFilter(
      { service: args.service, since: args.since, until: args.until, nara: args.nara },
      [...KNOWN_SERVICES],
      (m) => log.warn(m),
    );
    const inputs = (args._ ?? []).map(String);
    const dryRun = args["dry-run"] === true;

    const signer = loadRestoreIdentity(args, log);
    // Encrypted backups are decrypted with the owner's soul: the target's own unless another is given.
    const decryptSoul = loadDecryptSoul({ envName: "NARA_BACKUP_SOUL", fileFlag: "--backup-soul-file", file: args["backup-soul-file"] }, log);
    const decryptSoulHint = decryptSoul
      ? "the soul given in NARA_BACKUP_SOUL / --backup-soul-file is not the one this backup was encrypted with: give the soul of the nara that made it"
      : undefined;
    if (signer.bondChecked) log.debug(`the soul is bonded to ${signer.identity.name} (nara ID ${signer.identity.naraId})`);
    else log.debug("no --name given: the soul's bond to a name was not checked (the signing key comes from the soul alone)");
    log.debug(`signing as ${describeSigner(signer)}`);
    if (!isEmptyFilter(filter)) log.debug(`filters: ${describeFilter(args)}`);

    // A nara reachable only on the tailnet: join it (a dry run sends nothing, so it does not join). Left when this returns.
    await using mesh = await openMesh(dryRun ? { proxy: args.proxy } : args, log, { exitOnSignal: false });
    await checkTailnetUrl(mesh, url, "--nara-url");

    const progress = createProgress({ enabled: Boolean(process.stderr.isTTY) && !out.quiet && !out.json && !out.verbose });
    const invalid: InvalidLine[] = [];
    let invalidCount = 0;
    let moreNoted = false;
    const noteMoreInvalid = () => {
      if (moreNoted || invalidCount <= INVALID_SHOWN || out.json || out.verbose) return;
      moreNoted = true;
      process.stderr.write(`… and ${invalidCount - INVALID_SHOWN} more invalid lines (--verbose lists them all)\n`);
    };
    const controller = new AbortController();
    let interrupts = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++interrupts > 1) process.exit(signal === "SIGINT" ? ExitCode.interrupted : 143);
      progress.stop();
      log.warn("interrupted: stopping after the request in flight (Ctrl-C again to quit at once)");
      controller.abort();
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);

    let summary: RestoreSummary;
    try {
      summary = await restoreEvents(
        {
          inputs,
          url,
          signer,
          batchSize,
          inFlight,
          timeoutMs,
          retries,
          dryRun,
          skip,
          skipInvalid: args["skip-invalid"] === true,
          maxLineBytes,
          filter,
          signal: controller.signal,
          fetch: meshFetch(mesh),
          decryptSoul,
          decryptSoulHint,
        },
        {
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
              extra: `MiB · ${p.lines.toLocaleString("en")} lines`,
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
            progress.update({ label: dryRun ? "signing" : "restoring", done: b.index, total: b.of, unit: "batches", extra: `${b.sentSoFar.toLocaleString("en")} events` });
          },
          onRetry(r) {
            progress.stop();
            log.warn(`batch ${r.batch}: ${r.error}; retry ${r.attempt}/${r.of - 1} in ${formatDuration(r.delayMs)}`);
          },
        },
      );
    } finally {
      progress.stop();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    noteMoreInvalid();

    if (out.json) {
      process.stderr.write(`${JSON.stringify(jsonSummary(summary, invalid))}\n`);
    } else if (!out.quiet) {
      process.stderr.write(formatSummary(summary, args["skip-invalid"] === true));
    }
    if (summary.failure) throw summary.failure;
    return summary.exitCode;
  },
});

function describeFilter(args: { service?: string; since?: string; until?: string; nara?: string }): string {
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
