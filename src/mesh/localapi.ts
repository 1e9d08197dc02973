/**
 * tailscaled's LocalAPI over its unix socket (TAILSCALE.md §2): Host
 * `local-tailscaled.sock`, no Origin or Referer (either gets a 403), every
 * answer read under a size cap.
 */

/** The LocalAPI's Host: `localhost` is refused unless the daemon has a GUI password. */
export const LOCALAPI_BASE = "http://local-tailscaled.sock/localapi/v0";
/** A status of a tailnet of thousands stays well below this. */
export const LOCALAPI_MAX_BYTES = 16 << 20;

export type LocalApiAnswer = { status: number; text: string };

export class LocalApiError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "LocalApiError";
  }
}

/** Reads a body up to `max` bytes; more is an error, not a truncation. */
async function readCapped(res: Response, max: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      throw new LocalApiError(`answer larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

export async function localApi(
  socket: string,
  path: string,
  opts: { method?: "GET" | "POST"; body?: unknown; timeoutMs?: number; maxBytes?: number } = {},
): Promise<LocalApiAnswer> {
  let res: Response;
  try {
    res = await fetch(`${LOCALAPI_BASE}/${path}`, {
      unix: socket,
      method: opts.method ?? "GET",
      headers: opts.body === undefined ? undefined : { "Content-Type": "application/json" },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
    });
  } catch (err) {
    const e = err as { code?: string; name?: string; message?: string };
    const code = e.code ?? e.name;
    throw new LocalApiError(code === "TimeoutError" ? "no answer in time" : (e.message ?? String(err)), code);
  }
  return { status: res.status, text: await readCapped(res, opts.maxBytes ?? LOCALAPI_MAX_BYTES) };
}

/** The fields of /localapi/v0/status the join reads (ipnstate.Status). */
export type DaemonStatus = {
  BackendState?: string;
  AuthURL?: string;
  Health?: string[] | null;
  Self?: { HostName?: string; DNSName?: string; TailscaleIPs?: string[] | null } | null;
  Peer?: Record<string, { HostName?: string; TailscaleIPs?: string[] | null }> | null;
};

export async function daemonStatus(socket: string, peers: boolean, timeoutMs?: number): Promise<DaemonStatus> {
  const answer = await localApi(socket, peers ? "status" : "status?peers=false", { timeoutMs });
  if (answer.status !== 200) throw new LocalApiError(`status: HTTP ${answer.status}: ${answer.text.trim().slice(0, 200)}`);
  try {
    return JSON.parse(answer.text) as DaemonStatus;
  } catch {
    throw new LocalApiError("status: the answer is not JSON");
  }
}

/** POST that must answer 204 (start, login-interactive, logout). */
export async function localApiPost(socket: string, path: string, body?: unknown, timeoutMs?: number): Promise<void> {
  const answer = await localApi(socket, path, { method: "POST", body, timeoutMs, maxBytes: 64 << 10 });
  if (answer.status !== 204 && answer.status !== 200) {
    throw new LocalApiError(`${path}: HTTP ${answer.status}: ${answer.text.trim().slice(0, 300)}`);
  }
}

/** Every tailnet IP of the daemon's peers: the only addresses requests through its proxy may go to. */
export async function peerIps(socket: string): Promise<Set<string>> {
  const status = await daemonStatus(socket, true);
  return new Set(Object.values(status.Peer ?? {}).flatMap((p) => p.TailscaleIPs ?? []));
}
