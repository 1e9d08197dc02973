/**
 * restore-stash's network half: compare with what the nara holds, POST the
 * stash, retry while the nara cannot distribute it yet (success:false in an
 * HTTP 200: fewer than three confidants online), then read it back.
 */
import { ExitCode, NaraError } from "../errors.ts";
import { getStatus, postUpdate, type FetchLike, type StashStatus } from "./http.ts";
import { describeDifference, sameStash, type StashRecord } from "./record.ts";

export type RestoreStashOptions = {
  baseUrl: string;
  record: StashRecord;
  /** Replace a different stash the nara already holds. */
  force: boolean;
  /** Time allowed for the whole restore, retries included (the nara distributes synchronously: up to 30 s per confidant). */
  timeoutMs: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  fetch?: FetchLike;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
  onRetry?: (info: { attempt: number; message: string; delayMs: number }) => void;
  /** Called when the nara holds this stash but no confidant does: it is sent again. */
  onResend?: () => void;
  /** Called before a different stash is replaced (--force). */
  onReplace?: (difference: string) => void;
};

export type RestoreStashResult = {
  /** "same": the nara already held this stash, nothing was sent. */
  outcome: "same" | "restored";
  /** POSTs sent. */
  attempts: number;
  /** The nara had a different stash before (replaced with --force). */
  replaced: boolean;
  after: StashStatus;
};

export async function restoreStash(opts: RestoreStashOptions): Promise<RestoreStashResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? Bun.sleep;
  const random = opts.random ?? Math.random;
  const deadline = now() + opts.timeoutMs;
  const remaining = () => Math.max(1, deadline - now());

  const before = await getStatus(opts.baseUrl, { timeoutMs: remaining(), fetch: opts.fetch });
  const same = before.hasStash && Boolean(before.data) && sameStash(before.data, opts.record.data);
  let replaced = false;
  if (same) {
    if (before.confidants.length > 0) return { outcome: "same", attempts: 0, replaced: false, after: before };
    // Held but by no confidant (an earlier update that could not be distributed): it would not survive a restart.
    opts.onResend?.();
  } else if (before.hasStash) {
    const difference = before.data ? describeDifference(opts.record.data, before.data) : "the nara's stash is not a JSON object, so it cannot be compared";
    if (!opts.force) {
      throw new NaraError(`the nara already holds a different stash: ${difference}`, {
        hint: "nothing was changed; dump it first (dump-stash -o current.stash) and pass --force to replace it with the backup",
        exitCode: ExitCode.usage,
      });
    }
    opts.onReplace?.(difference);
    replaced = true;
  }

  const body = JSON.stringify(opts.record.data);
  const base = opts.backoffMs ?? 1000;
  const max = opts.maxBackoffMs ?? 15_000;
  for (let attempt = 1; ; attempt++) {
    const answer = await postUpdate(opts.baseUrl, body, { timeoutMs: remaining(), fetch: opts.fetch });
    if (answer.success) {
      const after = await getStatus(opts.baseUrl, { timeoutMs: remaining(), fetch: opts.fetch });
      if (!after.hasStash || !after.data || !sameStash(after.data, opts.record.data)) {
        const why = !after.hasStash ? "it has none" : !after.data ? "it is not a JSON object" : describeDifference(opts.record.data, after.data);
        throw new NaraError(`the nara accepted the stash but shows another one afterwards: ${why}`, {
          hint: "someone else may have changed it at the same moment; dump-stash shows what it holds now",
          exitCode: ExitCode.failed,
        });
      }
      return { outcome: "restored", attempts: attempt, replaced, after };
    }
    const full = Math.min(max, base * 2 ** Math.min(attempt - 1, 30));
    const delayMs = Math.round(full / 2 + (full / 2) * random());
    if (now() + delayMs >= deadline) {
      throw new NaraError(`the nara could not distribute the stash to its confidants within the timeout: ${answer.message || "success:false"}`, {
        hint:
          `tried ${attempt} time(s); a nara needs at least 3 online peers to pick confidants. ` +
          "It stored the stash locally (it is lost when it restarts): run again later, or with a longer --timeout",
        exitCode: ExitCode.failed,
      });
    }
    opts.onRetry?.({ attempt, message: answer.message, delayMs });
    await sleep(delayMs);
  }
}
