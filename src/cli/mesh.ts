/**
 * The flags that join the nara mesh (or send peer requests through a proxy
 * the user runs), and the wrapper that joins before a command's work and
 * leaves after it, whatever way the command ends.
 */
import type { ArgsDef } from "citty";
import { ExitCode, usageError } from "../errors.ts";
import { parseDuration } from "./args.ts";
import type { Log } from "./log.ts";
import { AUTH_KEY_ENV, joinMesh, leaveAll, readAuthKey, type MeshSession } from "../mesh/join.ts";

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

/**
 * Runs `work` with the mesh joined when --login-server asks for it, and
 * leaves it after: on success, failure, an exception, and (with
 * `exitOnSignal`) on SIGINT/SIGTERM, then exiting 130/143. Commands with
 * their own graceful first Ctrl-C pass false: they return, and this leaves.
 */
export async function withMesh<T>(
  args: MeshArgs,
  log: Log,
  work: (mesh: MeshContext) => Promise<T>,
  opts: { exitOnSignal: boolean } = { exitOnSignal: true },
): Promise<T> {
  const checked = checkMeshArgs(args);
  if (checked.loginServer === undefined) return work({ proxy: checked.proxy });
  const onSignal = (signal: NodeJS.Signals) => {
    log.warn(`${signal}: leaving the nara mesh`);
    void leaveAll().finally(() => process.exit(signal === "SIGINT" ? ExitCode.interrupted : 143));
  };
  if (opts.exitOnSignal) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  try {
    const session = await joinMesh({
      loginServer: checked.loginServer,
      authKey: checked.authKey!,
      tailscaled: args.tailscaled,
      timeoutMs: checked.timeoutMs,
      log: { info: (m) => log.info(m), debug: (m) => log.debug(m) },
    });
    try {
      return await work({ session, proxy: session.proxyUrl });
    } finally {
      await session.leave();
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** The `--json` record of the join: never the key. */
export const meshJson = (mesh: MeshContext, peers: string[]) =>
  mesh.session ? { loginServer: mesh.session.loginServer, hostname: mesh.session.hostname, peersSeen: peers } : null;
