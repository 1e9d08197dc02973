/**
 * A soul used only to decrypt a backup (not to sign): no name is needed, the
 * key comes from the seed alone. For example restore's NARA_BACKUP_SOUL /
 * --backup-soul-file, when the backup's owner is not the target nara.
 */
import { NaraError, ExitCode } from "../errors.ts";
import { base58Decode } from "../identity/base58.ts";
import { loadSoul } from "../identity/load.ts";
import type { SeedSource } from "./encrypt.ts";

type Notices = { warn(message: string): void };

/**
 * The soul from the environment variable `envName` (first) or the file
 * `file`; undefined when neither is given. The soul is checked now (40
 * Base58 bytes), so a bad one fails before any work; it never appears in a
 * message.
 */
export function loadDecryptSoul(
  opts: { envName: string; fileFlag: string; file?: string; env?: Record<string, string | undefined> },
  log?: Notices,
): SeedSource | undefined {
  const env = opts.env ?? process.env;
  const fromEnv = env[opts.envName]?.trim();
  if (!fromEnv && opts.file === undefined) return undefined;
  const where = fromEnv ? opts.envName : opts.fileFlag;
  // loadSoul reads NARA_SOUL then the file: hand it only the source chosen here.
  const loaded = loadSoul({ soulFile: fromEnv ? undefined : opts.file, env: { NARA_SOUL: fromEnv || undefined } });
  if (loaded.looseFileMode && loaded.hint) log?.warn(loaded.hint);
  const bytes = base58Decode(loaded.soul);
  if (bytes === null || bytes.length !== 40) {
    throw new NaraError(`the soul in ${where} is not a soul (${bytes === null ? "not Base58" : `${bytes.length} bytes, a soul has 40`})`, {
      hint: "copy the backup owner's soul again: it is 54–55 Base58 characters",
      exitCode: ExitCode.usage,
    });
  }
  const seed = bytes.slice(0, 32);
  return () => ({ seed: seed.slice() });
}
