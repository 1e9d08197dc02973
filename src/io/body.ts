/**
 * Reading an HTTP response body under a byte cap and an idle timeout, while
 * it streams: a body that never ends is cut off at the cap (never read to
 * its end, the request aborted), and one that stops sending is abandoned
 * after `idleMs` of silence. Every read from a peer or a daemon goes through
 * here: what a peer sends can never grow the process past the cap.
 */

/** The cap for small answers: /ping, import results, the LocalAPI, error bodies. */
export const SMALL_BODY_BYTES = 1 << 20;

/** The body passed its cap; what was read is dropped. */
export class BodyTooLarge extends Error {
  constructor(
    readonly limit: number,
    /** From Content-Length, when the peer announced it. */
    readonly announced?: number,
  ) {
    super(`body larger than ${formatCap(limit)}${announced !== undefined ? ` (Content-Length ${announced})` : ""}`);
    this.name = "BodyTooLarge";
  }
}

/** Nothing arrived for `idleMs`. */
export class BodyIdle extends Error {
  constructor(
    readonly idleMs: number,
    readonly received: number,
  ) {
    super(`nothing received for ${formatMs(idleMs)} (${received} bytes in)`);
    this.name = "BodyIdle";
  }
}

export type BodyLimits = {
  maxBytes: number;
  /** Longest silence between two pieces of the body (none when undefined or 0). */
  idleMs?: number;
  /** Called when the read gives up (cap, idle): abort the request so the connection closes. */
  abort?: () => void;
};

/** Binary sizes as the flags spell them: 64 MiB, 1 MiB, 1500 B. */
export function formatCap(n: number): string {
  for (const [unit, size] of [
    ["GiB", 2 ** 30],
    ["MiB", 2 ** 20],
    ["KiB", 2 ** 10],
  ] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} bytes`;
}

const formatMs = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`);

/**
 * The whole body, or a BodyTooLarge / BodyIdle error (after `abort`).
 * Errors of the connection itself (reset, the caller's abort) pass through.
 */
export async function readBody(res: Response, limits: BodyLimits): Promise<Uint8Array> {
  const { maxBytes } = limits;
  const giveUp = (err: Error): never => {
    limits.abort?.();
    throw err;
  };
  const announced = contentLength(res);
  if (announced !== undefined && announced > maxBytes) {
    void res.body?.cancel().catch(() => {});
    giveUp(new BodyTooLarge(maxBytes, announced));
  }
  if (res.body === null) return new Uint8Array(0);
  const reader = res.body.getReader();
  // Known length: one buffer of that size. Otherwise the pieces as they came, joined once at the
  // end: a body cut off at the cap never held more than the cap (a doubling buffer holds 1.5x).
  // (Not for a large announcement: memory follows what arrives, not what a peer claims will.)
  const whole = announced !== undefined && announced <= PREALLOCATE ? new Uint8Array(announced) : undefined;
  const pieces: Uint8Array[] = [];
  let used = 0;
  // One timer per body, re-armed lazily from the time of the last piece: a timer and a race per piece cost
  // more than the piece itself when a page crosses a slow link in hundreds of small pieces.
  const { idleMs } = limits;
  let last = performance.now();
  let idle: BodyIdle | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    const quiet = performance.now() - last;
    if (quiet < idleMs!) {
      timer = setTimeout(check, idleMs! - quiet);
      return;
    }
    idle = new BodyIdle(idleMs!, used);
    // Either ends the pending read: the cancel resolves it, the abort rejects it.
    void reader.cancel(idle).catch(() => {});
    limits.abort?.();
  };
  if (idleMs) timer = setTimeout(check, idleMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (idle) throw idle;
      if (done) break;
      last = performance.now();
      if (used + value.length > (announced ?? maxBytes)) {
        void reader.cancel().catch(() => {});
        // More than it announced: what came is not the body it signed, and past the cap it is cut off.
        giveUp(used + value.length > maxBytes ? new BodyTooLarge(maxBytes) : new Error(`body longer than its Content-Length ${announced}`));
      }
      if (whole) whole.set(value, used);
      else pieces.push(value);
      used += value.length;
    }
  } catch (err) {
    // The request is aborted already (see check).
    if (idle) throw idle;
    throw err;
  } finally {
    clearTimeout(timer);
    reader.releaseLock();
  }
  if (whole) return used === whole.length ? whole : whole.subarray(0, used);
  if (pieces.length === 1) return pieces[0]!;
  const buf = new Uint8Array(used);
  let at = 0;
  for (const p of pieces) {
    buf.set(p, at);
    at += p.length;
  }
  return buf;
}

/** The body as text, under the same limits. */
export async function readText(res: Response, limits: BodyLimits): Promise<string> {
  return new TextDecoder().decode(await readBody(res, limits));
}

function contentLength(res: Response): number | undefined {
  const v = res.headers.get("content-length");
  if (v === null || !/^\d+$/.test(v)) return undefined;
  return Number(v);
}

/** Announced bodies up to this size get their buffer at once. */
const PREALLOCATE = 16 << 20;

