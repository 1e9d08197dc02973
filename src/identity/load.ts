import { readFileSync, statSync } from "node:fs";
import { usageError, unreadableFile } from "../errors.ts";
import { parseSoul, type Identity } from "./soul.ts";

export type SoulSource = "flag" | "env" | "file";

export type LoadedSoul = {
  soul: string;
  source: SoulSource;
  /** The soul file is group- or world-readable (mode & 0o044): worth a warning. */
  looseFileMode: boolean;
  /** Advice for the caller to log (never contains the soul). */
  hint?: string;
};

const HOW_TO_GIVE_A_SOUL =
  "give the soul in NARA_SOUL, in a file with --soul-file PATH (chmod 600), or with --soul (visible in ps and shell history)";

/**
 * Where the soul comes from, first match wins: --soul, then NARA_SOUL, then
 * --soul-file. An empty NARA_SOUL counts as unset (a blank export is a
 * common leftover). Nothing here ever puts the soul into a message.
 */
export function loadSoul(opts: { soul?: string; soulFile?: string; env?: Record<string, string | undefined> }): LoadedSoul {
  const env = opts.env ?? process.env;
  if (opts.soul !== undefined) {
    const soul = opts.soul.trim();
    if (!soul) throw usageError("--soul is empty", HOW_TO_GIVE_A_SOUL);
    return {
      soul,
      source: "flag",
      looseFileMode: false,
      hint: "--soul shows the soul to ps and shell history; prefer NARA_SOUL or --soul-file",
    };
  }
  const fromEnv = env.NARA_SOUL?.trim();
  if (fromEnv) return { soul: fromEnv, source: "env", looseFileMode: false };
  if (opts.soulFile !== undefined) return readSoulFile(opts.soulFile);
  throw usageError("no soul given", HOW_TO_GIVE_A_SOUL);
}

function readSoulFile(path: string): LoadedSoul {
  let text: string;
  let mode: number;
  try {
    mode = statSync(path).mode;
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw unreadableFile(`the soul file ${path}`, err, HOW_TO_GIVE_A_SOUL);
  }
  const soul = text.trim();
  if (!soul) throw usageError(`the soul file ${path} is empty`, HOW_TO_GIVE_A_SOUL);
  const looseFileMode = process.platform !== "win32" && (mode & 0o044) !== 0;
  return {
    soul,
    source: "file",
    looseFileMode,
    hint: looseFileMode ? `other users can read ${path}: chmod 600 ${path}` : undefined,
  };
}

export type Notices = { warn(message: string): void; info(message: string): void; debug(message: string): void };

/**
 * loadSoul from the identity flags, saying where the soul came from (debug)
 * and its advice: a loose file mode always as a warning, the rest at `hintLevel`.
 */
export function loadSoulNoted(
  args: { soul?: string; "soul-file"?: string },
  log: Notices,
  env: Record<string, string | undefined>,
  hintLevel: "info" | "warn",
): LoadedSoul {
  const loaded = loadSoul({ soul: args.soul, soulFile: args["soul-file"], env });
  if (loaded.hint) (loaded.looseFileMode ? log.warn : log[hintLevel]).call(log, loaded.hint);
  log.debug(`soul from ${loaded.source === "flag" ? "--soul" : loaded.source === "env" ? "NARA_SOUL" : "--soul-file"}`);
  return loaded;
}

export type LoadedIdentity = {
  identity: Identity;
  /** Needed to hand the identity to workers; never log it. */
  soul: string;
  source: SoulSource;
};

/** loadSoul + parseSoul: the soul is checked against --name before any network I/O. */
export function loadIdentity(
  args: { name?: string; soul?: string; "soul-file"?: string },
  log: Notices,
  env: Record<string, string | undefined> = process.env,
): LoadedIdentity {
  const name = args.name?.trim();
  if (!name) throw usageError("--name is required", "pass the nara name the soul belongs to: --name NAME");
  const loaded = loadSoulNoted(args, log, env, "info");
  const identity = parseSoul(loaded.soul, name);
  return { identity, soul: loaded.soul, source: loaded.source };
}
