/** The waits between attempts that every retrying request (a page, a batch) shares. */

/** Exponential backoff with jitter in [delay/2, delay]: attempt 1 waits about `base`, each next one twice that, up to `max`. */
export function backoffDelay(attempt: number, base: number, max: number, random: () => number = Math.random): number {
  const full = Math.min(max, base * 2 ** Math.min(attempt - 1, 30));
  return Math.round(full / 2 + (full / 2) * random());
}

/** Waits `ms`, or less when `signal` fires (it resolves then too: the caller looks at the signal). */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
