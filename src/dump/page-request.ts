/**
 * One request to a peer: /ping for its key, and a sync page asked for,
 * read under its caps, checked (status, signature) and scanned, with the
 * retries a failure is worth. What the page holds is the caller's (`take`).
 */
import { abortableSleep, backoffDelay } from "../io/retry.ts";
import { describeError } from "../errors.ts";
import type { Identity } from "../identity/soul.ts";
import { signRequest, verifyResponse } from "../mesh/auth.ts";
import { ScanError, scanSyncPage, type SyncPage } from "../events/scan.ts";
import { BodyIdle, BodyTooLarge, formatCap, readBody, readText, SMALL_BODY_BYTES, type BodyLimits } from "../io/body.ts";
import type { Backlog } from "./budget.ts";
import type { FetchSettings, PeerReport, PeerTarget } from "./messages.ts";

/** A failure worth another attempt (5xx, dropped connection, truncated body). */
export class Retryable extends Error {}
/** A failure that another attempt will not fix (401, 400, strict signature check). */
export class Fatal extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** What every request to one peer shares. */
export type PeerLink = {
  peer: PeerTarget;
  identity: Identity;
  doFetch: typeof fetch;
  /** The peer's deadline, and its end (one stream failed, or all are done). */
  signal: AbortSignal;
  /** The key from /ping, or undefined: responses are checked against it. */
  publicKey: Promise<string | undefined>;
  strict: boolean;
  /** Where the signature check's verdict goes. */
  report: PeerReport;
  warn: (m: string) => void;
};

/**
 * The scanned page, reused for the next: a page is handed to `take`
 * synchronously after its scan, so one serves every peer of a worker.
 */
let scanned: SyncPage | undefined;

/** The peer's public key from /ping, to check response signatures; undefined when it cannot be had. */
export async function pingKey(
  peer: PeerTarget,
  doFetch: typeof fetch,
  signal: AbortSignal,
  warn: (m: string) => void,
  debug: (m: string) => void,
  idleMs: number,
): Promise<string | undefined> {
  try {
    const own = new AbortController();
    const res = await doFetch(`${peer.url}/ping`, { signal: AbortSignal.any([signal, own.signal, AbortSignal.timeout(10_000)]) });
    const text = await readText(res, { maxBytes: SMALL_BODY_BYTES, idleMs, abort: () => own.abort() });
    if (!res.ok) {
      debug(`/ping answered ${res.status}: response signatures will not be checked`);
      return undefined;
    }
    const ping = JSON.parse(text) as { from?: unknown; public_key?: unknown };
    if (typeof ping.from === "string" && ping.from !== peer.name) {
      warn(`/ping says this peer is "${ping.from}", not "${peer.name}"`);
    }
    return typeof ping.public_key === "string" && ping.public_key ? ping.public_key : undefined;
  } catch (err) {
    if (signal.aborted) throw err;
    debug(`/ping failed (${describeError(err)}): response signatures will not be checked`);
    return undefined;
  }
}

export type PageHandling<T> = {
  /** Cap on the page's body (--max-page-bytes), and the longest silence (--idle-timeout). */
  maxBytes: number;
  idleMs: number;
  backlog: Backlog | undefined;
  /** This peer's last page size (or a guess), counted as held until the answer lands or `holdMs` pass without it. */
  expectBytes: number;
  holdMs: number;
  /** Who waits for room goes on lowest first (see Backlog): the ts the stream is at, approximately. */
  priority?: number;
  take: (bytes: Uint8Array, page: SyncPage) => T;
  /** How long the answer took to start (ms), and then to arrive whole. */
  timing?: (waitMs: number, transferMs: number) => void;
};

/**
 * One attempt at one page: request, checks, scan, and (synchronously, while
 * the scan's scratch is valid) `take`. It is asked for only while the worker
 * holds little (see dump/budget.ts); once the body has arrived, its bytes
 * count as held until the page has been handed on.
 */
export async function fetchPage<T>(link: PeerLink, body: string, handling: PageHandling<T>): Promise<T> {
  const { peer, identity, doFetch, signal, report, warn } = link;
  let release: (() => void) | undefined;
  let expected: (() => void) | undefined;
  try {
    expected = await handling.backlog?.admit(handling.expectBytes, handling.holdMs, signal, handling.priority);
    let res: Response;
    let bytes: Uint8Array;
    // This attempt's own abort: a body past the cap or gone silent closes its connection, not the peer's.
    const attempt = new AbortController();
    const { idleMs } = handling;
    // Silence before the headers counts as much as silence in the body.
    const waiting = idleMs > 0 ? setTimeout(() => attempt.abort(new BodyIdle(idleMs, 0)), idleMs) : undefined;
    try {
      // Signed here, per attempt: peers reject timestamps older than 30 s.
      const headers = { ...signRequest(identity, "POST", "/events/sync"), "Content-Type": "application/json" };
      const sent = performance.now();
      res = await doFetch(`${peer.url}/events/sync`, { method: "POST", headers, body, signal: AbortSignal.any([signal, attempt.signal]) });
      clearTimeout(waiting);
      const answered = performance.now();
      const limits = { maxBytes: handling.maxBytes, idleMs, abort: () => attempt.abort() };
      // Error bodies are only ever shown as a snippet: 1 MiB is plenty, and past it the status says enough.
      bytes = res.status === 200 ? await readBody(res, limits) : await errorBody(res, { ...limits, maxBytes: SMALL_BODY_BYTES });
      handling.timing?.(answered - sent, performance.now() - answered);
    } catch (err) {
      clearTimeout(waiting);
      if (signal.aborted) throw err;
      if (err instanceof BodyTooLarge) {
        // Another attempt would read the same page again: the peer fails, what it gave before is kept.
        throw new Fatal(
          `page larger than ${formatCap(err.limit)}${err.announced !== undefined ? ` (the peer announced ${err.announced} bytes): not read` : ": cut off"}`,
          "a real 5000-event page is 1–10 MB: look at that nara, or raise --max-page-bytes if it really serves larger pages (its earlier pages are kept)",
        );
      }
      const idle = err instanceof BodyIdle ? err : attempt.signal.reason instanceof BodyIdle ? attempt.signal.reason : undefined;
      if (idle) throw new Retryable(`the peer went silent: ${idle.message}`);
      throw new Retryable(`connection failed: ${describeError(err)}`);
    }
    // Arrived: held in memory until handed on.
    expected?.();
    release = handling.backlog?.add(bytes.length);
    if (res.status === 401) {
      throw new Fatal(
        `the peer refused our request signature (401: ${snippet(bytes)})`,
        `either this machine's clock is more than 30 s off (check NTP), or the peer does not know ${identity.name}'s public key yet (is this the right name and soul, and has ${identity.name} been online on the mesh?)`,
      );
    }
    if (res.status >= 500) throw new Retryable(`HTTP ${res.status}: ${snippet(bytes)}`);
    if (res.status !== 200) throw new Fatal(`HTTP ${res.status}: ${snippet(bytes)}`);

    const key = await link.publicKey;
    if (key) {
      const check = verifyResponse(res.headers, bytes, key);
      if (!check.ok) {
        const what = check.reason === "missing-headers" ? "carries no signature headers" : "signature does not match the key from /ping";
        if (link.strict) {
          throw new Fatal(`response ${what}`, "--strict drops peers whose responses cannot be proven; drop --strict to keep them with a warning");
        }
        if (report.signatures !== "failed") warn(`response ${what}; events kept (use --strict to drop such peers)`);
        report.signatures = "failed";
      } else if (report.signatures === "unchecked") report.signatures = "verified";
    }

    let page: SyncPage;
    try {
      page = scanned = scanSyncPage(bytes, scanned);
    } catch (err) {
      if (err instanceof ScanError) throw new Retryable(`malformed response body (${err.message}; ${bytes.length} bytes)`);
      throw err;
    }
    return handling.take(bytes, page);
  } finally {
    expected?.();
    release?.();
  }
}

/** An error answer's body for its snippet; one past the cap becomes a note (the status decides what happens). */
async function errorBody(res: Response, limits: BodyLimits): Promise<Uint8Array> {
  try {
    return await readBody(res, limits);
  } catch (err) {
    if (err instanceof BodyTooLarge) return new TextEncoder().encode(`(an error body larger than ${formatCap(err.limit)})`);
    throw err;
  }
}

const snippet = (bytes: Uint8Array): string => {
  const text = new TextDecoder().decode(bytes.subarray(0, 200)).trim();
  return text.length > 0 ? text : "empty body";
};

export async function withRetries<T>(
  attempt: () => Promise<T>,
  settings: FetchSettings,
  deadline: number,
  now: () => number,
  signal: AbortSignal,
  onRetry: (err: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof Retryable) || signal.aborted) throw err;
      const delay = backoffDelay(n, settings.backoffMs, settings.maxBackoffMs);
      if (now() + delay >= deadline) throw new Error(`${err.message} (gave up after ${n} attempt(s): the peer's time is up)`);
      onRetry(err, n, delay);
      await abortableSleep(delay, signal);
      if (signal.aborted) throw signal.reason;
    }
  }
}
