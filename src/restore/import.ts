/**
 * POST /api/events/import: one attempt with a timeout, classified; and a
 * batch sent with retries, signed afresh before every attempt.
 */
import { abortableSleep, backoffDelay } from "../io/retry.ts";
import { parseNaraUrl } from "../mesh/nara-url.ts";
import { BodyTooLarge, formatCap, readText, SMALL_BODY_BYTES } from "../io/body.ts";
import type { Identity } from "../identity/soul.ts";
import { signBatch, type Batch } from "./batch.ts";

export const IMPORT_PATH = "/api/events/import";

/** What a 200 says. `duplicates` = sent − imported (it includes events the peer refused). */
export type ImportCounts = { imported: number; duplicates: number; warnings: number };

export type Attempt =
  | { kind: "ok"; counts: ImportCounts; status: number; ms: number }
  /** 403: wrong soul, clock more than 5 minutes off, or a bad signature. Never retried. */
  | { kind: "refused"; status: 403; error: string; serverDateMs?: number; ms: number }
  /** Any other answer that retrying cannot change (400, 404, 405, a redirect, …). */
  | { kind: "rejected"; status: number; error: string; location?: string; ms: number }
  /** 5xx, 408, 429, a timeout, a dropped or refused connection, a garbled answer: retried. */
  | { kind: "transient"; status?: number; error: string; retryAfterMs?: number; ms: number }
  /** The caller's signal fired (Ctrl-C): not retried, nothing known about the batch. */
  | { kind: "aborted"; error: string; ms: number };

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/**
 * The import endpoint for what the user typed: a base URL
 * (http://localhost:8080, localhost:8080, http://host/prefix/) or the full
 * endpoint URL.
 */
export function importUrl(naraUrl: string): string {
  const url = parseNaraUrl(naraUrl);
  const path = url.pathname.replace(/\/+$/, "");
  url.pathname = path.endsWith(IMPORT_PATH) ? path : `${path}${IMPORT_PATH}`;
  return url.toString();
}

/** The nara's base URL of an import endpoint URL, for messages. */
export const naraBaseUrl = (endpoint: string): string =>
  endpoint.endsWith(IMPORT_PATH) ? endpoint.slice(0, -IMPORT_PATH.length) : endpoint;

/** The URL without credentials, for messages. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString();
  } catch {
    return url;
  }
}

const errorCode = (err: unknown): string | undefined => (err as { code?: string } | null)?.code;

/** One POST, never throws: every outcome is classified. */
export async function postImport(
  url: string,
  body: Uint8Array,
  opts: { timeoutMs: number; signal?: AbortSignal; fetch?: FetchLike },
): Promise<Attempt> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  // Our own abort for an answer past its cap: the connection closes instead of reading on.
  const cut = new AbortController();
  const signal = AbortSignal.any(opts.signal ? [opts.signal, timeout, cut.signal] : [timeout, cut.signal]);
  const doFetch = opts.fetch ?? fetch;
  let res: Response;
  let text: string;
  try {
    res = await doFetch(url, {
      method: "POST",
      body: body as Uint8Array<ArrayBuffer>,
      headers: { "Content-Type": "application/json" },
      signal,
      redirect: "manual",
    });
    text = await readText(res, { maxBytes: SMALL_BODY_BYTES, abort: () => cut.abort() });
  } catch (err) {
    if (opts.signal?.aborted) return { kind: "aborted", error: "interrupted", ms: ms() };
    if (err instanceof BodyTooLarge) {
      // An import answer is a few counts: this is not the nara's import endpoint (or a proxy in the way).
      return { kind: "transient", error: `an answer larger than ${formatCap(err.limit)} (not a nara's import answer?)`, ms: ms() };
    }
    if (timeout.aborted) return { kind: "transient", error: `no answer within ${formatMs(opts.timeoutMs)}`, ms: ms() };
    return { kind: "transient", error: describeNetworkError(err), ms: ms() };
  }
  const status = res.status;
  const errorText = (): string => {
    try {
      const j = JSON.parse(text) as { error?: unknown };
      if (j && typeof j.error === "string" && j.error) return j.error;
    } catch {}
    const t = text.trim();
    return t ? (t.length > 200 ? `${t.slice(0, 200)}…` : t) : `HTTP ${status}`;
  };
  if (status === 200) {
    let j: { success?: unknown; imported?: unknown; duplicates?: unknown; warnings?: unknown };
    try {
      j = JSON.parse(text);
    } catch {
      return { kind: "transient", status, error: "HTTP 200 with a body that is not JSON (a proxy in the way?)", ms: ms() };
    }
    const count = (v: unknown): number | undefined => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : undefined);
    const imported = count(j?.imported);
    const duplicates = count(j?.duplicates);
    const warnings = j?.warnings === undefined ? 0 : count(j.warnings);
    if (j?.success !== true || imported === undefined || duplicates === undefined || warnings === undefined) {
      return { kind: "transient", status, error: `HTTP 200 but not a successful import answer: ${errorText()}`, ms: ms() };
    }
    return { kind: "ok", status, counts: { imported, duplicates, warnings }, ms: ms() };
  }
  if (status === 403) {
    const date = res.headers.get("date");
    const serverDateMs = date ? Date.parse(date) : Number.NaN;
    return {
      kind: "refused",
      status,
      error: errorText(),
      serverDateMs: Number.isFinite(serverDateMs) ? serverDateMs : undefined,
      ms: ms(),
    };
  }
  if (status >= 500 || status === 408 || status === 429) {
    return { kind: "transient", status, error: `HTTP ${status}: ${errorText()}`, retryAfterMs: retryAfter(res.headers.get("retry-after")), ms: ms() };
  }
  const location = status >= 300 && status < 400 ? (res.headers.get("location") ?? undefined) : undefined;
  return { kind: "rejected", status, error: `HTTP ${status}: ${errorText()}`, ...(location ? { location } : {}), ms: ms() };
}

function retryAfter(value: string | null): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function describeNetworkError(err: unknown): string {
  const code = errorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case "ConnectionRefused":
    case "ECONNREFUSED":
      return "connection refused (is the nara running, and is this its HTTP port?)";
    case "ECONNRESET":
    case "ConnectionClosed":
    case "EPIPE":
    case "UND_ERR_SOCKET":
      return "the connection was dropped before an answer";
    case "FailedToOpenSocket":
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `cannot reach the nara: ${message}`;
    default:
      return code ? `${message} (${code})` : message;
  }
}

export const formatMs = (ms: number): string =>
  ms % 60_000 === 0 && ms > 0 ? `${ms / 60_000}m` : ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;

export type RetryOptions = {
  url: string;
  identity: Identity;
  timeoutMs: number;
  /** Attempts after the first one. */
  retries: number;
  backoffMs: number;
  maxBackoffMs: number;
  /** Stops retrying (a request in flight is let finish: its outcome is awaited). */
  signal?: AbortSignal;
  fetch?: FetchLike;
  /** The clock the batch is signed with (tests inject a skewed one). */
  now?: () => number;
  /** Waits between attempts; must return early when `signal` fires. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** 0..1, for jitter; tests make it deterministic. */
  random?: () => number;
  onRetry?: (info: { attempt: number; of: number; failure: Attempt; delayMs: number }) => void;
};

export type SendResult = { last: Attempt; attempts: number; failures: Attempt[] };

/**
 * Sends one batch until it is accepted, refused (403), rejected (other 4xx),
 * aborted, or the retries are spent. Import deduplicates by ID, so resending
 * a batch that may have arrived loses and doubles nothing.
 */
export async function sendBatch(batch: Batch, opts: RetryOptions): Promise<SendResult> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? abortableSleep;
  const failures: Attempt[] = [];
  for (let attempt = 1; ; attempt++) {
    if (opts.signal?.aborted) return { last: { kind: "aborted", error: "interrupted", ms: 0 }, attempts: attempt - 1, failures };
    // Signed just before sending, again for each attempt: a stale ts is a 403.
    const { body } = signBatch(batch, opts.identity, now());
    // Not aborted by the signal: a request in flight is let finish, so that its outcome is known.
    const result = await postImport(opts.url, body, { timeoutMs: opts.timeoutMs, fetch: opts.fetch });
    if (result.kind !== "transient" || attempt > opts.retries) return { last: result, attempts: attempt, failures };
    failures.push(result);
    if (opts.signal?.aborted) return { last: { kind: "aborted", error: "interrupted", ms: 0 }, attempts: attempt, failures };
    const delayMs = Math.max(
      backoffDelay(attempt, opts.backoffMs, opts.maxBackoffMs, opts.random),
      Math.min(result.retryAfterMs ?? 0, 60_000),
    );
    opts.onRetry?.({ attempt, of: opts.retries + 1, failure: result, delayMs });
    await sleep(delayMs, opts.signal);
    if (opts.signal?.aborted) return { last: { kind: "aborted", error: "interrupted", ms: 0 }, attempts: attempt, failures };
  }
}
