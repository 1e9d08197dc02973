/// <reference lib="webworker" />
/**
 * A checking worker of restore's pass 1 (src/restore/parallel.ts): checks
 * the lines of one byte range of a plain backup file and posts the results
 * in chunks, at most WINDOW ahead of the main thread's acknowledgements.
 */
import { checkRange, transfers, WINDOW, type FromChecker, type ToChecker } from "../src/restore/parallel.ts";

declare const self: Worker;

let unacked = 0;
let room: (() => void) | undefined;

const post = async (m: FromChecker): Promise<void> => {
  if (m.type === "chunk") {
    self.postMessage(m, transfers(m));
    Bun.gc(false);
    if (++unacked >= WINDOW) await new Promise<void>((r) => (room = r));
  } else self.postMessage(m);
};

self.onmessage = (e: MessageEvent<ToChecker>) => {
  const m = e.data;
  if (m.type === "ack") {
    unacked--;
    const r = room;
    room = undefined;
    r?.();
    return;
  }
  checkRange(m, post).catch((err: unknown) => {
    self.postMessage({ type: "error", message: err instanceof Error ? err.message : String(err), code: (err as { code?: string }).code } satisfies FromChecker);
  });
};
