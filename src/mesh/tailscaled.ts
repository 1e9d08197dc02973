/**
 * The user's installed tailscaled, run as a private userspace node
 * (TAILSCALE.md §1): no root, no TUN, in-memory state, its own socket and
 * logs in a 0700 temp dir, an HTTP proxy on a loopback port it picks.
 */
import { accessSync, constants, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ExitCode, NaraError } from "../errors.ts";

/** Where packages put it when it is not on PATH (Debian/RPM, manual installs, Homebrew on Apple silicon and Intel). */
const INSTALL_PLACES = ["/usr/sbin/tailscaled", "/usr/local/sbin/tailscaled", "/usr/local/bin/tailscaled", "/opt/homebrew/bin/tailscaled", "/opt/homebrew/sbin/tailscaled"];

const INSTALL_HINT =
  "install Tailscale (https://tailscale.com/download; on macOS `brew install tailscale`: the GUI apps ship no tailscaled), pass --tailscaled PATH, or list the peers yourself with --peers name=host:port";

const isExecutable = (path: string): boolean => {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
};

/** --tailscaled PATH, else tailscaled on PATH, else the usual install places; missing is exit 5. */
export function findTailscaled(flag?: string): string {
  if (flag !== undefined) {
    if (isExecutable(flag)) return flag;
    throw new NaraError(`--tailscaled ${flag}: no such executable`, { hint: INSTALL_HINT, exitCode: ExitCode.noPeers });
  }
  const found = Bun.which("tailscaled") ?? INSTALL_PLACES.find(isExecutable);
  if (found) return found;
  throw new NaraError("tailscaled not found (on PATH, /usr/sbin, /usr/local/bin, Homebrew)", { hint: INSTALL_HINT, exitCode: ExitCode.noPeers });
}

export type Daemon = {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  /** The private temp dir (socket, state, logs). */
  dir: string;
  socket: string;
  /** http://127.0.0.1:N, from the daemon's stderr. */
  proxyUrl: string;
  /** How the daemon ended, once it has ("exited with code 1", "killed by SIGKILL"). */
  exited: Promise<string>;
  /** The last lines it wrote on stderr (the auth key never goes there: it travels in the /start body). */
  stderrTail(): string;
};

const PROXY_LINE = /HTTP proxy listening on (127\.0\.0\.1:\d+)/;
const TAIL_BYTES = 4096;

/**
 * Spawns the daemon and waits for its proxy line. Its own process group, so
 * that a Ctrl-C at the terminal reaches only us and we log out before it stops.
 */
export async function spawnTailscaled(bin: string, timeoutMs: number): Promise<Daemon> {
  // Short path: sun_path is 104 bytes on macOS. mkdtemp makes it 0700.
  const dir = mkdtempSync(join(process.platform === "darwin" ? "/tmp" : tmpdir(), "nb-"));
  try {
    mkdirSync(join(dir, "logs"), { mode: 0o700 });
    mkdirSync(join(dir, "state"), { mode: 0o700 });
    const socket = join(dir, "tsd.sock");
    const env: Record<string, string | undefined> = { ...process.env, TS_LOGS_DIR: join(dir, "logs") };
    // tailscaled's default --port reads PORT; --port=0 is given too, this keeps dev shells' PORT out entirely.
    delete env.PORT;
    const proc = Bun.spawn(
      [
        bin,
        "--tun=userspace-networking",
        "--state=mem:",
        `--statedir=${join(dir, "state")}`,
        `--socket=${socket}`,
        "--port=0",
        "--no-logs-no-support",
        "--outbound-http-proxy-listen=127.0.0.1:0",
      ],
      { env, stdin: "ignore", stdout: "ignore", stderr: "pipe", detached: true },
    );
    const exited = proc.exited.then(() =>
      proc.signalCode ? `killed by ${proc.signalCode}` : `exited with code ${proc.exitCode}`,
    );
    let tail = "";
    let onLine: ((port: string) => void) | undefined;
    // Drained to the end: a full pipe would block the daemon.
    void (async () => {
      const decoder = new TextDecoder();
      let found = false;
      for await (const chunk of proc.stderr) {
        tail = (tail + decoder.decode(chunk, { stream: true })).slice(-TAIL_BYTES);
        const m = found ? null : PROXY_LINE.exec(tail);
        if (m) {
          found = true;
          onLine?.(m[1]!);
        }
      }
    })().catch(() => {});
    const address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "HTTP proxy listening on" line within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      onLine = (a) => {
        clearTimeout(timer);
        resolve(a);
      };
      void exited.then((how) => {
        clearTimeout(timer);
        reject(new Error(`tailscaled ${how} at start`));
      });
    }).catch(async (err: Error) => {
      await stopTailscaled(proc, 2000);
      const lastLines = tail.trim().split("\n").slice(-3).join(" | ");
      throw new NaraError(`cannot start ${bin}: ${err.message}${lastLines ? ` (it said: ${lastLines})` : ""}`, {
        hint: "run it by hand with the same flags (see --verbose) to see why; tailscale 1.80 or newer is needed for Headscale",
        exitCode: ExitCode.noPeers,
      });
    });
    return { proc, dir, socket, proxyUrl: `http://${address}`, exited, stderrTail: () => tail };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** SIGTERM, then SIGKILL if it is still running after `graceMs`; resolves once it is gone. */
export async function stopTailscaled(proc: Subprocess, graceMs = 10_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      proc.kill("SIGKILL");
      resolve();
    }, graceMs);
  });
  await Promise.race([proc.exited, killed]);
  clearTimeout(timer);
  await proc.exited;
}
