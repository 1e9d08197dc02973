/**
 * Hostile and broken body faults for the simulated peer (test/sim/peer.ts):
 * a sync answer whose body never ends, and one that stalls in the middle.
 * Both are real streams on the real connection; they end when the client
 * goes away or the peer stops.
 */

export type HostileFaults = {
  /** After this many pages were served, sync answers 200 with a body that never ends (~`endlessRate` bytes/s). */
  endlessAfterPages?: number;
  /** Bytes a second of the endless body (default 100 MB/s, as the report that found it). */
  endlessRate?: number;
  /** Every Nth sync request: the page's first half is sent, then nothing more (until the client gives up). */
  stallEvery?: number;
};

/** Bytes the hostile bodies sent, for tests to see that a client stopped reading. */
export type HostileStats = { endlessBytes: number; stalls: number };

const CHUNK = 64 * 1024;

/** A body that starts like a page and never ends. */
function endlessBody(rate: number, stats: HostileStats, stopped: Promise<void>): ReadableStream<Uint8Array> {
  const head = new TextEncoder().encode('{"from":"x","events":[');
  const filler = new TextEncoder().encode(`{"id":"${"0".repeat(64)}","ts":1,"svc":"x"},`.repeat(CHUNK / 80)).subarray(0, CHUNK);
  let sentHead = false;
  let started = 0;
  let ended = false;
  void stopped.then(() => (ended = true));
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (ended) return controller.close();
      if (!sentHead) {
        sentHead = true;
        started = performance.now();
        controller.enqueue(head);
        return;
      }
      // Paced to `rate`: ahead of it, wait until the clock catches up.
      const due = started + ((stats.endlessBytes + CHUNK) / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      stats.endlessBytes += CHUNK;
      controller.enqueue(filler.slice());
    },
  });
}

/** The first half of `body`, then silence until the peer stops. */
function stallingBody(body: Uint8Array, stopped: Promise<void>): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(body.slice(0, Math.max(1, body.length >> 1)));
        return;
      }
      await stopped;
      controller.close();
    },
  });
}

/**
 * The hostile answer to sync request number `k`, or undefined for the normal
 * one. `pagesServed` counts the pages served so far; `stopped` settles when the peer stops.
 */
export function hostileSync(
  faults: HostileFaults,
  k: number,
  pagesServed: number,
  page: Uint8Array,
  headers: Record<string, string>,
  stats: HostileStats,
  stopped: Promise<void>,
): { response: Response; fault: string } | undefined {
  if (faults.endlessAfterPages !== undefined && pagesServed >= faults.endlessAfterPages) {
    const h = { "Content-Type": "application/json" };
    return { fault: "endless", response: new Response(endlessBody(faults.endlessRate ?? 100e6, stats, stopped), { status: 200, headers: h }) };
  }
  if (faults.stallEvery !== undefined && faults.stallEvery > 0 && k % faults.stallEvery === 0) {
    stats.stalls++;
    return { fault: "stall", response: new Response(stallingBody(page, stopped), { status: 200, headers }) };
  }
  return undefined;
}
