/**
 * How many bytes of page bodies a fetch worker lets in flight at once.
 *
 * Bun's HTTP client reads a whole body as soon as the peer sends it, whether
 * or not the worker is ready for it. When peers answer faster than the
 * worker scans (peers nearby, big pages), bodies wait in memory: 32 peers
 * with 1.6 MB pages keep ~50 MB waiting. Asking for a page only when its
 * expected size fits keeps the bytes at the peers instead.
 *
 * The price is a ceiling of `limit` bytes per round trip: the default
 * 8 MiB (--max-inflight) is what a 1 Gbit/s link carries in 67 ms, and
 * small pages are never held back (their sizes fit many times over).
 *
 * A request never waits longer than `maxWaitMs`: a peer that hangs holds
 * its share until its own deadline and must not stall the others.
 */
export class ByteBudget {
  private used = 0;
  private readonly queue: { bytes: number; grant: () => void }[] = [];

  constructor(
    readonly limit: number,
    private readonly maxWaitMs = 1_000,
  ) {}

  /** Bytes taken and not given back. */
  get inFlight(): number {
    return this.used;
  }

  /** Requests waiting for room. */
  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Resolves once `bytes` fit (at once when nothing is in flight: a page
   * larger than the whole budget still goes, alone) with the function that
   * gives them back. Rejects when `signal` aborts while waiting.
   */
  take(bytes: number, signal?: AbortSignal): Promise<() => void> {
    const n = Math.max(0, bytes);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.used -= n;
      this.pump();
    };
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.queue.length === 0 && this.fits(n)) {
      this.used += n;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const entry = {
        bytes: n,
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          this.used += n;
          resolve(release);
        },
      };
      const leave = () => {
        const i = this.queue.indexOf(entry);
        if (i >= 0) this.queue.splice(i, 1);
      };
      const onAbort = () => {
        clearTimeout(timer);
        leave();
        reject(signal!.reason);
        this.pump();
      };
      // Waited long enough: go over the budget rather than stall behind a peer that hangs.
      const timer = setTimeout(() => {
        leave();
        entry.grant();
        this.pump();
      }, this.maxWaitMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(entry);
    });
  }

  private fits(n: number): boolean {
    return this.used === 0 || this.used + n <= this.limit;
  }

  /** Grants waiting requests in order while the first one fits. */
  private pump(): void {
    while (this.queue.length > 0 && this.fits(this.queue[0]!.bytes)) this.queue.shift()!.grant();
  }
}

/**
 * Bytes a fetch worker has handed to the coordinator that it has not taken
 * in yet. When the coordinator's thread is busy (compressing or encrypting
 * the output, say), pages wait in its message queue; once they are more
 * than `limit`, requests wait until it catches up. A coordinator that keeps
 * up never makes anything wait here, which is why this is apart from
 * ByteBudget (holding a request's budget until the coordinator has its
 * page made plain dumps ~3 % slower).
 */
export class Backlog {
  private pending = 0;
  private waiters: (() => void)[] = [];

  constructor(readonly limit: number) {}

  /** Resolves once the backlog is within its limit (at once, usually); rejects when `signal` aborts first. */
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

  /** `bytes` were handed over; the returned function says they were taken in. */
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
