import { defineCommand } from "citty";
import { outputArgsWith, lineArgs, parseIntArg, parseMaxLineBytes } from "../cli/args.ts";
import { backupFilesArg, backupSoulArgs } from "../cli/backup-args.ts";
import { inputProgress, renderIssues, renderReport, verifyJson } from "../cli/render/backup.ts";
import { formatCount } from "../cli/progress.ts";
import { commandSetup } from "../cli/setup.ts";
import { ExitCode } from "../errors.ts";
import { loadKeysFile } from "../backup/keys.ts";
import { checkStdin, inputSizes, soulFromArgs } from "../backup/open.ts";
import { defaultThreads, verifyBackups, type VerifyReport } from "../backup/verify.ts";

export default defineCommand({
  meta: {
    name: "verify",
    description: "Check backups offline: every line an event, every ID recomputed, every signature verified, no duplicates, sorted",
  },
  args: {
    ...backupFilesArg,
    keys: {
      type: "string",
      description: "trusted public keys: lines name=BASE64 or a JSON object {name: BASE64}; they replace keys announced in the backup",
      valueHint: "path",
    },
    "require-sorted": { type: "boolean", description: "a line out of (ts, id) order is an error, not a warning" },
    ...lineArgs,
    workers: { type: "string", description: "signature-checking threads (default: cores, at most 4; 0 = main thread)", valueHint: "n" },
    ...backupSoulArgs,
    ...outputArgsWith("print the report as one JSON object on stdout"),
  },
  async run({ args }) {
    const { out, log, progress: newProgress } = commandSetup(args);
    const inputs = (args._ ?? []).map(String);
    const keys = args.keys === undefined ? undefined : loadKeysFile(args.keys);
    if (keys) log.debug(`${keys.size} trusted key(s) from ${args.keys}`);
    const threads = args.workers === undefined ? defaultThreads() : parseIntArg(args.workers, "--workers", { min: 0, max: 64 });
    const maxLineBytes = parseMaxLineBytes(args);
    const progress = newProgress();
    checkStdin(inputs, "verify");
    const onProgress = inputProgress(progress, "verifying", inputSizes(inputs), (p: { events: number }) => `${formatCount(p.events)} events`);
    let report: VerifyReport;
    try {
      const issueLimit = out.verbose ? Number.MAX_SAFE_INTEGER : 1000;
      const opts = { inputs, keys, requireSorted: args["require-sorted"] === true, maxLineBytes, soul: soulFromArgs(args, log), threads, issueLimit };
      report = await verifyBackups(opts, { onProgress, onDebug: (m) => log.debug(m) });
    } finally {
      progress.stop();
    }
    if (out.json) process.stdout.write(verifyJson(report));
    else {
      process.stderr.write(renderIssues(report, out));
      process.stdout.write(renderReport(report));
    }
    return report.ok ? ExitCode.ok : ExitCode.corrupt;
  },
});
