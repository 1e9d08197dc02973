// Placeholder so that the CLI wiring works; the real command replaces this file.
import { defineCommand } from "citty";
import { NaraError } from "../errors.ts";
import { identityArgs, outputArgs } from "../cli/args.ts";

export default defineCommand({
  meta: { name: "restore-events", description: "Restore events from a backup into a nara (not implemented yet)" },
  args: { ...identityArgs, ...outputArgs },
  run() {
    throw new NaraError("restore-events is not implemented yet");
  },
});
