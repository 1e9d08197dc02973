/** The fault switches of a simulated peer, and the responses faults answer with. */
import type { HostileFaults } from "./hostile.ts";

export type Faults = HostileFaults & {
  /** Delay before every response (the peer's own latency), ms. */
  latencyMs?: number;
  /** Every Nth sync request answers 500 (odd multiples) or 503 (even multiples). */
  failEvery?: number;
  /** Every Nth sync request: the connection is dropped without an answer. */
  dropEvery?: number;
  /** After this many pages were served, sync requests never answer (until stop()). */
  hangAfterPages?: number;
  /** Every Nth sync request answers 200 with a body that is not JSON. */
  garbageEvery?: number;
  /** Every Nth sync request answers 200 with the page cut in the middle (Content-Length of the cut body). */
  truncateEvery?: number;
  /** Response header signatures are made with the wrong key. */
  badResponseSig?: boolean;
  /** The body-level `sig` of sync responses is made with the wrong key. */
  badBodySig?: boolean;
  /** An old peer: ignores mode/cursor, returns the newest events after since_time, capped at 2000, never next_cursor. */
  legacy?: boolean;
  /** A broken peer: after this many pages it ignores the cursor and pages from the beginning again (next_cursor goes backwards). */
  rewindAfterPages?: number;
  /** Every sync request answers 401 (e.g. the peer does not know us). */
  status401?: boolean;
  /** Every Nth import request answers 503 before importing anything. */
  importFailEvery?: number;
  /** Every Nth import request: the connection is dropped (see importDropAfterApply). */
  importDropEvery?: number;
  /** Dropped imports were applied before the drop (a lost answer); default true. */
  importDropAfterApply?: boolean;
};

/** Whether request number k (1-based) is one of every nth. */
export const every = (n: number | undefined, k: number): boolean => n !== undefined && n > 0 && k % n === 0;

/** A response whose body errors at once: Bun resets the connection before any byte of the answer. */
export function droppedConnection(): Response {
  return new Response(
    new ReadableStream({
      pull(controller) {
        controller.error(); // no argument: Bun drops the socket without logging
      },
    }),
  );
}

export const text = (body: string, status: number, headers: Record<string, string> = {}): Response =>
  new Response(body, { status, headers: { "Content-Type": "text/plain; charset=utf-8", ...headers } });

export const json = (body: string, status: number, headers: Record<string, string> = {}): Response =>
  new Response(body, { status, headers: { "Content-Type": "application/json", ...headers } });

