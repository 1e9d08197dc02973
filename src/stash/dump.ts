/**
 * dump-stash's network half: read the nara's stash, waiting (--wait) for a
 * freshly started nara to get it back from its confidants. Writing the file
 * is the command's business (src/io/output.ts: atomic, mode 0600, encrypted).
 */
import { ExitCode, NaraError } from "../errors.ts";
import { getStatus, type FetchLike, type StashStatus } from "./http.ts";
import type { StashRecord } from "./record.ts";

export type DumpStashOptions = {
  baseUrl: string;
  /** Time allowed for each request. */
  timeoutMs: number;
  /** How long to keep asking while the nara has no stash yet (0: ask once). */
  waitMs: number;
  /** Time between two questions while waiting. */
  pollMs?: number;
  fetch?: FetchLike;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  onWaiting?: (status: StashStatus, remainingMs: number) => void;
};

export type DumpedStash = { record: StashRecord; status: StashStatus; polls: number };

export async function fetchStash(opts: DumpStashOptions): Promise<DumpedStash> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? Bun.sleep;
  const pollMs = opts.pollMs ?? 1000;
  const deadline = now() + opts.waitMs;
  for (let polls = 1; ; polls++) {
    const status = await getStatus(opts.baseUrl, { timeoutMs: opts.timeoutMs, fetch: opts.fetch });
    if (status.hasStash) {
      if (status.data === null || status.data === undefined) {
        throw new NaraError("the nara holds a stash that is not a JSON object: it cannot be read through /api/stash/status", {
          hint: "the status endpoint shows only object stashes (an array, a string or a number comes back as null); nothing was written",
          exitCode: ExitCode.failed,
        });
      }
      return { record: { timestamp: status.timestamp!, data: status.data }, status, polls };
    }
    const remaining = deadline - now();
    if (remaining <= 0) {
      throw new NaraError(opts.waitMs > 0 ? `the nara still has no stash after waiting ${Math.round(opts.waitMs / 1000)}s` : "the nara has no stash", {
        hint:
          "a freshly started nara gets its stash back from its confidants a few seconds after boot: " +
          (opts.waitMs > 0 ? "wait longer (--wait 2m), or check that its confidants are online" : "--wait 30s keeps asking") +
          "; nothing was written",
        exitCode: ExitCode.failed,
      });
    }
    opts.onWaiting?.(status, remaining);
    await sleep(Math.min(pollMs, remaining));
  }
}
