import { defineCommand } from "citty";
import { identityArgs, parseDuration } from "../cli/args.ts";
import { stashOutputArgs, stashSetup, stashUrlArg } from "../cli/stash-args.ts";
import { ExitCode, NaraError, usageError } from "../errors.ts";
import { loadIdentity } from "../identity/load.ts";
import { openOutput } from "../io/output.ts";
import { fetchStash } from "../stash/dump.ts";
import { encodeRecord } from "../stash/record.ts";

export default defineCommand({
  meta: {
    name: "dump-stash",
    description: "Save a nara's stash (its owner's JSON, kept by three confidants) to a file, encrypted with the soul",
  },
  args: {
    ...stashUrlArg,
    ...identityArgs,
    output: { type: "string", alias: "o", description: "file to write (default NAME.stash); - writes to stdout", valueHint: "path" },
    plain: { type: "boolean", description: "write the stash unencrypted (readable by anyone who gets the file)" },
    wait: { type: "string", default: "0", description: "keep asking this long while the nara has no stash yet (a freshly started nara gets it back from its confidants)", valueHint: "duration" },
    timeout: { type: "string", default: "30s", description: "time allowed for each request", valueHint: "duration" },
    ...stashOutputArgs,
  },
  async run({ args }) {
    const { out, log, baseUrl, timeoutMs, warnIfRemote } = stashSetup(args);
    const waitMs = parseDuration(args.wait, "--wait");
    const plain = args.plain === true;
    // The soul encrypts the file: checked against --name before anything touches the network.
    const hasSoul = args.soul !== undefined || Boolean(process.env.NARA_SOUL?.trim()) || args["soul-file"] !== undefined;
    const loaded = !plain || hasSoul ? loadIdentity(args, log) : undefined;
    const name = loaded?.identity.name ?? args.name?.trim();
    if (!name) throw usageError("--name is required", "pass the nara's name: --name NAME");
    const target = args.output ?? `${name}.stash`;
    if (target === "-" && process.stdout.isTTY && !plain) {
      throw usageError("refusing to write an encrypted stash to a terminal", "redirect stdout to a file, pass -o FILE, or --plain");
    }
    warnIfRemote();

    const { record, status, polls } = await fetchStash({
      baseUrl,
      timeoutMs,
      waitMs,
      onWaiting: (_s, remainingMs) => log.info(`the nara has no stash yet; asking again (${Math.ceil(remainingMs / 1000)}s left)`),
    });
    const bytes = new TextEncoder().encode(encodeRecord(record));
    const output = openOutput(target, { compress: "none", encryptSeed: plain ? undefined : loaded!.identity.seedBytes() });
    try {
      await output.write(bytes);
      await output.commit();
    } catch (err) {
      output.abort();
      throw err instanceof NaraError ? err : new NaraError(`cannot write ${target}`, { cause: err, exitCode: ExitCode.internal });
    }
    const where = target === "-" ? "stdout" : target;
    const keys = Object.keys(record.data).length;
    const date = new Date(record.timestamp * 1000);
    const when = Number.isNaN(date.getTime()) ? String(record.timestamp) : date.toISOString();
    log.success(`stash of ${when} (${keys} top-level key${keys === 1 ? "" : "s"}, ${bytes.length} B) written to ${where}${plain ? " unencrypted" : ", encrypted"}`);
    if (status.confidants.length < 3) log.warn(`the nara lists ${status.confidants.length} confidant(s), not 3: its stash is not safe against a restart yet`);
    if (out.json) {
      process.stderr.write(
        `${JSON.stringify({ output: where, encrypted: !plain, timestamp: record.timestamp, keys, bytes: bytes.length, confidants: status.confidants.length, polls })}\n`,
      );
    }
    return ExitCode.ok;
  },
});
