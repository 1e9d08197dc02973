/**
 * Joining the nara tailnet as a private, ephemeral `nara-backup-<n>` node
 * (TAILSCALE.md §2): spawn, /start with the key, /login-interactive, wait for
 * Running; and leaving it on every way out: /logout, SIGTERM, SIGKILL after
 * 10 s, the temp dir removed.
 */
import { readFileSync, rmSync } from "node:fs";
import { randomInt } from "node:crypto";
import { ExitCode, NaraError, usageError, unreadableFile } from "../errors.ts";
import { daemonStatus, localApiPost, type DaemonStatus } from "./localapi.ts";
import { findTailscaled, spawnTailscaled, stopTailscaled, type Daemon } from "./tailscaled.ts";

export const AUTH_KEY_ENV = "NARA_MESH_AUTH_KEY";

export const KEY_HINT =
  "make a reusable, ephemeral key on the Headscale server: headscale preauthkeys create --user ID --reusable --ephemeral --expiration 24h";

/** The pre-auth key from NARA_MESH_AUTH_KEY or --auth-key-file: never from a flag value. */
export function readAuthKey(keyFile: string | undefined): string {
  let key: string;
  if (keyFile !== undefined) {
    try {
      key = readFileSync(keyFile, "utf8").trim();
    } catch (err) {
      throw unreadableFile(`--auth-key-file ${keyFile}`, err);
    }
    if (!key) throw usageError(`--auth-key-file ${keyFile} is empty`, KEY_HINT);
  } else {
    key = process.env[AUTH_KEY_ENV]?.trim() ?? "";
    if (!key) throw usageError(`--login-server needs a pre-auth key: set ${AUTH_KEY_ENV} or pass --auth-key-file FILE`, KEY_HINT);
  }
  if (/\s/.test(key)) throw usageError("the pre-auth key holds whitespace: the key file must hold only the key", KEY_HINT);
  return key;
}

export type JoinOptions = {
  loginServer: string;
  authKey: string;
  tailscaled?: string;
  /** Spawn to Running. */
  timeoutMs: number;
  /** Progress lines (the join, connected) and the details (--verbose). */
  log?: { info(message: string): void; debug(message: string): void };
  /** Grace between SIGTERM and SIGKILL (default 10 s). */
  killAfterMs?: number;
};

export type MeshSession = {
  loginServer: string;
  hostname: string;
  /** The daemon's LocalAPI socket: discovery reads its peers there. */
  socket: string;
  /** Its HTTP proxy: every peer request goes through it. */
  proxyUrl: string;
  /** Set once the daemon has ended before leave() was asked. */
  died(): string | undefined;
  /** Idempotent; never throws. */
  leave(): Promise<void>;
};

/** Live daemons and how to leave each: the exit backstop stops them if a path out skipped leave(). */
const live = new Map<Daemon, () => Promise<void>>();
let backstop = false;

/** Leaves every joined mesh (a signal handler's teardown before it exits). */
export const leaveAll = (): Promise<unknown> => Promise.all([...live.values()].map((leave) => leave()));

function installBackstop(): void {
  if (backstop) return;
  backstop = true;
  process.on("exit", () => {
    // Synchronous: no logout possible here, but the daemon is not left running (an ephemeral node logs out on SIGTERM itself).
    for (const d of live.keys()) {
      try {
        d.proc.kill("SIGTERM");
      } catch {}
      rmSync(d.dir, { recursive: true, force: true });
    }
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function joinMesh(opts: JoinOptions): Promise<MeshSession> {
  const { info, debug: log } = opts.log ?? { info: () => {}, debug: () => {} };
  const bin = findTailscaled(opts.tailscaled);
  const hostname = `nara-backup-${randomInt(100, 100_000)}`;
  const deadline = Date.now() + opts.timeoutMs;
  const redact = (s: string) => s.split(opts.authKey).join("<auth key>");
  info(`joining the nara mesh as ${hostname} …`);
  log(`login server ${opts.loginServer}, tailscaled ${bin}`);
  installBackstop();
  const daemon = await spawnTailscaled(bin, opts.timeoutMs);
  let died: string | undefined;
  let leaving: Promise<void> | undefined;
  void daemon.exited.then((how) => {
    if (!leaving) died = how;
  });
  const session: MeshSession = {
    loginServer: opts.loginServer,
    hostname,
    socket: daemon.socket,
    proxyUrl: daemon.proxyUrl,
    died: () => died,
    leave() {
      leaving ??= (async () => {
        if (died === undefined) {
          try {
            await localApiPost(daemon.socket, "logout", undefined, 5000);
            log(`logged ${hostname} out`);
          } catch (err) {
            log(`logout of ${hostname} failed: ${redact((err as Error).message)}`);
          }
        }
        await stopTailscaled(daemon.proc, opts.killAfterMs ?? 10_000);
        live.delete(daemon);
        rmSync(daemon.dir, { recursive: true, force: true });
        log(`stopped tailscaled (${await daemon.exited})`);
      })();
      return leaving;
    },
  };
  live.set(daemon, session.leave);
  try {
    log(`tailscaled is up, its proxy at ${daemon.proxyUrl}`);
    const remaining = () => Math.max(1, deadline - Date.now());
    await localApiPost(
      daemon.socket,
      "start",
      {
        AuthKey: opts.authKey,
        // Omitted prefs become Go zero values, not tailscale's defaults: say each one that matters.
        UpdatePrefs: { ControlURL: opts.loginServer, Hostname: hostname, WantRunning: true, ShieldsUp: true, CorpDNS: false, RouteAll: false },
      },
      remaining(),
    );
    // A fresh mem: node stays in NeedsLogin without it; with AuthKey set no browser is involved.
    await localApiPost(daemon.socket, "login-interactive", undefined, remaining());
    await waitRunning(daemon, opts, deadline, () => died);
    log(`${hostname} is on the nara mesh`);
    return session;
  } catch (err) {
    await session.leave();
    if (err instanceof NaraError) throw new NaraError(redact(err.message), { hint: err.hint, exitCode: err.exitCode });
    throw new NaraError(`joining the nara mesh failed: ${redact((err as Error).message)}`, {
      hint: "see --verbose; or list the peers yourself with --peers",
      exitCode: ExitCode.noPeers,
    });
  }
}

/** 401 texts of Headscale's key checks: final, no retry makes them pass. */
const KEY_ERROR = /invalid pre auth key|authkey (expired|already used|revoked)|http 401/i;

async function waitRunning(daemon: Daemon, opts: JoinOptions, deadline: number, died: () => string | undefined): Promise<void> {
  let status: DaemonStatus = {};
  for (let pause = 50; ; pause = Math.min(500, pause * 2)) {
    const how = died();
    if (how) {
      throw new NaraError(`tailscaled ${how} while joining`, {
        hint: "run it by hand to see why; tailscale 1.80 or newer is needed for Headscale",
        exitCode: ExitCode.noPeers,
      });
    }
    status = await daemonStatus(daemon.socket, false, Math.max(1, deadline - Date.now()));
    if (status.BackendState === "Running") return;
    const health = (status.Health ?? []).join("; ");
    if (status.AuthURL) {
      throw new NaraError(`the control server at ${opts.loginServer} asks for an interactive login: the pre-auth key was not used`, {
        hint: KEY_HINT,
        exitCode: ExitCode.noPeers,
      });
    }
    if (KEY_ERROR.test(health)) {
      throw new NaraError(`the nara mesh refused the pre-auth key: ${health}`, { hint: KEY_HINT, exitCode: ExitCode.noPeers });
    }
    if (Date.now() + pause >= deadline) break;
    await sleep(pause);
  }
  throw timeoutError(status, opts);
}

function timeoutError(status: DaemonStatus, opts: JoinOptions): NaraError {
  const secs = Math.round(opts.timeoutMs / 1000);
  const health = (status.Health ?? []).join("; ");
  const state = status.BackendState ?? "unknown";
  if (/fetch control key/i.test(health)) {
    return new NaraError(`cannot reach the control server ${opts.loginServer} within ${secs} s: ${health}`, {
      hint: "check --login-server: the nara Headscale's URL (https://…), reachable from this machine",
      exitCode: ExitCode.noPeers,
    });
  }
  if (state === "Starting") {
    return new NaraError(`stuck in Starting for ${secs} s: no DERP relay reachable${health ? ` (${health})` : ""}`, {
      hint: "check the derp: section of Headscale's config and that this machine can reach a DERP server; or raise --mesh-timeout",
      exitCode: ExitCode.noPeers,
    });
  }
  return new NaraError(`not connected to the nara mesh within ${secs} s (state ${state}${health ? `: ${health}` : ""})`, {
    hint: "raise --mesh-timeout, check --login-server and the key; or list the peers with --peers",
    exitCode: ExitCode.noPeers,
  });
}
