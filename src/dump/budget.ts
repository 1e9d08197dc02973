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
 *
 * Who waits goes on lowest floor first: the request of the stream furthest
 * behind is the one that lets the coordinator write, and so free, the most
 * (events above the lowest floor wait in memory until it rises).
 */
export class Backlog {
  private pending = 0;
  private waiters: { go: () => void; priority: number }[] = [];

  constructor(readonly limit: number) {}

  /**
   * Resolves once the held bytes are within the limit (at once, usually); rejects when `signal` aborts first.
   * Waiters are woken lowest `priority` first (the ts a stream is at, approximately).
   */
  async room(signal?: AbortSignal, priority = 0): Promise<void> {
    // Every waiter is woken when the backlog shrinks; each checks again.
    while (this.pending > this.limit) {
      if (signal?.aborted) throw signal.reason;
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          reject(signal!.reason);
        };
        const go = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        const waiter = { go, priority };
        signal?.addEventListener("abort", onAbort, { once: true });
        this.waiters.push(waiter);
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
  async admit(bytes: number, ms: number, signal?: AbortSignal, priority = 0): Promise<() => void> {
    await this.room(signal, priority);
    // Within the limit, checked and counted with no await between: requests woken together do not all pass.
    if (this.pending > this.limit) return this.admit(bytes, ms, signal, priority);
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
      // Woken in order, each checks in that order: the first ones take the room.
      if (this.pending <= this.limit) for (const w of this.waiters.splice(0).sort(byPriority)) w.go();
    };
  }

  get bytes(): number {
    return this.pending;
  }
}

/** Ascending; equal infinities (streams that have not started) are equal, not NaN. */
const byPriority = (a: { priority: number }, b: { priority: number }): number => (a.priority < b.priority ? -1 : a.priority > b.priority ? 1 : 0);
