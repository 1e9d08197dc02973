/**
 * The flags that join the nara mesh (or send peer requests through a proxy
 * the user runs), and the wrapper that joins before a command's work and
 * leaves after it, whatever way the command ends.
 */
import type { ArgsDef } from "citty";
import { ExitCode, NaraError, usageError } from "../errors.ts";
import { parseDuration } from "./args.ts";
import { onInterrupt, signalExitCode } from "./signals.ts";
import type { Log } from "./log.ts";
import { AUTH_KEY_ENV, joinMesh, leaveAll, readAuthKey, type MeshSession } from "../mesh/join.ts";
import { peerIps } from "../mesh/localapi.ts";

export const meshArgs = {
  "login-server": {
    type: "string",
    description: `join the nara mesh through this Headscale as a private, ephemeral node (key: ${AUTH_KEY_ENV} or --auth-key-file)`,
    valueHint: "url",
  },
  "auth-key-file": { type: "string", description: "file holding only the Headscale pre-auth key", valueHint: "path" },
  tailscaled: { type: "string", description: "the tailscaled to run (default: on PATH, /usr/sbin, /usr/local/bin, Homebrew)", valueHint: "path" },
  "mesh-timeout": { type: "string", default: "60s", description: "time allowed to join the mesh", valueHint: "duration" },
  proxy: {
    type: "string",
    description: "send peer requests through this HTTP proxy (e.g. your own userspace tailscaled's), http://127.0.0.1:PORT",
    valueHint: "url",
  },
} as const satisfies ArgsDef;

export type MeshArgs = {
  "login-server"?: string;
  "auth-key-file"?: string;
  tailscaled?: string;
  "mesh-timeout"?: string;
  proxy?: string;
  peers?: string;
  "peers-file"?: string;
};

/** What a command learns from the mesh flags: the session (if it joined) and the proxy for peer requests. */
export type MeshContext = { session?: MeshSession; proxy?: string };

function parseUrl(value: string, flag: string, schemes: string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError(`${flag}: "${value}" is not a URL`, `e.g. ${schemes[0]}://host:port`);
  }
  if (!schemes.includes(url.protocol.slice(0, -1))) throw usageError(`${flag}: ${url.protocol} is not ${schemes.join(" or ")}`);
  return value.replace(/\/+$/, "");
}

/** Checks the mesh flags before any work (the key is read here: a missing key fails fast). */
export function checkMeshArgs(args: MeshArgs): { loginServer?: string; authKey?: string; timeoutMs: number; proxy?: string } {
  const timeoutMs = parseDuration(args["mesh-timeout"] ?? "60s", "--mesh-timeout");
  if (timeoutMs <= 0) throw usageError("--mesh-timeout must be more than 0");
  const proxy = args.proxy === undefined ? undefined : parseUrl(args.proxy, "--proxy", ["http"]);
  if (args["login-server"] === undefined) {
    for (const flag of ["auth-key-file", "tailscaled"] as const) {
      if (args[flag] !== undefined) throw usageError(`--${flag} is for joining the mesh: it needs --login-server`);
    }
    return { timeoutMs, proxy };
  }
  if (proxy !== undefined) throw usageError("--proxy and --login-server contradict each other", "the joined mesh has its own proxy: pass one of them");
  if (args.peers !== undefined || args["peers-file"] !== undefined) {
    throw usageError("--login-server finds the peers on the nara mesh itself", "drop --peers/--peers-file, or drop --login-server");
  }
  const loginServer = parseUrl(args["login-server"], "--login-server", ["https", "http"]);
  return { loginServer, authKey: readAuthKey(args["auth-key-file"]), timeoutMs };
}

/** What openMesh gives: the context, and leaving the mesh when disposed (`await using`). */
export type OpenMesh = MeshContext & AsyncDisposable;

/**
 * Joins the mesh when --login-server asks for it; disposing the result
 * leaves it (logout, stop, temp dir removed) on success, failure or an
 * exception. With `exitOnSignal`, SIGINT/SIGTERM also leave it, then exit
 * 130/143; commands with their own graceful first Ctrl-C pass false: they
 * return, and disposing leaves.
 */
export async function openMesh(args: MeshArgs, log: Log, opts: { exitOnSignal: boolean } = { exitOnSignal: true }): Promise<OpenMesh> {
  const checked = checkMeshArgs(args);
  if (checked.loginServer === undefined) return { proxy: checked.proxy, async [Symbol.asyncDispose]() {} };
  const onSignal = (signal: NodeJS.Signals) => {
    log.warn(`${signal}: leaving the nara mesh`);
    void leaveAll().finally(() => process.exit(signalExitCode(signal)));
  };
  const off = opts.exitOnSignal ? onInterrupt(onSignal) : () => {};
  try {
    const session = await joinMesh({
      loginServer: checked.loginServer,
      authKey: checked.authKey!,
      tailscaled: args.tailscaled,
      timeoutMs: checked.timeoutMs,
      log: { info: (m) => log.info(m), debug: (m) => log.debug(m) },
    });
    return {
      session,
      proxy: session.proxyUrl,
      async [Symbol.asyncDispose]() {
        try {
          await session.leave();
        } finally {
          off();
        }
      },
    };
  } catch (err) {
    off();
    throw err;
  }
}

/** `work` between openMesh and leaving it. */
export async function withMesh<T>(args: MeshArgs, log: Log, work: (mesh: MeshContext) => Promise<T>): Promise<T> {
  await using mesh = await openMesh(args, log);
  return await work(mesh);
}

/** fetch through the context's proxy, when there is one (set explicitly: HTTP_PROXY cannot redirect it). */
export const meshFetch = (mesh: MeshContext): typeof fetch | undefined =>
  mesh.proxy === undefined ? undefined : (((url, init) => fetch(url, { ...init, proxy: mesh.proxy })) as typeof fetch);

/** The `--json` record of the join: never the key. */
export const meshJson = (mesh: MeshContext, peers: string[]) =>
  mesh.session ? { loginServer: mesh.session.loginServer, hostname: mesh.session.hostname, peersSeen: peers } : null;

/** With a joined mesh, a URL must name one of its peers by tailnet IP: nothing else goes through its proxy. */
export async function checkTailnetUrl(mesh: MeshContext, url: string, flag: string): Promise<void> {
  if (!mesh.session) return;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, "");
  const ips = await peerIps(mesh.session.socket);
  if (!ips.has(host)) {
    throw new NaraError(`${flag}: ${host} is not a peer on the nara mesh`, {
      hint: "give the nara's tailnet IP (`nara-backup peers --login-server …` lists them), e.g. http://100.64.0.5:8080",
      exitCode: ExitCode.noPeers,
    });
  }
}
