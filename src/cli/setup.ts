/** What every command does first: read the output flags, make the log, and know whether to draw progress. */
import { outputOptions, type OutputOptions } from "./args.ts";
import { createLog, type Log } from "./log.ts";
import { createProgress, progressEnabled, type Progress } from "./progress.ts";

export type CommandSetup = { out: OutputOptions; log: Log; progress(): Progress };

/**
 * With --json the summary is what scripts read: the log keeps only warnings
 * and errors besides it, unless --verbose asks for more.
 */
export function commandSetup(args: { verbose?: boolean; quiet?: boolean; json?: boolean }): CommandSetup {
  const out = outputOptions(args);
  const log = createLog({ ...out, quiet: out.quiet || (out.json && !out.verbose) });
  return { out, log, progress: () => createProgress({ enabled: progressEnabled(out) }) };
}
