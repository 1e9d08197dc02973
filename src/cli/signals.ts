/** Ctrl-C and kill for the commands (the libraries take an AbortSignal and never touch the process). */
import { ExitCode } from "../errors.ts";

/** 130 for SIGINT, 143 for SIGTERM (128 + the signal's number), as a shell reports them. */
export const signalExitCode = (signal: NodeJS.Signals): number => (signal === "SIGINT" ? ExitCode.interrupted : 143);

/**
 * Calls `handler` on every SIGINT and SIGTERM until the returned function is called. On, not once: a Ctrl-C
 * often arrives twice (from the terminal and relayed by npx or the launcher), and a second one after a
 * once-handler would kill the process before it cleaned up.
 */
export function onInterrupt(handler: (signal: NodeJS.Signals) => void): () => void {
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
  return () => {
    process.off("SIGINT", handler);
    process.off("SIGTERM", handler);
  };
}
