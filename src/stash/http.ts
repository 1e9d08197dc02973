/**
 * The nara's stash routes on its local UI server (../shared/STASH.md §1):
 * GET /api/stash/status and POST /api/stash/update. They have no
 * authentication at all. Every answer is read with a size cap.
 */
import { ExitCode, NaraError, describeError } from "../errors.ts";
import { parseNaraUrl } from "../mesh/nara-url.ts";

/** A nara keeps any JSON as a stash (no limit at HEAD); a backup tool still bounds what it reads. */
export const MAX_STASH_BYTES = 16 << 20;
export const STATUS_PATH = "/api/stash/status";
export const UPDATE_PATH = "/api/stash/update";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export type StashStatus = {
  hasStash: boolean;
  /** Unix seconds of the nara's stash, when it has one. */
  timestamp?: number;
  /** The stash as the nara re-encodes it; null when it holds a stash that is not a JSON object. */
  data?: Record<string, unknown> | null;
  confidants: { id: string; name?: string; online?: boolean }[];
};

export type UpdateAnswer = { success: boolean; message: string };

/** The nara's base URL for what the user typed (http://localhost:8080, localhost:8080, http://host/prefix/). */
export function stashBaseUrl(naraUrl: string): string {
  const url = parseNaraUrl(naraUrl);
  url.pathname = url.pathname.replace(/\/+$/, "").replace(/\/api\/stash(\/[a-z]*)?$/, "");
  return url.toString().replace(/\/+$/, "");
}

/** localhost, 127.0.0.0/8 and ::1: the only addresses where an unauthenticated stash route stays on this machine. */
export function isLoopback(baseUrl: string): boolean {
  const host = new URL(baseUrl).hostname.replace(/^\[|\]$/g, "").toLowerCase();
  // URL writes an IPv4-mapped address in hex: ::ffff:7f00:1 is 127.0.0.1.
  return host === "localhost" || host.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(host) || host === "::1" || /^::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(host);
}

export const LOOPBACK_WARNING =
  "is not a loopback address: the stash routes have no authentication, so anyone who can reach it can read or replace the stash, and it travels unencrypted";

/** The body as text, refused beyond `cap` bytes (checked on Content-Length and while reading). */
export async function readCapped(res: Response, cap: number, what: string): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > cap) {
    await res.body?.cancel();
    throw tooLarge(what, cap);
  }
  if (!res.body) return "";
  const bytes = await readAllCapped(res.body, cap);
  if (!bytes) throw tooLarge(what, cap);
  return Buffer.from(bytes).toString("utf8");
}

/** The whole stream, or undefined (and the stream cancelled) as soon as it passes `cap` bytes. */
export async function readAllCapped(stream: ReadableStream<Uint8Array>, cap: number): Promise<Uint8Array | undefined> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > cap) {
      await reader.cancel().catch(() => {});
      return undefined;
    }
    parts.push(value);
  }
  return Buffer.concat(parts);
}

const tooLarge = (what: string, cap: number) =>
  new NaraError(`${what} is larger than ${cap >> 20} MiB`, { hint: "a stash this large is not something nara-backup reads", exitCode: ExitCode.failed });

type RequestOptions = { timeoutMs: number; fetch?: FetchLike };

async function request(url: string, init: RequestInit, opts: RequestOptions): Promise<Response> {
  try {
    return await (opts.fetch ?? fetch)(url, { ...init, redirect: "manual", signal: AbortSignal.timeout(opts.timeoutMs) });
  } catch (err) {
    const name = (err as { name?: string }).name;
    const timedOut = name === "TimeoutError" || name === "AbortError";
    const why = timedOut ? `no answer within ${(opts.timeoutMs / 1000).toFixed(1).replace(/\.0$/, "")}s` : describeError(err);
    throw new NaraError(`cannot reach the nara at ${url}: ${why}`, {
      hint: timedOut ? "a nara distributing its stash can take up to 30s per confidant: try a longer --timeout" : "is the nara running with -serve-ui? Its UI server listens on -http-addr (default :8080)",
      exitCode: ExitCode.failed,
    });
  }
}

async function failedStatus(res: Response, url: string): Promise<NaraError> {
  const body = (await readCapped(res, 4096, "an error answer").catch(() => "")).trim().slice(0, 200);
  const hint =
    res.status === 404
      ? "a nara serves the stash routes only on its UI server, started with -serve-ui (not on the mesh port 7433)"
      : "see the nara's log";
  return new NaraError(`${url} answered HTTP ${res.status}${body ? `: ${body}` : ""}`, { hint, exitCode: ExitCode.failed });
}

const notStatus = (url: string, why: string) =>
  new NaraError(`${url} did not answer with a stash status: ${why}`, {
    hint: "--nara-url must be the nara's own UI server (-serve-ui), e.g. http://localhost:8080",
    exitCode: ExitCode.failed,
  });

/** GET /api/stash/status, checked for the shape a nara sends. */
export async function getStatus(baseUrl: string, opts: RequestOptions): Promise<StashStatus> {
  const url = baseUrl + STATUS_PATH;
  const res = await request(url, { method: "GET" }, opts);
  if (res.status !== 200) throw await failedStatus(res, url);
  const text = await readCapped(res, MAX_STASH_BYTES + 65536, `the status from ${url}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw notStatus(url, "not JSON");
  }
  if (!isObject(body) || typeof body.has_stash !== "boolean") throw notStatus(url, "no has_stash");
  const confidants = Array.isArray(body.confidants)
    ? body.confidants.filter(isObject).map((c) => ({
        id: String(c.id ?? ""),
        ...(typeof c.name === "string" ? { name: c.name } : {}),
        ...(typeof c.online === "boolean" ? { online: c.online } : {}),
      }))
    : [];
  if (!body.has_stash) return { hasStash: false, confidants };
  const mine = body.my_stash;
  if (!isObject(mine) || typeof mine.timestamp !== "number" || !Number.isInteger(mine.timestamp)) {
    throw notStatus(url, "has_stash is true but my_stash has no timestamp");
  }
  const data = mine.data;
  if (data !== null && !isObject(data)) throw notStatus(url, "my_stash.data is neither an object nor null");
  return { hasStash: true, timestamp: mine.timestamp, data, confidants };
}

/** POST /api/stash/update with the stash itself as the body. An HTTP 200 may still say success:false. */
export async function postUpdate(baseUrl: string, body: string, opts: RequestOptions): Promise<UpdateAnswer> {
  const url = baseUrl + UPDATE_PATH;
  const res = await request(url, { method: "POST", body, headers: { "content-type": "application/json" } }, opts);
  if (res.status !== 200) throw await failedStatus(res, url);
  const text = await readCapped(res, 65536, `the answer of ${url}`);
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = undefined;
  }
  if (!isObject(answer) || typeof answer.success !== "boolean") {
    throw new NaraError(`${url} did not answer with {success, message}`, { hint: "--nara-url must be the nara's own UI server", exitCode: ExitCode.failed });
  }
  return { success: answer.success, message: typeof answer.message === "string" ? answer.message : "" };
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
