/**
 * Backpressure from memory, not from the network: what a fetch worker holds
 * of page bodies that have arrived and are not yet scanned and handed on,
 * plus the pages handed on that the coordinator has not taken in (its
 * thread may be busy compressing or encrypting the output, and pages then
 * wait in its message queue). Once these bytes are more than `limit`
 * (--max-inflight's share of the worker), requests wait until the worker
 * and the coordinator catch up.
 *
 * Bytes still on the wire never count: a slow link (50–300 ms round trips,
 * a few MB/s through a relay) keeps every stream's request in flight, since
 * it fills memory no faster than the worker scans. A budget of bytes in
 * flight held requests back exactly when links were slow: with 1.6 MB pages
 * only ~5 were in flight for 8 far-away peers.
 */
export class Backlog {
  private pending = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  /** Resolves once the held bytes are within the limit (at once, usually); rejects when `signal` aborts first. */
  async room(signal?: AbortSignal): Promise<void> {
    // Every waiter is woken when the backlog shrinks; each checks again.
    while (this.pending > this.limit) {
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.waiters = this.waiters.filter((w) => w !== go);
          reject(signal!.reason);
        };
        const go = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiters.push(go);
      });
    }
  }

  /**
   * Waits for room, then counts the expected body of a request about to go
   * out, for at most `ms`: an answer that comes sooner (a near peer, or
   * loopback) lands in memory at once, so its bytes count before they
   * arrive; one that takes longer is on a slow link, its bytes arrive no
   * faster than they are scanned, and they stop counting until they land.
   * The returned function gives the bytes back earlier (the body arrived).
   */
  async admit(bytes: number, ms: number, signal?: AbortSignal): Promise<() => void> {
    await this.room(signal);
    // Within the limit, checked and counted with no await between: requests woken together do not all pass.
    if (this.pending > this.limit) return this.admit(bytes, ms, signal);
    const release = this.add(bytes);
    const timer = setTimeout(release, ms);
    return () => {
      clearTimeout(timer);
      release();
    };
  }

  /** `bytes` are held from now on; the returned function says they are not any more (counts once). */
  add(bytes: number): () => void {
    this.pending += bytes;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.pending -= bytes;
      if (this.pending <= this.limit) for (const go of this.waiters.splice(0)) go();
    };
  }

  get bytes(): number {
    return this.pending;
  }
}
