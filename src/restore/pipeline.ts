/**
 * The send side of a restore as a pipeline: a batch is handed over as soon
 * as it is full and the caller goes on reading, checking and encoding the
 * next one while this one is with the nara. At most `limit` batches are in
 * flight (default 1: a nara imports one batch at a time, a second request
 * only competes with it for the CPU); the caller waits only when that many
 * are out. Batches are launched in order; with more than one in flight they
 * may finish out of order, so the resumable point is the longest prefix of
 * accepted batches, not their count.
 */

export class InFlight {
  readonly #out = new Set<Promise<void>>();
  #error: unknown;
  #failed = false;
  /** Batch index -> events, for the accepted batches past the prefix. */
  readonly #accepted = new Map<number, number>();
  #prefixBatches = 0;
  #prefixEvents = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError("in-flight limit must be at least 1");
  }

  /** Requests out now. */
  get size(): number {
    return this.#out.size;
  }

  /** Events of the batches 1..n that were all accepted (n as large as possible): what --skip may leave out. */
  get acceptedPrefixEvents(): number {
    return this.#prefixEvents;
  }

  /** Resolves once fewer than `limit` are in flight (check whether to go on before starting another). */
  async room(): Promise<void> {
    while (this.#out.size >= this.limit) await Promise.race(this.#out);
    this.#rethrow();
  }

  /**
   * Starts `send` now (call room() first). `send` must not throw (it
   * reports outcomes itself); if it does, the error comes back from the
   * next room() or drain().
   */
  start(send: () => Promise<void>): void {
    const p: Promise<void> = send()
      .catch((err) => {
        if (!this.#failed) {
          this.#failed = true;
          this.#error = err;
        }
      })
      .finally(() => this.#out.delete(p));
    this.#out.add(p);
  }

  /** Records batch `index` (1-based) of `events` as accepted. */
  accepted(index: number, events: number): void {
    this.#accepted.set(index, events);
    while (this.#accepted.has(this.#prefixBatches + 1)) {
      this.#prefixBatches++;
      this.#prefixEvents += this.#accepted.get(this.#prefixBatches)!;
      this.#accepted.delete(this.#prefixBatches);
    }
  }

  /** Waits for every batch in flight to end. */
  async drain(): Promise<void> {
    while (this.#out.size > 0) await Promise.race(this.#out);
    this.#rethrow();
  }

  #rethrow(): void {
    if (this.#failed) {
      this.#failed = false;
      throw this.#error;
    }
  }
}
