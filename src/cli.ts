#!/usr/bin/env bun
/**
 * Entry point. citty defines the commands and parses their flags; this file
 * does what citty's runMain would do badly for us (it calls process.exit and
 * prints usage and errors to stdout): pick the subcommand, normalise argv,
 * print help, map errors to exit codes.
 *
 * Command convention: `run` returns an ExitCode (nothing means 0) or throws a
 * NaraError, whose exitCode is used after `error:`/`hint:` are printed on
 * stderr. Setting process.exitCode inside run also works. stdout carries only
 * data (a dump, a listing, JSON); everything for humans goes to stderr.
 */
import { defineCommand, renderUsage, runCommand, type ArgsDef, type CommandDef } from "citty";
import pkg from "../package.json" with { type: "json" };
import { ExitCode, NaraError, usageError } from "./errors.ts";
import { normalizeArgv } from "./cli/args.ts";
import { printError } from "./cli/log.ts";

type Lazy = () => Promise<CommandDef<any>>;

export const subCommands: Record<string, Lazy> = {
  "dump-events": () => import("./commands/dump-events.ts").then((m) => m.default),
  "restore-events": () => import("./commands/restore-events.ts").then((m) => m.default),
  peers: () => import("./commands/peers.ts").then((m) => m.default),
  verify: () => import("./commands/verify.ts").then((m) => m.default),
  stats: () => import("./commands/stats.ts").then((m) => m.default),
  merge: () => import("./commands/merge.ts").then((m) => m.default),
  "dump-stash": () => import("./commands/dump-stash.ts").then((m) => m.default),
  "restore-stash": () => import("./commands/restore-stash.ts").then((m) => m.default),
};

export const mainCommand = defineCommand({
  meta: { name: "nara-backup", version: pkg.version, description: pkg.description },
  subCommands,
});

const EPILOG = `
Long flags also work with a single dash (-name alice -timeout 5m), as in the Go tool.
The soul comes from --soul, else NARA_SOUL, else --soul-file (prefer the last two).

Exit codes: 0 ok, 1 unexpected error (I/O or a bug), 2 usage, 3 partial, 4 failed, 5 no peers, 6 refused by the nara, 7 corrupt backup (verify), 130 interrupted.`;

type Io = { stdout: { write(s: string): unknown; isTTY?: boolean }; stderr: { write(s: string): unknown; isTTY?: boolean } };

const HELP = new Set(["--help", "-h", "-help"]);
const VERSION = new Set(["--version", "-version", "-V"]);

const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*m/g, "");

async function usageText(cmd: CommandDef<any>, parent: CommandDef<any> | undefined, stream: Io["stdout"]): Promise<string> {
  // citty pads the last column too; trailing blanks are noise in a terminal and in diffs.
  const text = ((await renderUsage(cmd, parent)) + (parent ? "" : `\n${EPILOG}`)).replace(/[ \t]+$/gm, "");
  return `${stream.isTTY ? text : stripAnsi(text)}\n`;
}

/** Runs one command line (without the `bun cli.ts` prefix) and returns its exit code. */
export async function main(argv: string[], io: Io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    if (err instanceof NaraError) {
      printError(err, { stream: io.stderr });
      return err.exitCode;
    }
    if (err instanceof Error && err.name === "CLIError") {
      // citty's own complaints (a missing required argument): a usage error, in our format.
      printError(usageError(stripAnsi(err.message), "see --help"), { stream: io.stderr });
      return ExitCode.usage;
    }
    printError(err, { stream: io.stderr, stack: true });
    return ExitCode.internal;
  }
}

async function dispatch(argv: string[], io: Io): Promise<number> {
  const at = argv.findIndex((a) => !a.startsWith("-"));
  const leading = at === -1 ? argv : argv.slice(0, at);
  for (const flag of leading) {
    if (HELP.has(flag)) {
      io.stdout.write(await usageText(mainCommand, undefined, io.stdout));
      return ExitCode.ok;
    }
    if (VERSION.has(flag)) {
      io.stdout.write(`${pkg.version}\n`);
      return ExitCode.ok;
    }
    throw usageError(`unknown option ${flag.split("=")[0]} before the command`, "options go after the command: nara-backup COMMAND [OPTIONS]");
  }
  if (at === -1) {
    io.stderr.write(await usageText(mainCommand, undefined, io.stderr));
    throw usageError("no command given", `commands: ${Object.keys(subCommands).join(", ")}`);
  }
  const name = argv[at]!;
  const load = Object.hasOwn(subCommands, name) ? subCommands[name] : undefined;
  if (!load) throw usageError(`unknown command "${name}"`, `commands: ${Object.keys(subCommands).join(", ")}`);
  const cmd = await load();
  const rest = argv.slice(at + 1);
  const beforeDashes = rest.includes("--") ? rest.slice(0, rest.indexOf("--")) : rest;
  if (beforeDashes.some((a) => HELP.has(a))) {
    io.stdout.write(await usageText(cmd, mainCommand, io.stdout));
    return ExitCode.ok;
  }
  const argsDef: ArgsDef = (await (typeof cmd.args === "function" ? cmd.args() : cmd.args)) ?? {};
  const rawArgs = normalizeArgv(rest, argsDef);
  checkPositionals(rawArgs, argsDef);
  const exitBefore = process.exitCode;
  try {
    const { result } = await runCommand(cmd, { rawArgs });
    if (typeof result === "number") return result;
    const set = process.exitCode;
    return set !== exitBefore && set !== undefined ? Number(set) : ExitCode.ok;
  } finally {
    process.exitCode = exitBefore;
  }
}

/** citty ignores extra words; a stray word is usually a mistyped flag, and may be a secret: never echo a long one. */
function checkPositionals(rawArgs: string[], argsDef: ArgsDef): void {
  const dashes = rawArgs.indexOf("--");
  const words = rawArgs.filter((a, i) => (dashes !== -1 && i > dashes) || (!a.startsWith("--") && (dashes === -1 || i < dashes)));
  const positionals = Object.values(argsDef).filter((d) => d.type === "positional");
  // A positional marked variadic (restore-events FILE...) takes any number of words.
  if (positionals.some((d) => (d as { variadic?: boolean }).variadic)) return;
  const expected = positionals.length;
  if (words.length > expected) {
    const word = words[expected]!;
    const shown = word.length <= 24 ? `"${word}"` : `of ${word.length} characters`;
    throw usageError(`unexpected argument ${shown}`, "see --help for this command's options");
  }
}

if (import.meta.main) {
  // exitCode rather than exit(): pending writes to a piped stdout are flushed first.
  process.exitCode = await main(process.argv.slice(2));
}
