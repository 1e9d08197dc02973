import { defineCommand } from "citty";
import { outputArgsWith, lineArgs, parseIntArg, parseMaxLineBytes } from "../cli/args.ts";
import { backupFilesArg, backupSoulArgs } from "../cli/backup-args.ts";
import { inputProgress, renderStats, statsWarnings } from "../cli/render/backup.ts";
import { formatCount } from "../cli/progress.ts";
import { commandSetup } from "../cli/setup.ts";
import { ExitCode } from "../errors.ts";
import { checkStdin, inputSizes, soulFromArgs } from "../backup/open.ts";
import { backupStats, type StatsReport } from "../backup/stats.ts";
import { parseBucket } from "../backup/timeline.ts";

export default defineCommand({
  meta: {
    name: "stats",
    description: "What backups hold: events, bytes, time span, events per service, per emitter and over time",
  },
  args: {
    ...backupFilesArg,
    top: { type: "string", default: "10", description: "emitters listed by name (the rest are summed)", valueHint: "n" },
    ...lineArgs,
    by: { type: "string", description: "chart bucket: hour, day or month (default: by the time span)", valueHint: "hour|day|month" },
    ...backupSoulArgs,
    ...outputArgsWith("print the statistics as one JSON object on stdout"),
  },
  async run({ args }) {
    const { out, log, progress: newProgress } = commandSetup(args);
    const top = parseIntArg(args.top, "--top", { min: 0, max: 1_000_000 });
    const by = args.by === undefined ? undefined : parseBucket(args.by);
    const maxLineBytes = parseMaxLineBytes(args);
    const progress = newProgress();
    const inputs = (args._ ?? []).map(String);
    checkStdin(inputs, "stats");
    const onProgress = inputProgress(progress, "reading", inputSizes(inputs), (p: { lines: number }) => `${formatCount(p.lines)} lines`);
    let report: StatsReport;
    try {
      report = await backupStats({ inputs, top, by, maxLineBytes, soul: soulFromArgs(args, log) }, onProgress);
    } finally {
      progress.stop();
    }
    for (const warning of statsWarnings(report, by)) log.warn(warning);
    const width = process.stdout.isTTY ? (process.stdout.columns || 80) : 80;
    process.stdout.write(out.json ? `${JSON.stringify(report)}\n` : renderStats(report, width));
    return ExitCode.ok;
  },
});
