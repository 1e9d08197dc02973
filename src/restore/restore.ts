/**
 * The restore: validate everything, then send in signed batches. Its
 * phases, each in its own file: the inputs as sources that can be read
 * three times (sources.ts), pass 1 and the send plan (plan.ts), the send
 * passes (send.ts), and why it stopped (diagnose.ts). It takes an
 * AbortSignal and returns a summary; what to print is the caller's.
 */
import { usageError } from "../errors.ts";
import { MAX_INPUTS } from "../events/idindex.ts";
import { interrupted } from "./diagnose.ts";
import { checkSendSettings, type RestoreOptions } from "./options.ts";
import { planRestore } from "./plan.ts";
import { sendSelected } from "./send.ts";
import { openSource, type Source } from "./sources.ts";
import { emptySummary, type RestoreHooks, type RestoreSummary } from "./summary.ts";

export { checkSendSettings, DEFAULT_BATCH_SIZE, DEFAULT_IN_FLIGHT, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, type RestoreOptions } from "./options.ts";
export type { BatchReport, InputReport, InvalidLine, Plan, RestoreHooks, RestoreSummary } from "./summary.ts";

export async function restoreEvents(opts: RestoreOptions, hooks: RestoreHooks = {}): Promise<RestoreSummary> {
  const started = performance.now();
  checkSendSettings(opts);
  const inputs = opts.inputs.length === 0 ? ["-"] : [...opts.inputs];
  if (inputs.filter((p) => p === "-").length > 1) throw usageError("stdin (-) can be read only once");
  if (inputs.length > MAX_INPUTS) throw usageError(`too many input files (at most ${MAX_INPUTS})`);

  const summary = emptySummary(opts.url, opts.dryRun === true);
  const sources: Source[] = [];
  try {
    for (const p of inputs) sources.push(await openSource(p, opts));
    if (opts.signal?.aborted) interrupted(summary);
    else {
      const selection = await planRestore(sources, opts, hooks, summary);
      if (selection !== undefined) {
        // Pass 1's garbage and its ID index go before the send passes allocate (~9 MiB less peak RSS, ~10 ms).
        Bun.gc(true);
        await sendSelected(sources, selection, opts, hooks, summary);
      }
    }
    summary.seconds = (performance.now() - started) / 1000;
    return summary;
  } finally {
    for (const s of sources) s.cleanup?.();
  }
}
