import { onInterrupt, signalExitCode } from "../cli/signals.ts";
import { defineCommand } from "citty";
import { filesArg, identityArgs, lineArgs, outputArgsWith, parseDuration, parseIntArg, parseMaxLineBytes } from "../cli/args.ts";
import { checkTailnetUrl, meshArgs, meshFetch, openMesh } from "../cli/mesh.ts";
import { logRestoreSetup, restoreReport } from "../cli/render/restore.ts";
import { commandSetup } from "../cli/setup.ts";
import { ExitCode } from "../errors.ts";
import { KNOWN_SERVICES } from "../events/id.ts";
import { loadRestoreIdentity } from "../identity/signer.ts";
import { loadDecryptSoul } from "../io/seed.ts";
import { parseFilter } from "../restore/filter.ts";
import { formatMs, importUrl } from "../restore/import.ts";
import {
  checkSendSettings,
  DEFAULT_BATCH_SIZE,
  DEFAULT_IN_FLIGHT,
  DEFAULT_RETRIES,
  DEFAULT_TIMEOUT_MS,
  restoreEvents,
  type RestoreSummary,
} from "../restore/restore.ts";

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
    ...filesArg("backup files (JSON Lines, plain, zstd or gzip, maybe encrypted), merged and deduplicated by ID; none or - reads stdin"),
    "backup-soul-file": {
      type: "string",
      description: "soul that decrypts an encrypted backup made by another nara (or NARA_BACKUP_SOUL); default: the restore's own soul",
      valueHint: "path",
    },
    "batch-size": { type: "string", default: String(DEFAULT_BATCH_SIZE), description: "events per import request", valueHint: "n" },
    "in-flight": {
      type: "string",
      default: String(DEFAULT_IN_FLIGHT),
      description: "batches sent at once (the next is always prepared meanwhile); more only for a nara on a bigger machine",
      valueHint: "n",
    },
    timeout: { type: "string", default: formatMs(DEFAULT_TIMEOUT_MS), description: "time allowed for each request (each attempt)", valueHint: "duration" },
    retries: { type: "string", default: String(DEFAULT_RETRIES), description: "retries of a batch after 5xx, timeouts, dropped connections", valueHint: "n" },
    "dry-run": { type: "boolean", description: "validate, filter, batch and sign, but send nothing" },
    service: { type: "string", description: "only these services, e.g. social,ping", valueHint: "list" },
    since: { type: "string", description: "only events at or after T (RFC 3339, Unix seconds or nanoseconds)", valueHint: "T" },
    until: { type: "string", description: "only events before T (exclusive)", valueHint: "T" },
    nara: { type: "string", description: "only events about these naras (emitter, actor, target, subject, observer)", valueHint: "list" },
    skip: { type: "string", default: "0", description: "leave out the first N events of the send order (resume an interrupted restore)", valueHint: "n" },
    "skip-invalid": { type: "boolean", description: "send the valid events even when some lines are invalid" },
    ...lineArgs,
    ...meshArgs,
    ...outputArgsWith("print the summary as one JSON object on stderr"),
  },
  async run({ args }) {
    const { out, log, progress: startProgress } = commandSetup(args);

    const url = importUrl(args["nara-url"]);
    const batchSize = parseIntArg(args["batch-size"], "--batch-size", { min: 1, max: 1_000_000 });
    const inFlight = parseIntArg(args["in-flight"], "--in-flight", { min: 1, max: 64 });
    const timeoutMs = parseDuration(args.timeout, "--timeout");
    checkSendSettings({ batchSize, inFlight, timeoutMs });
    const retries = parseIntArg(args.retries, "--retries", { min: 0, max: 1000 });
    const skip = parseIntArg(args.skip, "--skip", { min: 0 });
    const maxLineBytes = parseMaxLineBytes(args);
    const filterArgs = { service: args.service, since: args.since, until: args.until, nara: args.nara };
    const filter = parseFilter(filterArgs, [...KNOWN_SERVICES], (m) => log.warn(m));
    const inputs = (args._ ?? []).map(String);
    const dryRun = args["dry-run"] === true;
    const skipInvalid = args["skip-invalid"] === true;

    const signer = loadRestoreIdentity(args, log);
    // Encrypted backups are decrypted with the owner's soul: the target's own unless another is given.
    const decryptSoul = loadDecryptSoul({ envName: "NARA_BACKUP_SOUL", fileFlag: "--backup-soul-file", file: args["backup-soul-file"] }, log);
    const decryptSoulHint = decryptSoul
      ? "the soul given in NARA_BACKUP_SOUL / --backup-soul-file is not the one this backup was encrypted with: give the soul of the nara that made it"
      : undefined;
    logRestoreSetup(log, signer, filter, filterArgs);

    // A nara reachable only on the tailnet: join it (a dry run sends nothing, so it does not join). Left when this returns.
    await using mesh = await openMesh(dryRun ? { proxy: args.proxy } : args, log, { exitOnSignal: false });
    await checkTailnetUrl(mesh, url, "--nara-url");

    const progress = startProgress();
    const report = restoreReport({ out, log, progress, dryRun, url });
    const controller = new AbortController();
    let interrupts = 0;
    const onSignal = (signal: NodeJS.Signals) => {
      if (++interrupts > 1) process.exit(signalExitCode(signal));
      progress.stop();
      log.warn("interrupted: stopping after the request in flight (Ctrl-C again to quit at once)");
      controller.abort();
    };
    const offSignals = onInterrupt(onSignal);

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
          skipInvalid,
          maxLineBytes,
          filter,
          signal: controller.signal,
          fetch: meshFetch(mesh),
          decryptSoul,
          decryptSoulHint,
        },
        report.hooks,
      );
    } finally {
      progress.stop();
      offSignals();
    }
    report.end(summary, skipInvalid);
    if (summary.failure) throw summary.failure;
    return summary.exitCode;
  },
});
