/** Argument fragments of the commands that read backups offline (verify, stats). */
import type { ArgsDef } from "citty";
import { filesArg, identityArgs } from "./args.ts";

/** Backups of any format; stdin when none is named. */
export const backupFilesArg = filesArg("backups (plain, .zst, .gz, encrypted); none or - reads stdin");

/** The soul, for encrypted backups only. */
export const backupSoulArgs = {
  ...identityArgs,
  name: { type: "string", description: "name the soul is bonded to (checked when given); the soul is needed only for encrypted backups", valueHint: "name" },
} as const satisfies ArgsDef;
