import { defineCommand } from "citty";
import { identityArgs, outputArgs, lineArgs, outputOptions, parseMaxLineBytes, parseSize } from "../cli/args.ts";
import { createLog, type Log } from "../cli/log.ts";
import { createProgress, formatBytes, formatDuration, progressEnabled } from "../cli/progress.ts";
import { defaultMaxMemory, mergeBackups, type MergeSummary } from "../backup/merge.ts";
import { ExitCode, usageError } from "../errors.ts";
import { parseCompression } from "../io/output.ts";
import { loadRestoreIdentity } from "../identity/signer.ts";

export default defineCommand({
  meta: {
    name: "merge",
    description: "Merge backups into one deduplicated JSON Lines file in (ts, id) order, with bounded memory",
  },
  args: {
    files: {
      type: "positional",
      required: false,
      description: "backup files (JSON Lines, plain, .zst/.gz or encrypted); - reads stdin",
      valueHint: "FILE...",
      // Any number of files: read from args._ (src/cli.ts does not reject the extra words).
      variadic: true,
    } as { type: "positional"; required: false; description: string; valueHint: string },
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
    ...outputArgs,
    json: { type: "boolean", description: "print the summary as one JSON object on stderr" },
  },
  async run({ args }) {
    const out = outputOptions(args);
    const log = createLog({ ...out, quiet: out.quiet || (out.json && !out.verbose) });
    const inputs = (args._ ?? []).map(String);
    if (inputs.length === 0) throw usageError("no input given", "name the backups to merge: nara-backup merge A B ... -o OUT");
    const maxMemory = args["max-memory"] === undefined ? undefined : parseSize(args["max-memory"], "--max-memory");
    const compress = args.compress === undefined ? undefined : parseCompression(args.compress);
    const maxLineBytes = parseMaxLineBytes(args);

    // The soul only when needed: --encrypt, or an encrypted input (asked for when one is opened).
    const soulGiven = args.soul !== undefined || Boolean(process.env.NARA_SOUL?.trim()) || args["soul-file"] !== undefined;
    let seed: Uint8Array | undefined;
    const loadSeed = (): Uint8Array => (seed ??= loadRestoreIdentity(args, log).identity.seedBytes());
    const encryptSeed = args.encrypt ? loadSeed() : undefined;

    const progress = createProgress({ enabled: progressEnabled(out) });
    const mib = (n: number) => Math.round(n / 2 ** 20);
    const summary = await mergeBackups(
      {
        inputs,
        output: args.output,
        presorted: args.presorted,
        maxMemory,
        tempDir: args["temp-dir"],
        skipInvalid: args["skip-invalid"] === true,
        maxLineBytes,
        checkIds: args["check-ids"] !== false,
        soul: () => (soulGiven ? { seed: loadSeed() } : undefined),
        compress,
        encryptSeed,
      },
      {
        onWarn: (m) => {
          progress.clear();
          log.warn(m);
        },
        onInfo: (m) => {
          progress.clear();
          log.info(m);
        },
        onDebug: (m) => {
          progress.clear();
          log.debug(m);
        },
        onProgress: (p) =>
          progress.update({
            label: p.phase,
            done: mib(p.bytesRead),
            total: mib(p.bytesTotal),
            fraction: p.bytesTotal > 0 ? p.bytesRead / p.bytesTotal : 0,
            extra: `MiB · ${p.events.toLocaleString("en")} events`,
          }),
      },
    );
    progress.stop();
    report(summary, log, out.json);
    return summary.exitCode;
  },
});

function report(s: MergeSummary, log: Log, json: boolean): void {
  if (json) {
    process.stderr.write(`${JSON.stringify(summaryJson(s))}\n`);
    return;
  }
  log.success(
    `${s.written.toLocaleString("en")} events from ${s.inputs.length} input(s) to ${s.output} in ${formatDuration(s.seconds * 1000)}`,
  );
  log.info(
    `read ${s.read}, duplicates ${s.duplicates}` +
      (s.replaced ? ` (${s.replaced} replaced by a signed copy)` : "") +
      (s.invalid ? `, invalid lines left out ${s.invalid}` : "") +
      (s.conflicts ? `, left out for an id under two timestamps ${s.conflicts}` : "") +
      `, runs spilled ${s.runs}` +
      (s.restarts ? `, restarts ${s.restarts}` : "") +
      `, ${formatBytes(s.bytes)} written`,
  );
}

/** The `--json` summary; its keys are part of the CLI's contract (README). */
export function summaryJson(s: MergeSummary) {
  return {
    complete: s.exitCode === ExitCode.ok,
    exitCode: s.exitCode,
    output: s.output,
    inputs: s.inputs.map((i) => ({ ...i })),
    read: s.read,
    invalid: s.invalid,
    written: s.written,
    duplicates: s.duplicates,
    replaced: s.replaced,
    conflicts: s.conflicts,
    idCheck: s.idCheck,
    runs: s.runs,
    restarts: s.restarts,
    bytes: s.bytes,
    seconds: Number(s.seconds.toFixed(3)),
  };
}
