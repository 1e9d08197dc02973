/**
 * A simulated tailscaled, run as a separate process exactly as the real one
 * (the flags of TAILSCALE.md §1), with a simulated Headscale folded in. It
 * behaves as TAILSCALE.md says the real daemon does: LocalAPI on --socket
 * with the Host/Origin check; NeedsLogin → (start, login-interactive) →
 * Starting → Running, login errors only in Health; an HTTP proxy (absolute
 * URIs and CONNECT) on the --outbound-http-proxy-listen port, announced on
 * stderr behind a log timestamp. Unlike the real one it never dials an
 * address that is not a peer (tests stay on loopback): such requests get the
 * real daemon's dial-failure answers (502, or 500 + Tailscale-Connect-Error).
 *
 * Its world comes from the JSON file named by NARA_SIM_TAILSCALED (see
 * tailnet.ts, which writes it and a wrapper script that execs this file):
 * which keys Headscale knows, which control URL is reachable, the peers and
 * the loopback address each tailnet IP maps to. What it saw goes, one JSON
 * object a line, to the `record` file of that config.
 */
import http from "node:http";
import net from "node:net";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { tailscaleStatus } from "./localapi.ts";

export type SimKeyState = "valid" | "expired" | "used" | "revoked";

export type SimTailnetPeer = {
  hostName: string;
  /** Its tailnet IPv4, 100.64.x.y. */
  ip: string;
  /** Where its mesh port is really served: 127.0.0.1:PORT. */
  target: string;
  /** The tailnet port that maps to `target` (default 7433). */
  port?: number;
  online?: boolean;
};

export type SimTailscaledConfig = {
  /** The one login server that answers (the simulated Headscale). */
  controlUrl: string;
  keys: Record<string, SimKeyState>;
  peers: SimTailnetPeer[];
  /** false: no DERP region reachable, the node stays in Starting. */
  derp?: boolean;
  record: string;
};

const config = JSON.parse(readFileSync(process.env.NARA_SIM_TAILSCALED!, "utf8")) as SimTailscaledConfig;
const record = (entry: Record<string, unknown>) => appendFileSync(config.record, `${JSON.stringify({ ...entry, at: Date.now() })}\n`);
const argv = process.argv.slice(2);
record({ event: "spawn", pid: process.pid, argv, env: { TS_LOGS_DIR: process.env.TS_LOGS_DIR ?? null, PORT: process.env.PORT ?? null } });

// Go's flag package: -flag=value or --flag=value; an unknown flag is exit 2.
const KNOWN = new Set(["tun", "state", "statedir", "socket", "port", "no-logs-no-support", "outbound-http-proxy-listen", "socks5-server", "verbose"]);
const flags = new Map<string, string>();
for (const a of argv) {
  const m = /^--?([a-z0-9-]+)(?:=(.*))?$/.exec(a);
  if (!m || !KNOWN.has(m[1]!)) {
    process.stderr.write(`flag provided but not defined: ${a.split("=")[0]}\n`);
    process.exit(2);
  }
  flags.set(m[1]!, m[2] ?? "true");
}
const logLine = (s: string) => {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, "0");
  process.stderr.write(`${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${s}\n`);
};
const socketPath = flags.get("socket");
if (!socketPath) {
  logLine("--socket is required");
  process.exit(1);
}
if (flags.get("tun") !== "userspace-networking" && process.getuid?.() !== 0) {
  logLine("CreateTUN(\"tailscale0\") failed; /dev/net/tun does not exist or permission denied");
  process.exit(1);
}
const ephemeral = (flags.get("state") ?? "").startsWith("mem:");
// logpolicy uses TS_LOGS_DIR only when it is an existing dir.
const logsDir = process.env.TS_LOGS_DIR;
const logsDirUsed = logsDir !== undefined && existsSync(logsDir) && statSync(logsDir).isDirectory();
record({ event: "flags", ephemeral, logsDirUsed, noLogs: flags.has("no-logs-no-support"), port: flags.get("port") ?? null });

// ---- the backend ----------------------------------------------------------

type State = "NeedsLogin" | "Starting" | "Running";
let state: State = "NeedsLogin";
let health: string[] = ["Tailscale is stopped."];
let authURL = "";
let haveNodeKey = false;
let prefs: { ControlURL?: string; Hostname?: string; WantRunning?: boolean; ShieldsUp?: boolean } = {};
let authKey = "";
const DEFAULT_CONTROL = "https://controlplane.tailscale.com";
const KEY_ERRORS: Record<Exclude<SimKeyState, "valid">, string> = {
  expired: "authkey expired",
  used: "authkey already used",
  revoked: "authkey revoked",
};

const loginError = (why: string) => {
  state = "NeedsLogin";
  health = [`You are logged out. The last login error was: ${why}`];
};

/** The auth routine: asynchronous, as the real one (login-interactive answers before registration). */
function login(): void {
  setTimeout(() => {
    const control = (prefs.ControlURL || DEFAULT_CONTROL).replace(/\/+$/, "");
    if (control !== config.controlUrl.replace(/\/+$/, "")) {
      const host = (() => {
        try {
          return new URL(control).hostname;
        } catch {
          return control;
        }
      })();
      return loginError(`fetch control key: Get "${control}/key?v=133": dial tcp: lookup ${host}: no such host`);
    }
    if (!authKey) {
      authURL = `${control}/register/nodekey:${"0".repeat(64)}`;
      health = [];
      return;
    }
    const key = config.keys[authKey];
    if (key === undefined) return loginError("register request: http 401: invalid pre auth key");
    if (key !== "valid") return loginError(`register request: http 401: ${KEY_ERRORS[key]}`);
    haveNodeKey = true;
    state = "Starting";
    health = [];
    record({ event: "registered", hostname: prefs.Hostname ?? "", ephemeral, shieldsUp: prefs.ShieldsUp === true });
    // Starting → Running needs a live DERP connection.
    if (config.derp !== false) setTimeout(() => (state = "Running"), 20);
  }, 20);
}

function logout(via: string): void {
  if (!haveNodeKey) return;
  haveNodeKey = false;
  prefs.WantRunning = false;
  state = "NeedsLogin";
  health = ["You are logged out."];
  record({ event: "logout", via });
}

function status(withPeers: boolean) {
  const running = state === "Running";
  const s = tailscaleStatus({
    self: { HostName: prefs.Hostname || "localhost", TailscaleIPs: haveNodeKey ? ["100.64.0.1"] : [] },
    peers: config.peers.map((p) => ({ hostName: p.hostName, ips: [p.ip], online: p.online ?? true })),
    backendState: state,
  });
  return {
    ...s,
    Version: "1.90.6-tsim",
    TUN: false,
    HaveNodeKey: haveNodeKey,
    AuthURL: authURL,
    TailscaleIPs: haveNodeKey ? ["100.64.0.1"] : null,
    Health: health,
    Peer: running && withPeers ? s.Peer : null,
  };
}

// ---- LocalAPI -------------------------------------------------------------

if (existsSync(socketPath)) {
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(socketPath, () => (c.destroy(), resolve(true)));
    c.on("error", () => resolve(false));
  });
  if (live) {
    logLine(`safesocket.Listen: listen unix ${socketPath}: bind: address already in use`);
    process.exit(1);
  }
  rmSync(socketPath);
}
mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });

const text = (body: string, status: number) => new Response(body, { status, headers: { "Content-Type": "text/plain; charset=utf-8" } });
const localApi = Bun.serve({
  unix: socketPath,
  async fetch(req) {
    const url = new URL(req.url);
    const host = req.headers.get("host") ?? "";
    record({ event: "localapi", method: req.method, path: url.pathname + url.search, host });
    if (req.headers.has("referer") || req.headers.has("origin") || (host !== "" && host !== "local-tailscaled.sock")) {
      return text("invalid localapi request\n", 403);
    }
    switch (url.pathname) {
      case "/localapi/v0/status":
        return Response.json(status(url.searchParams.get("peers") !== "false"));
      case "/localapi/v0/start": {
        if (req.method !== "POST") return text("want POST\n", 400);
        let opts: { AuthKey?: string; UpdatePrefs?: typeof prefs };
        try {
          opts = (await req.json()) as typeof opts;
        } catch (err) {
          return text(`${(err as Error).message}\n`, 400);
        }
        // UpdatePrefs replaces every pref (omitted ones are zero values).
        prefs = { ...opts.UpdatePrefs };
        authKey = opts.AuthKey ?? "";
        record({ event: "start", prefs, authKeyGiven: authKey !== "" });
        health = prefs.WantRunning ? [] : ["Tailscale is stopped."];
        return new Response(null, { status: 204 });
      }
      case "/localapi/v0/login-interactive":
        if (req.method !== "POST") return text("want POST\n", 400);
        login();
        return new Response(null, { status: 204 });
      case "/localapi/v0/logout":
        if (req.method !== "POST") return text("want POST\n", 400);
        logout("localapi");
        return new Response(null, { status: 204 });
      case "/localapi/v0/shutdown":
        return text("tailscaled restart not allowed by policy\n", 403);
      default:
        return text("404 page not found\n", 404);
    }
  },
});

// ---- the outbound HTTP proxy -----------------------------------------------

/** The loopback address a tailnet address maps to, or why it cannot be dialled (without dialling anything else). */
function route(hostPort: string): { target?: { host: string; port: number }; error?: string } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hostPort);
  if (!m) return { error: `dial tcp ${hostPort}: missing port in address` };
  const [, host, port] = m as unknown as [string, string, string];
  const peer =
    state === "Running"
      ? config.peers.find((p) => p.ip === host || p.hostName === host || host.startsWith(`${p.hostName}.`))
      : undefined;
  if (!peer) return { error: `dial tcp ${host}:${port}: not a tailnet peer (the simulator dials nothing else)` };
  if (peer.online === false) return { error: `dial tcp ${peer.ip}:${port}: i/o timeout` };
  if (Number(port) !== (peer.port ?? 7433)) return { error: `dial tcp ${peer.ip}:${port}: connect: connection refused` };
  const [th, tp] = peer.target.split(":");
  return { target: { host: th!, port: Number(tp) } };
}

const HOP_BY_HOP = ["connection", "proxy-connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];

const proxy = http.createServer((req, res) => {
  const uri = req.url ?? "";
  if (uri.startsWith("/") || uri === "*") {
    res.writeHead(400, { "Content-Type": "text/plain; charset=utf-8" }).end("bogus RequestURI; must be absolute URL or CONNECT\n");
    return;
  }
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    res.writeHead(400).end("bad request URI\n");
    return;
  }
  const { target, error } = route(url.host.includes(":") && !url.host.endsWith("]") ? url.host : `${url.host}:${url.port || 80}`);
  record({ event: "proxy", method: req.method, uri, allowed: target !== undefined });
  if (!target) {
    res.writeHead(502).end();
    logLine(`http: proxy error: ${error}`);
    return;
  }
  const headers: http.OutgoingHttpHeaders = { ...req.headers };
  for (const h of HOP_BY_HOP) delete headers[h];
  headers["x-forwarded-for"] = "127.0.0.1";
  const upstream = http.request({ host: target.host, port: target.port, method: req.method, path: url.pathname + url.search, headers }, (up) => {
    const out: http.OutgoingHttpHeaders = { ...up.headers };
    for (const h of HOP_BY_HOP) if (h !== "transfer-encoding") delete out[h];
    res.writeHead(up.statusCode ?? 502, out);
    up.pipe(res);
  });
  upstream.on("error", (err) => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy(err);
  });
  req.pipe(upstream);
});
proxy.on("connect", (req, client: net.Socket, head: Buffer) => {
  const { target, error } = route(req.url ?? "");
  record({ event: "proxy", method: "CONNECT", uri: req.url, allowed: target !== undefined });
  if (!target) {
    client.end(`HTTP/1.1 500 Internal Server Error\r\nTailscale-Connect-Error: ${error}\r\nContent-Length: 0\r\n\r\n`);
    return;
  }
  const upstream = net.connect(target.port, target.host, () => {
    client.write("HTTP/1.1 200 OK\r\n\r\n");
    if (head.length) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
  });
  const close = () => (upstream.destroy(), client.destroy());
  upstream.on("error", () => {
    if (!client.writableEnded) client.end(`HTTP/1.1 500 Internal Server Error\r\nTailscale-Connect-Error: dial failed\r\nContent-Length: 0\r\n\r\n`);
  });
  client.on("error", close);
});

const listen = flags.get("outbound-http-proxy-listen");
if (listen) {
  const [lh, lp] = listen.split(":");
  await new Promise<void>((resolve) => proxy.listen(Number(lp), lh, resolve));
  logLine(`HTTP proxy listening on ${lh}:${(proxy.address() as net.AddressInfo).port}`);
}

// SIGINT/SIGTERM: Shutdown, with the best-effort logout of an ephemeral (mem:) node. SIGHUP is not handled.
const shutdown = (signal: string) => {
  record({ event: "signal", signal });
  if (ephemeral) logout("shutdown");
  void localApi.stop(true);
  proxy.close();
  rmSync(socketPath, { force: true });
  record({ event: "exit" });
  process.exit(0);
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
