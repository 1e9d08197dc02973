import { defineCommand } from "citty";
import { identityArgs } from "../cli/args.ts";
import { stashOutputArgs, stashSetup, stashUrlArg } from "../cli/stash-args.ts";
import { ExitCode, usageError } from "../errors.ts";
import { loadIdentity } from "../identity/load.ts";
import { readStashFile } from "../stash/file.ts";
import { restoreStash } from "../stash/restore.ts";

export default defineCommand({
  meta: {
    name: "restore-stash",
    description: "Give a nara its stash back from a dump-stash file (plain or encrypted); it distributes it to its confidants",
  },
  args: {
    file: { type: "positional", required: false, description: "the stash backup; - or none reads stdin", valueHint: "FILE" },
    ...stashUrlArg,
    ...identityArgs,
    force: { type: "boolean", description: "replace a different stash the nara already holds" },
    timeout: {
      type: "string",
      default: "5m",
      description: "time allowed for the whole restore, retries included (the nara distributes synchronously, up to 30s per confidant)",
      valueHint: "duration",
    },
    ...stashOutputArgs,
  },
  async run({ args }) {
    const { out, log, baseUrl, timeoutMs, warnIfRemote } = stashSetup(args);
    const path = args.file === undefined ? "-" : String(args.file);
    if (path === "-" && process.stdin.isTTY) throw usageError("no stash file given and stdin is a terminal", "restore-stash FILE, or pipe the file in");
    // Soul and name first: a wrong soul must fail before the file is decrypted or the nara is asked.
    const { identity } = loadIdentity(args, log);
    const { record, encrypted } = await readStashFile(path, {
      soul: () => ({ seed: identity.seedBytes() }),
      soulHint: `this stash backup was encrypted with another soul than ${identity.name}'s: restore it with the soul of the nara that made it`,
    });
    log.debug(`${path === "-" ? "stdin" : path}: ${encrypted ? "encrypted" : "plain"} stash of ${record.timestamp}, ${Object.keys(record.data).length} top-level keys`);
    warnIfRemote();

    const result = await restoreStash({
      baseUrl,
      record,
      force: args.force === true,
      timeoutMs,
      onResend: () => log.info("the nara holds this stash but lists no confidant: sending it again to distribute it"),
      onReplace: (difference) => log.warn(`replacing the nara's different stash (--force): ${difference}`),
      onRetry: ({ attempt, message, delayMs }) =>
        log.info(`the nara could not distribute the stash yet (${message || "success:false"}); attempt ${attempt + 1} in ${(delayMs / 1000).toFixed(1)}s`),
    });
    const confidants = result.after.confidants.length;
    if (result.outcome === "same") log.success(`${identity.name} already holds this stash: nothing sent`);
    else log.success(`stash restored to ${identity.name} and read back (${result.attempts} attempt(s), ${confidants} confidant(s))`);
    if (result.outcome === "restored" && confidants < 3) log.warn(`the nara lists ${confidants} confidant(s), not 3`);
    if (out.json) {
      process.stderr.write(`${JSON.stringify({ outcome: result.outcome, replaced: result.replaced, attempts: result.attempts, confidants, encrypted })}\n`);
    }
    return ExitCode.ok;
  },
});
