import { defineCommand } from "citty";
import { filesArg, identityArgs, lineArgs, outputArgsWith, parseMaxLineBytes, parseSize } from "../cli/args.ts";
import { formatBytes } from "../cli/progress.ts";
import { mergeHooks, reportMerge } from "../cli/render/backup.ts";
import { commandSetup } from "../cli/setup.ts";
import { onInterrupt, signalExitCode } from "../cli/signals.ts";
import { defaultMaxMemory, mergeBackups, requireInputs, type MergeSummary } from "../backup/merge.ts";
import { soulFromArgs } from "../backup/open.ts";
import { parseCompression } from "../io/output.ts";

export default defineCommand({
  meta: {
    name: "merge",
    description: "Merge backups into one deduplicated JSON Lines file in (ts, id) order, with bounded memory",
  },
  args: {
    ...filesArg("backup files (JSON Lines, plain, .zst/.gz or encrypted); - reads stdin"),
    output: { type: "string", alias: "o", description: "write to FILE (atomically) instead of stdout; .zst/.gz compress", valueHint: "file" },
    presorted: {
      type: "boolean",
      description: "inputs are sorted as dump-events writes them, one out of order is an error (=false: sort every input; default: stream, sort the unsorted ones)",
    },
    "max-memory": {
      type: "string",
      description: `memory for sorting unsorted inputs (default ${formatBytes(defaultMaxMemory())} here); more is spilled to temporary files`,
      valueHint: "size",
    },
    "temp-dir": { type: "string", description: "where sorted runs are spilled (default $TMPDIR or /tmp)", valueHint: "dir" },
    "skip-invalid": { type: "boolean", description: "leave malformed lines out (with a warning) instead of failing" },
    ...lineArgs,
    "check-ids": {
      type: "boolean",
      default: true,
      description: "remember written ids to catch one id under two timestamps (within --max-memory / 4)",
      negativeDescription: "do not remember ids: memory independent of the number of events",
    },
    compress: { type: "string", description: "zstd, gzip or none (default: by the output's extension)", valueHint: "kind" },
    encrypt: { type: "boolean", description: "encrypt the output with the soul's key (NARA_SOUL, --soul-file or --soul)" },
    ...identityArgs,
    name: { type: "string", description: "nara name: checks that the soul is bonded to it (optional)", valueHint: "name" },
    ...outputArgsWith("print the summary as one JSON object on stderr"),
  },
  async run({ args }) {
    const { out, log, progress: newProgress } = commandSetup(args);
    const inputs = (args._ ?? []).map(String);
    requireInputs(inputs);
    const maxMemory = args["max-memory"] === undefined ? undefined : parseSize(args["max-memory"], "--max-memory");
    const compress = args.compress === undefined ? undefined : parseCompression(args.compress);
    const maxLineBytes = parseMaxLineBytes(args);
    // The soul only when needed: --encrypt, or an encrypted input (asked for when one is opened).
    const soul = soulFromArgs(args, log);
    const encryptSeed = args.encrypt ? soul.required() : undefined;
    const progress = newProgress();

    // A signal stops the merge, which removes its temporary files and partial output at once; then exit 130/143.
    const controller = new AbortController();
    const stopListening = onInterrupt((signal) => {
      controller.abort();
      process.exit(signalExitCode(signal));
    });
    let summary: MergeSummary;
    try {
      summary = await mergeBackups(
        {
          inputs,
          output: args.output,
          presorted: args.presorted,
          maxMemory,
          tempDir: args["temp-dir"],
          skipInvalid: args["skip-invalid"] === true,
          maxLineBytes,
          checkIds: args["check-ids"] !== false,
          soul,
          compress,
          encryptSeed,
          signal: controller.signal,
        },
        mergeHooks(log, progress),
      );
    } finally {
      stopListening();
    }
    progress.stop();
    reportMerge(summary, log, out.json);
    return summary.exitCode;
  },
});
