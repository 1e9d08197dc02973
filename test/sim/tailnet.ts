/**
 * A simulated nara tailnet for the CLI's --login-server: writes the world of
 * the simulated tailscaled (tailscaled.ts) and an executable wrapper to pass
 * as --tailscaled, which execs it with this very bun (whatever PATH is).
 *
 *   const net = simTailnet({ mesh, keys: { "hskey-good": "valid" } });
 *   // nara-backup dump-events --login-server net.controlUrl --tailscaled net.bin
 *   //   with NARA_MESH_AUTH_KEY=hskey-good
 *   net.records("logout"); net.cleanup();
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { SimMesh } from "./mesh.ts";
import type { SimKeyState, SimTailnetPeer, SimTailscaledConfig } from "./tailscaled.ts";

export type SimTailnet = {
  /** The --tailscaled to pass. */
  bin: string;
  controlUrl: string;
  /** Tailnet IP of each peer, by nara name. */
  ips: Record<string, string>;
  /** What the daemon saw, in order; `event` filters. */
  records(event?: string): Record<string, any>[];
  /** Removes the wrapper, config and record. */
  cleanup(): void;
};

const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function simTailnet(opts: {
  mesh: SimMesh;
  keys: Record<string, SimKeyState>;
  controlUrl?: string;
  derp?: boolean;
  /** More tailnet nodes (another backup tool, a laptop, an offline nara). */
  extras?: SimTailnetPeer[];
}): SimTailnet {
  const dir = mkdtempSync(join(tmpdir(), "nara-tailnet-"));
  const controlUrl = opts.controlUrl ?? "https://headscale.nara.test";
  const ips: Record<string, string> = {};
  const peers: SimTailnetPeer[] = opts.mesh.peers.map((p, i) => {
    ips[p.name] = `100.64.0.${10 + i}`;
    const suffix = createHash("sha256").update(p.name).digest("hex").slice(0, 4);
    return { hostName: `${p.name}-${suffix}`, ip: ips[p.name]!, target: `${p.hostname}:${p.port}` };
  });
  const config: SimTailscaledConfig = {
    controlUrl,
    keys: opts.keys,
    peers: [...peers, ...(opts.extras ?? [])],
    derp: opts.derp,
    record: join(dir, "record.jsonl"),
  };
  const configPath = join(dir, "config.json");
  writeFileSync(configPath, JSON.stringify(config));
  const bin = join(dir, "tailscaled");
  writeFileSync(bin, `#!/bin/sh\nNARA_SIM_TAILSCALED=${sq(configPath)} exec ${sq(process.execPath)} ${sq(join(import.meta.dir, "tailscaled.ts"))} "$@"\n`);
  chmodSync(bin, 0o755);
  return {
    bin,
    controlUrl,
    ips,
    records(event) {
      if (!existsSync(config.record)) return [];
      const all = readFileSync(config.record, "utf8")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, any>);
      return event === undefined ? all : all.filter((r) => r.event === event);
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Is a process with this pid still there? */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
