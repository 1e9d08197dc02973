import { createConsola, LogLevels, type ConsolaInstance, type ConsolaOptions, type ConsolaReporter } from "consola/core";
import { NaraError, describeError } from "../errors.ts";

export type Log = ConsolaInstance;

/**
 * The human channel: everything goes to stderr, so stdout stays pure data
 * (a dump, a JSON report). The level is explicit because consola's default
 * depends on NODE_ENV/CI/DEBUG, and a tool's verbosity must depend on its flags.
 */
export function createLog(opts: { verbose?: boolean; quiet?: boolean; json?: boolean } = {}, stream: NodeJS.WriteStream = process.stderr): Log {
  const level = opts.quiet ? LogLevels.warn : opts.verbose ? LogLevels.debug : LogLevels.info;
  const options: Partial<ConsolaOptions> = { level, stdout: stream, stderr: stream };
  if (stream.isTTY && !process.env.CI) {
    // consola's full build draws for a terminal; loading it (node:util, node:tty, its prompts) costs ~20 ms of CPU.
    const full = require("consola") as typeof import("consola");
    // `fancy` exists on consola's Node build (the one Bun loads) but not in the browser typings tsc resolves.
    return full.createConsola({ ...options, fancy: true } as Parameters<typeof full.createConsola>[0]);
  }
  return createConsola({ ...options, reporters: [lineReporter] });
}

/**
 * consola's basic reporter's line (`[warn] message`) for a stderr that is not
 * a terminal, where start-up is most of a short run's CPU: a lone string is
 * written here, anything else (an error, several arguments) by consola's own
 * basic reporter, loaded then.
 */
let basic: ConsolaReporter | undefined;
const lineReporter: ConsolaReporter = {
  log(obj, ctx) {
    const [message] = obj.args;
    if (obj.args.length !== 1 || typeof message !== "string" || obj.type === "box") {
      basic ??= (require("consola/basic") as typeof import("consola/basic")).createConsola().options.reporters[0]!;
      return basic.log(obj, ctx);
    }
    const tag = obj.tag ? ` [${obj.tag}]` : "";
    const stream = obj.level < 2 ? ctx.options.stderr : ctx.options.stdout;
    stream!.write(`[${obj.type}]${tag}${message === "" ? "" : ` ${message}`}\n`);
  },
};

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
