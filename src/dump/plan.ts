/** What the dump offers by default, and the destinations it refuses before any work. */
import { existsSync, realpathSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { usageError } from "../errors.ts";
import type { Compression } from "../io/output.ts";
import type { FetchSettings } from "./messages.ts";

/** One worker per spare core: on small machines the main thread's Map work competes with the scanners. */
export const defaultWorkers = (): number => Math.max(1, Math.min(4, availableParallelism() - 1));

/** A page's first retry waits this long, doubling up to DEFAULT_MAX_BACKOFF_MS. */
export const DEFAULT_BACKOFF_MS = 250;
export const DEFAULT_MAX_BACKOFF_MS = 5_000;
/** dump-events' --timeout, --page-size and --concurrency defaults (the library's too). */
export const DEFAULT_TIMEOUT_MS = 180_000;
export const DEFAULT_PAGE_SIZE = 5000;
export const DEFAULT_CONCURRENCY = 64;

/** The fetch settings of a library caller that gave only some (or none). */
export const fetchSettings = (over: Partial<FetchSettings> = {}): FetchSettings => ({
  timeoutMs: DEFAULT_TIMEOUT_MS,
  pageSize: DEFAULT_PAGE_SIZE,
  strict: false,
  backoffMs: DEFAULT_BACKOFF_MS,
  maxBackoffMs: DEFAULT_MAX_BACKOFF_MS,
  ...over,
});

/** Do two paths name one file (following symlinks when the file exists)? */
function samePath(a: string, b: string): boolean {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  return real(a) === real(b);
}

/** Refuses binary data on a terminal, and an output that would replace its own --ids-from file. */
export function checkDestination(d: { output?: string; idsFrom?: string; compress?: Compression; encrypt: boolean; stdoutIsTTY: boolean }): void {
  const toStdout = d.output === undefined || d.output === "-";
  if (toStdout && d.stdoutIsTTY && (d.encrypt || (d.compress ?? "none") !== "none")) {
    throw usageError("refusing to write compressed or encrypted data to a terminal", "redirect stdout to a file, or pass -o FILE");
  }
  if (!toStdout && d.idsFrom !== undefined && samePath(d.output!, d.idsFrom)) {
    throw usageError(
      `-o ${d.output} would replace the --ids-from file with only the events it does not hold`,
      "append to it with >> (stdout), or write a new file and combine the two with nara-backup merge",
    );
  }
}
