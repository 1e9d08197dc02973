/** Ctrl-C and kill for the commands (the libraries take an AbortSignal and never touch the process). */
import { writeSync } from "node:fs";
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

/**
 * Ctrl-C and SIGTERM for a command whose library run cleans up when its
 * AbortSignal fires (synchronously: nothing runs after process.exit).
 */
export type Interrupt = {
  /** Handed to the library run. */
  signal: AbortSignal;
  /** From here a signal aborts the run, says `message()` and exits 130 / 143. */
  arm(): void;
  disarm(): void;
};

/**
 * A signal, once armed, aborts the run, prints `message()` and exits 130
 * (SIGINT) or 143 (SIGTERM), unless another handler is there: a joined
 * mesh logs out first and exits when its teardown is done.
 */
export function exitOnInterrupt(message: () => string): Interrupt {
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    controller.abort(new Error(`interrupted (${signal})`));
    // Synchronously: process.exit does not wait for a pipe to take a pending write.
    writeSync(2, message());
    if (process.listeners(signal).every((l) => l === onSignal)) process.exit(signalExitCode(signal));
  };
  let off: (() => void) | undefined;
  return {
    signal: controller.signal,
    arm() {
      off ??= onInterrupt(onSignal);
    },
    disarm() {
      off?.();
      off = undefined;
    },
  };
}
