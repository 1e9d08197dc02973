import type { ArgDef, ArgsDef } from "citty";
import { usageError } from "../errors.ts";
import type { DiscoveryOptions } from "../mesh/discovery.ts";

/** Who we act as. The soul can also come from NARA_SOUL (see identity/load.ts). */
export const identityArgs = {
  name: { type: "string", description: "nara name to act as (the soul is bonded to it)", valueHint: "name" },
  soul: {
    type: "string",
    description: "soul of that nara (prefer NARA_SOUL or --soul-file: flags show up in ps and shell history)",
    valueHint: "soul",
  },
  "soul-file": { type: "string", description: "file holding the soul (mode 600)", valueHint: "path" },
} as const satisfies ArgsDef;

/** Whom to talk to: a static list wins over Tailscale discovery. */
export const discoveryArgs = {
  peers: {
    type: "string",
    description: "static peer list: name=host[:port],... (port defaults to 7433; skips Tailscale)",
    valueHint: "list",
  },
  "peers-file": {
    type: "string",
    description: "file with one name=host[:port] per line, # comments (skips Tailscale)",
    valueHint: "path",
  },
  "tailscale-socket": {
    type: "string",
    description: "tailscaled LocalAPI socket used for discovery",
    default: "/var/run/tailscale/tailscaled.sock",
    valueHint: "path",
  },
  "mesh-port": {
    type: "string",
    description: "port of the peers' mesh servers found through Tailscale (default 7433)",
    valueHint: "port",
  },
} as const satisfies ArgsDef;

/** discoveryArgs as the options of src/mesh/discovery.ts (the port checked here). */
export function discoveryOptions(args: { peers?: string; "peers-file"?: string; "tailscale-socket"?: string; "mesh-port"?: string }): DiscoveryOptions {
  const port = args["mesh-port"] === undefined ? undefined : parseIntArg(args["mesh-port"], "--mesh-port", { min: 1, max: 65535 });
  return { peers: args.peers, peersFile: args["peers-file"], socket: args["tailscale-socket"], port };
}

/** How much we say on stderr, and whether stdout carries JSON. */
export const outputArgs = {
  verbose: { type: "boolean", description: "log every step (debug level) on stderr" },
  quiet: { type: "boolean", alias: "q", description: "only warnings and errors on stderr, no progress bar" },
  json: { type: "boolean", description: "machine-readable JSON on stdout" },
} as const satisfies ArgsDef;

/** outputArgs whose --json says what it prints, and where (a summary on stderr, a report on stdout). */
export const outputArgsWith = (json: string) =>
  ({ ...outputArgs, json: { type: "boolean", description: json } }) as const satisfies ArgsDef;

/**
 * The backups a command reads. Any number of them: citty has no variadic
 * positional, so they are read from args._ (src/cli.ts does not reject the
 * extra words).
 */
export const filesArg = (description: string) => ({
  files: { type: "positional", required: false, description, valueHint: "FILE...", variadic: true } as {
    type: "positional";
    required: false;
    description: string;
    valueHint: string;
  },
});

export type OutputOptions = { verbose: boolean; quiet: boolean; json: boolean };

/** Reads outputArgs from parsed citty args; --verbose with --quiet is a contradiction. */
export function outputOptions(args: { verbose?: boolean; quiet?: boolean; json?: boolean }): OutputOptions {
  const opts = { verbose: args.verbose === true, quiet: args.quiet === true, json: args.json === true };
  if (opts.verbose && opts.quiet) throw usageError("--verbose and --quiet contradict each other", "pass one of them");
  return opts;
}

type FlagInfo = { canonical: string; takesValue: boolean };

const kebab = (s: string): string => s.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
const camel = (s: string): string => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** Every spelling citty accepts for each option, mapped to its canonical long name. */
function flagTable(argsDef: ArgsDef): { long: Map<string, FlagInfo>; short: Map<string, FlagInfo> } {
  const long = new Map<string, FlagInfo>();
  const short = new Map<string, FlagInfo>();
  const add = (spelling: string, info: FlagInfo) => (spelling.length === 1 ? short : long).set(spelling, info);
  for (const [name, def] of Object.entries(argsDef) as [string, ArgDef][]) {
    if (def.type === "positional") continue;
    const info = { canonical: name, takesValue: def.type !== "boolean" };
    for (const spelling of [name, kebab(name), camel(name), ...["alias" in def ? (def.alias ?? []) : []].flat()]) add(spelling, info);
    if (def.type === "boolean") {
      const negated = { canonical: `no-${name}`, takesValue: false };
      long.set(`no-${name}`, negated);
      long.set(`no-${kebab(name)}`, negated);
    }
  }
  long.set("help", { canonical: "help", takesValue: false });
  short.set("h", { canonical: "help", takesValue: false });
  return { long, short };
}

/**
 * Rewrites argv into the one shape citty parses unambiguously, and rejects
 * what citty would silently ignore (citty parses non-strictly):
 * - `-name alice`, `-name=alice` (the documented Go-style single dash) become
 *   `--name=alice` when `name` (2+ chars) is an option of `argsDef`;
 * - a value-taking flag is always joined to its value (`--soul=-x…`), so a
 *   value that starts with `-` stays a value;
 * - short aliases (`-o out`, `-q`) keep their meaning (`-o` becomes `--output=out`);
 * - an unknown option, or a value-taking flag without a value, is a usage error.
 * Everything after `--`, and a lone `-`, are positionals and left untouched.
 */
export function normalizeArgv(argv: readonly string[], argsDef: ArgsDef): string[] {
  const { long, short } = flagTable(argsDef);
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "--") {
      out.push(...argv.slice(i));
      break;
    }
    if (!token.startsWith("-") || token === "-") {
      out.push(token);
      continue;
    }
    const body = token.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const key = eq === -1 ? body : body.slice(0, eq);
    const inline = eq === -1 ? undefined : body.slice(eq + 1);
    // A single dash with one letter is a short alias; with a longer word it is the Go-style long form.
    const info = token.startsWith("--") || key.length >= 2 ? long.get(key) : short.get(key);
    if (!info) {
      throw usageError(`unknown option ${eq === -1 ? token : token.slice(0, token.indexOf("="))}`, "see --help for the options of this command");
    }
    if (!info.takesValue) {
      out.push(inline === undefined ? `--${info.canonical}` : `--${info.canonical}=${inline}`);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length) throw usageError(`--${info.canonical} needs a value`);
      value = argv[++i]!;
    }
    out.push(`--${info.canonical}=${value}`);
  }
  return out;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * "500ms", "30s", "3m", "1h", Go-style compounds ("1m30s", "1.5h"); a bare
 * number means seconds. Returns milliseconds.
 */
export function parseDuration(value: string, flag: string): number {
  const text = value.trim();
  const bad = () =>
    usageError(`${flag}: "${value}" is not a duration`, 'use a number of seconds or a value like 500ms, 30s, 5m, 1h, 1m30s');
  if (/^\d+(\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(text)) throw bad();
  let total = 0;
  for (const [, num, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) total += Number(num) * DURATION_UNITS[unit!]!;
  return Math.round(total);
}

/** citty 0.2 has no number type: integers arrive as strings and are checked here. */
export function parseIntArg(value: string, flag: string, range: { min?: number; max?: number } = {}): number {
  const text = value.trim();
  if (!/^[+-]?\d+$/.test(text)) throw usageError(`${flag}: "${value}" is not a whole number`);
  const n = Number(text);
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = range;
  if (n < min || n > max) {
    const allowed = range.max === undefined ? `at least ${min}` : range.min === undefined ? `at most ${max}` : `${min}..${max}`;
    throw usageError(`${flag}: ${n} is out of range (${allowed})`);
  }
  return n;
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** "512M", "1.5G", "64MiB", "100000" (bytes): binary units. */
export function parseSize(value: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  const bytes = m ? Math.floor(Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!) : NaN;
  if (!(bytes >= 1)) throw usageError(`${flag}: "${value}" is not a size`, "use a size like 512M, 2G or 64MiB");
  return bytes;
}

/** The line cap of every command that reads JSON Lines. */
export const lineArgs = {
  "max-line-bytes": {
    type: "string",
    default: "1M",
    description: "longest line read as an event (longer ones are invalid lines, skipped unread), e.g. 1M, 512k",
    valueHint: "size",
  },
} as const satisfies ArgsDef;

/** --max-line-bytes as bytes (lineArgs' default when absent). */
export function parseMaxLineBytes(args: { "max-line-bytes"?: string }): number {
  return parseSize(args["max-line-bytes"] ?? lineArgs["max-line-bytes"].default, "--max-line-bytes");
}
