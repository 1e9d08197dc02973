/**
 * k-way merge of sorted cursors with a binary heap, deduplicating as it
 * goes: copies of one event (same ts, same key) come out of the heap next
 * to each other, ordered by (input, line); the first signed copy is kept,
 * else the first copy. Memory: one head per cursor. The event held back
 * for dedup owns a copy of its bytes, so a cursor may reuse its buffer as
 * soon as it advances.
 */
import type { Cursor } from "./cursor.ts";
import { Head, compareCopies, compareEvents, copyHeadInto } from "../events/order.ts";
import type { RunStats } from "./runs.ts";

/** Lets the event loop run (signal handlers, timers): synchronous sources would otherwise starve it. */
export const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
/** Events between two yields. */
const YIELD_EVERY = 8192;

/** Receives each event once, in order; `h` is only valid during the call. */
export type Emit = (h: Head) => void | Promise<void>;

function siftDown(heap: Cursor[], n: number, i: number): void {
  const c = heap[i]!;
  for (;;) {
    let m = 2 * i + 1;
    if (m >= n) break;
    if (m + 1 < n && compareCopies(heap[m + 1]!.head, heap[m]!.head) < 0) m++;
    if (compareCopies(heap[m]!.head, c.head) >= 0) break;
    heap[i] = heap[m]!;
    i = m;
  }
  heap[i] = c;
}

export async function mergeCursors(cursors: readonly Cursor[], emit: Emit, stats: RunStats): Promise<void> {
  const heap: Cursor[] = [];
  for (const c of cursors) {
    const r = c.advance();
    if (r === true || (r !== false && (await r))) heap.push(c);
  }
  let n = heap.length;
  for (let i = (n >> 1) - 1; i >= 0; i--) siftDown(heap, n, i);

  // The event held back owns a copy of its bytes.
  const pending = new Head();
  let pendingBuf = Buffer.allocUnsafe(4096);
  const hold = (h: Head) => {
    if (pendingBuf.length < h.e - h.s) pendingBuf = Buffer.allocUnsafe((h.e - h.s) * 2);
    copyHeadInto(pending, h, pendingBuf);
  };
  let has = false;
  let count = 0;
  while (n > 0) {
    if (++count % YIELD_EVERY === 0) await yieldToLoop();
    const top = heap[0]!;
    const h = top.head;
    if (has && compareEvents(pending, h) === 0) {
      stats.duplicates++;
      if (h.signed && !pending.signed) {
        hold(h);
        stats.replaced++;
      }
    } else {
      if (has) {
        const p = emit(pending);
        if (p) await p;
      }
      hold(h);
      has = true;
    }
    const r = top.advance();
    const more = r === true || (r !== false && (await r));
    if (!more) heap[0] = heap[--n]!;
    if (n > 0) siftDown(heap, n, 0);
  }
  if (has) {
    const p = emit(pending);
    if (p) await p;
  }
}
