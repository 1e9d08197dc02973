/** What dump-stash and restore-stash share: the nara's UI address, output flags, the timeout and the loopback warning. */
import type { ArgsDef } from "citty";
import { usageError } from "../errors.ts";
import { isLoopback, LOOPBACK_WARNING, stashBaseUrl } from "../stash/http.ts";
import { outputArgsWith, parseDuration, type OutputOptions } from "./args.ts";
import type { Log } from "./log.ts";
import { commandSetup } from "./setup.ts";

export const stashUrlArg = {
  "nara-url": {
    type: "string",
    default: "http://localhost:8080",
    description: "the nara's own UI server (-serve-ui); its stash routes have no authentication",
    valueHint: "url",
  },
} as const satisfies ArgsDef;

export const stashOutputArgs = outputArgsWith("print the summary as one JSON object on stderr");

export type StashSetup = { out: OutputOptions; log: Log; baseUrl: string; timeoutMs: number; warnIfRemote(): void };

export function stashSetup(args: { "nara-url": string; timeout: string; verbose?: boolean; quiet?: boolean; json?: boolean }): StashSetup {
  const { out, log } = commandSetup(args);
  const baseUrl = stashBaseUrl(args["nara-url"]);
  const timeoutMs = parseDuration(args.timeout, "--timeout");
  if (timeoutMs <= 0) throw usageError("--timeout must be more than 0");
  return {
    out,
    log,
    baseUrl,
    timeoutMs,
    warnIfRemote: () => {
      if (!isLoopback(baseUrl)) log.warn(`--nara-url ${baseUrl} ${LOOPBACK_WARNING}`);
    },
  };
}
