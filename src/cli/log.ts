import { createConsola, LogLevels, type ConsolaInstance } from "consola";
import { NaraError, describeError } from "../errors.ts";

export type Log = ConsolaInstance;

/**
 * The human channel: everything goes to stderr, so stdout stays pure data
 * (a dump, a JSON report). The level is explicit because consola's default
 * depends on NODE_ENV/CI/DEBUG, and a tool's verbosity must depend on its flags.
 */
export function createLog(opts: { verbose?: boolean; quiet?: boolean; json?: boolean } = {}): Log {
  const level = opts.quiet ? LogLevels.warn : opts.verbose ? LogLevels.debug : LogLevels.info;
  // `fancy` exists on consola's Node build (the one Bun loads) but not in the browser typings tsc resolves.
  const options: Parameters<typeof createConsola>[0] & { fancy: boolean } = {
    level,
    stdout: process.stderr,
    stderr: process.stderr,
    fancy: Boolean(process.stderr.isTTY) && !process.env.CI,
  };
  return createConsola(options);
}

/** `error: …` (with the cause chain) and `hint: …` lines, ready for stderr. */
export function formatError(err: unknown, opts: { stack?: boolean } = {}): string {
  const lines = [`error: ${describeError(err)}`];
  if (err instanceof NaraError) {
    if (err.hint) lines.push(`hint: ${err.hint}`);
  } else if (opts.stack && err instanceof Error && err.stack) {
    // Not one of ours: a bug, and the stack is what a bug report needs.
    lines.push(err.stack.split("\n").slice(1).join("\n"));
  }
  return `${lines.join("\n")}\n`;
}

export function printError(err: unknown, opts: { stack?: boolean; stream?: { write(s: string): unknown } } = {}): void {
  (opts.stream ?? process.stderr).write(formatError(err, opts));
}
