import { readFileSync } from "node:fs";
import { NaraError, ExitCode, usageError, unreadableFile } from "../errors.ts";
import { MESH_PORT } from "./auth.ts";
import { BodyTooLarge, formatCap, readText } from "../io/body.ts";

export type PeerSource = "static" | "file" | "tailscale";

export type Peer = {
  name: string;
  /** Without brackets, also for IPv6. */
  host: string;
  port: number;
  /** http://host:port (IPv6 bracketed). */
  url: string;
  source: PeerSource;
};

export type Skipped = { name: string; reason: string };

export type Discovery = { peers: Peer[]; skipped: Skipped[] };

export const DEFAULT_TAILSCALE_SOCKET = "/var/run/tailscale/tailscaled.sock";

const SPEC_HINT = "write peers as name=host[:port], e.g. alice=100.64.0.2:7433 or carol=[fd7a::1]:7433";

export function makePeer(name: string, host: string, port: number, source: PeerSource): Peer {
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return { name, host, port, url: `http://${urlHost}:${port}`, source };
}

/**
 * "alice=100.64.0.2:7433", "bob=100.64.0.3" (port 7433), "carol=[::1]:8000".
 * An unbracketed IPv6 address is refused: its last group would read as a port.
 */
export function parsePeerSpec(spec: string, source: PeerSource = "static"): Peer {
  const entry = spec.trim();
  const bad = (why: string) => usageError(`bad peer "${entry}": ${why}`, SPEC_HINT);
  const eq = entry.indexOf("=");
  if (eq === -1) throw bad("missing name= before the address");
  const name = entry.slice(0, eq).trim();
  const address = entry.slice(eq + 1).trim();
  if (!name) throw bad("empty name");
  if (/[\s,=]/.test(name)) throw bad("a name has no spaces, commas or '='");
  if (!address) throw bad("empty address");
  if (address.includes("://")) throw bad("give host[:port], not a URL");
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(address);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
  } else if (address.startsWith("[")) {
    throw bad("unclosed '[' in the address");
  } else {
    const colons = address.split(":").length - 1;
    if (colons > 1) throw bad("put an IPv6 address in brackets: [addr]:port");
    [host, portText] = colons === 1 ? (address.split(":") as [string, string]) : [address, undefined];
  }
  if (!host || /[\s/@?#]/.test(host)) throw bad("the host is not a host name or IP address");
  let port = MESH_PORT;
  if (portText !== undefined) {
    if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw bad(`port "${portText}" is not 1..65535`);
    }
    port = Number(portText);
  }
  return makePeer(name, host, port, source);
}

/** A comma-separated --peers value; empty entries (a trailing comma) are ignored. */
export function parsePeerList(list: string, source: PeerSource = "static"): Peer[] {
  return list
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => parsePeerSpec(s, source));
}

/** One name=host[:port] per line; blank lines and `#` comments (whole-line or trailing) are ignored. */
export function readPeersFile(path: string): Peer[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw unreadableFile(`the peers file ${path}`, err);
  }
  const peers: Peer[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.replace(/#.*/, "").trim();
    if (!line) continue;
    try {
      peers.push(parsePeerSpec(line, "file"));
    } catch (err) {
      const e = err as NaraError;
      throw new NaraError(`${path}:${i + 1}: ${e.message}`, { hint: e.hint, exitCode: ExitCode.usage });
    }
  }
  return peers;
}

/** The parts of tailscaled's /localapi/v0/status answer that discovery reads. */
type TailscaleNode = {
  HostName?: string;
  DNSName?: string;
  TailscaleIPs?: string[] | null;
  Online?: boolean;
};
type TailscaleStatus = {
  BackendState?: string;
  Self?: TailscaleNode | null;
  Peer?: Record<string, TailscaleNode> | null;
};

const TAILSCALE_HINT = "is tailscaled running, and may this user read its socket? Or list the peers yourself with --peers / --peers-file";

const SOCKET_ERRORS: Record<string, string> = {
  ENOENT: "no such socket",
  EACCES: "permission denied",
  ECONNREFUSED: "connection refused (a stale socket?)",
  TimeoutError: "no answer in time",
};

/**
 * Cap on the LocalAPI status. Not the 1 MiB of other small answers: each node
 * takes ~1.5 KB of it, and a tailnet of a few thousand nodes is real.
 */
const STATUS_BYTES = 16 << 20;

async function fetchStatus(socket: string, timeoutMs: number): Promise<TailscaleStatus> {
  let res: Response;
  let body: string;
  const cut = new AbortController();
  try {
    res = await fetch("http://local-tailscaled.sock/localapi/v0/status", {
      unix: socket,
      signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), cut.signal]),
    });
    body = await readText(res, { maxBytes: STATUS_BYTES, abort: () => cut.abort() });
  } catch (err) {
    if (err instanceof BodyTooLarge) {
      throw new NaraError(`tailscaled at ${socket} answered a status larger than ${formatCap(err.limit)}`, { hint: TAILSCALE_HINT, exitCode: ExitCode.noPeers });
    }
    // Bun's own wording ("Was there a typo in the url or port?") misleads for a socket.
    const code = (err as { code?: string; name?: string }).code ?? (err as { name?: string }).name;
    const why = SOCKET_ERRORS[code ?? ""];
    throw new NaraError(`cannot reach tailscaled at ${socket}${why ? `: ${why}` : ""}`, {
      cause: why ? undefined : err,
      hint: TAILSCALE_HINT,
      exitCode: ExitCode.noPeers,
    });
  }
  if (res.status !== 200) {
    throw new NaraError(`tailscaled at ${socket} answered HTTP ${res.status}: ${body.trim().slice(0, 200)}`, {
      hint: res.status === 403 ? "this user may not use the LocalAPI: run as root or `tailscale set --operator=$USER`, or use --peers" : TAILSCALE_HINT,
      exitCode: ExitCode.noPeers,
    });
  }
  try {
    return JSON.parse(body) as TailscaleStatus;
  } catch (err) {
    throw new NaraError(`tailscaled at ${socket} answered something that is not JSON`, {
      cause: err,
      hint: TAILSCALE_HINT,
      exitCode: ExitCode.noPeers,
    });
  }
}

const hostNameOf = (node: TailscaleNode): string => node.HostName || (node.DNSName ?? "").split(".")[0] || "";
const isIPv4 = (ip: string): boolean => /^\d{1,3}(\.\d{1,3}){3}$/.test(ip);
/** A nara's tailnet hostname is NAME-xxxx. */
const NARA_HOSTNAME = /^(.+)-[a-z0-9]{4}$/i;

/**
 * Naras on the tailnet, from the local tailscaled. Skips the node we run on
 * (Self) and backup tools (nara-backup-*) silently; reports offline nodes,
 * nodes without an IPv4 and nodes whose hostname is not a nara's in
 * `skipped`. The nara we act as is included, as the Go tool does: a nara
 * answers requests signed with its own name, and it usually holds the longest
 * history. Two online nodes with one name: the first wins.
 */
export async function discoverTailscale(opts: {
  socket?: string;
  port?: number;
  timeoutMs?: number;
}): Promise<Discovery> {
  const socket = opts.socket ?? DEFAULT_TAILSCALE_SOCKET;
  const status = await fetchStatus(socket, opts.timeoutMs ?? 5000);
  if (status.BackendState && status.BackendState !== "Running") {
    throw new NaraError(`tailscale is not connected (state ${status.BackendState})`, {
      hint: "bring it up with `tailscale up`, or list the peers with --peers",
      exitCode: ExitCode.noPeers,
    });
  }
  const selfHost = status.Self ? hostNameOf(status.Self) : undefined;
  const peers: Peer[] = [];
  const skipped: Skipped[] = [];
  const nodes = Object.values(status.Peer ?? {}).sort((a, b) => hostNameOf(a).localeCompare(hostNameOf(b)));
  for (const node of nodes) {
    const hostName = hostNameOf(node);
    if (hostName.startsWith("nara-backup-") || (selfHost !== undefined && hostName === selfHost)) continue;
    const match = NARA_HOSTNAME.exec(hostName);
    if (!match) {
      skipped.push({ name: hostName || "(no hostname)", reason: "hostname is not NAME-xxxx, not a nara" });
      continue;
    }
    const name = match[1]!;
    if (node.Online === false) {
      skipped.push({ name, reason: "offline" });
      continue;
    }
    const ips = node.TailscaleIPs ?? [];
    const ipv4 = ips.find(isIPv4);
    if (!ipv4) {
      skipped.push({ name, reason: ips.length === 0 ? "no Tailscale IP" : `no IPv4 address (only ${ips.join(", ")})` });
      continue;
    }
    const existing = peers.find((p) => p.name === name);
    if (existing) {
      skipped.push({ name, reason: `second node named ${name} (${ipv4}); using ${existing.host}` });
      continue;
    }
    peers.push(makePeer(name, ipv4, opts.port ?? MESH_PORT, "tailscale"));
  }
  return { peers, skipped };
}

/** Where peers come from: a static list (inline, file) or a tailscaled socket and the naras' mesh port. */
export type DiscoveryOptions = { peers?: string; peersFile?: string; socket?: string; port?: number };

/**
 * Static peers when --peers or --peers-file is given (file first, then
 * --peers; a name listed twice keeps its last address, so --peers overrides
 * the file), else Tailscale: the joined mesh's daemon when given, else the
 * host's. Static lists are taken as written. May return no peers; see resolvePeers.
 */
export async function discoverPeers(args: DiscoveryOptions, mesh?: { socket: string }): Promise<Discovery & { via: "static" | "tailscale" }> {
  if (args.peers !== undefined || args.peersFile !== undefined) {
    const byName = new Map<string, Peer>();
    const listed = [
      ...(args.peersFile !== undefined ? readPeersFile(args.peersFile) : []),
      ...(args.peers !== undefined ? parsePeerList(args.peers) : []),
    ];
    for (const peer of listed) {
      byName.delete(peer.name); // keep the order of the last mention
      byName.set(peer.name, peer);
    }
    return { peers: [...byName.values()], skipped: [], via: "static" };
  }
  const found = await discoverTailscale({ socket: mesh?.socket ?? args.socket, port: args.port ?? MESH_PORT });
  return { ...found, via: "tailscale" };
}

/** discoverPeers, refusing an empty result: a backup of nobody is not a backup. `onSkipped` hears of each peer left out first. */
export async function resolvePeers(
  args: DiscoveryOptions,
  mesh?: { socket: string },
  onSkipped?: (s: Skipped) => void,
): Promise<Discovery & { via: "static" | "tailscale" }> {
  const found = await discoverPeers(args, mesh);
  if (onSkipped) for (const s of found.skipped) onSkipped(s);
  if (found.peers.length === 0) throw noPeersError(found);
  return found;
}

export function noPeersError(found: Discovery & { via: "static" | "tailscale" }): NaraError {
  if (found.via === "static") {
    return new NaraError("no peers: --peers and --peers-file list nobody", {
      hint: "list at least one peer as name=host[:port]",
      exitCode: ExitCode.noPeers,
    });
  }
  const skipped = found.skipped.length
    ? ` (skipped: ${found.skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")})`
    : "";
  return new NaraError(`Tailscale shows no nara to back up${skipped}`, {
    hint: "check that the naras are online on this tailnet (`tailscale status`), or list them with --peers name=host:port",
    exitCode: ExitCode.noPeers,
  });
}
