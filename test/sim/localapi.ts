/**
 * A fake tailscaled LocalAPI on a unix socket, answering GET
 * /localapi/v0/status in the shape tailscaled really uses (ipnstate.Status).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";

export type FakePeer = {
  hostName: string;
  /** Default: a fresh 100.64.0.x plus its fd7a:115c:a1e0:: twin. `[]` = no IPs. */
  ips?: string[];
  online?: boolean;
  os?: string;
};

export type FakeSelf = { HostName: string; TailscaleIPs?: string[]; Online?: boolean };

const MAGIC_DNS_SUFFIX = "mesh.nara.test";
const hex = (seed: string, len: number): string => createHash("sha256").update(seed).digest("hex").slice(0, len);
const CREATED = "2025-11-02T10:04:05.123456789Z";

function node(id: number, hostName: string, ips: string[], online: boolean, os: string, isSelf: boolean) {
  return {
    ID: `n${hex(`id:${hostName}`, 12)}CNTRL`,
    PublicKey: `nodekey:${hex(`node:${hostName}`, 64)}`,
    HostName: hostName,
    DNSName: `${hostName}.${MAGIC_DNS_SUFFIX}.`,
    OS: os,
    UserID: 1,
    TailscaleIPs: ips,
    AllowedIPs: ips.map((ip) => (ip.includes(":") ? `${ip}/128` : `${ip}/32`)),
    Addrs: isSelf ? null : [`192.0.2.${id}:41641`],
    CurAddr: "",
    Relay: "fra",
    RxBytes: isSelf ? 0 : 1024 * id,
    TxBytes: isSelf ? 0 : 2048 * id,
    Created: CREATED,
    LastWrite: online ? "2026-01-01T00:00:00Z" : "0001-01-01T00:00:00Z",
    LastSeen: online ? "2026-01-01T00:00:00Z" : "2025-12-24T08:00:00Z",
    LastHandshake: online ? "2026-01-01T00:00:00Z" : "0001-01-01T00:00:00Z",
    Online: online,
    ExitNode: false,
    ExitNodeOption: false,
    Active: online && !isSelf,
    PeerAPIURL: ips.map((ip) => (ip.includes(":") ? `http://[${ip}]:58021` : `http://${ip}:58021`)),
    InNetworkMap: true,
    InMagicSock: !isSelf,
    InEngine: !isSelf,
    KeyExpiry: "2026-06-30T00:00:00Z",
  };
}

/** A realistic status object: Self, a Peer map keyed by node key, users, DNS suffix. */
export function tailscaleStatus(opts: { self: FakeSelf; peers: FakePeer[]; backendState?: string }) {
  const selfIps = opts.self.TailscaleIPs ?? ["100.64.0.1", "fd7a:115c:a1e0::1"];
  const self = node(1, opts.self.HostName, selfIps, opts.self.Online ?? true, "linux", true);
  const peerMap: Record<string, ReturnType<typeof node>> = {};
  opts.peers.forEach((p, i) => {
    const n = i + 2;
    const ips = p.ips ?? [`100.64.0.${n}`, `fd7a:115c:a1e0::${n.toString(16)}`];
    const entry = node(n, p.hostName, ips, p.online ?? true, p.os ?? "linux", false);
    peerMap[entry.PublicKey] = entry;
  });
  return {
    Version: "1.78.1-t0a1b2c3d4-g5e6f7a8b9",
    TUN: true,
    BackendState: opts.backendState ?? "Running",
    HaveNodeKey: true,
    AuthURL: "",
    TailscaleIPs: selfIps,
    Self: self,
    Health: null,
    MagicDNSSuffix: MAGIC_DNS_SUFFIX,
    CurrentTailnet: { Name: "naras", MagicDNSSuffix: MAGIC_DNS_SUFFIX, MagicDNSEnabled: true },
    CertDomains: null,
    Peer: peerMap,
    User: {
      "1": { ID: 1, LoginName: "naras", DisplayName: "naras", ProfilePicURL: "" },
    },
    ClientVersion: null,
  };
}

export type FakeLocalApi = { socketPath: string; requests: number; stop(): void };

export function startFakeLocalApi(opts: {
  socketPath?: string;
  status: object | (() => object);
  failWith?: number;
}): FakeLocalApi {
  const dir = opts.socketPath === undefined ? mkdtempSync(join(tmpdir(), "nara-localapi-")) : undefined;
  const socketPath = opts.socketPath ?? join(dir!, "tailscaled.sock");
  const api: FakeLocalApi = {
    socketPath,
    requests: 0,
    stop() {
      server.stop(true);
      if (dir) rmSync(dir, { recursive: true, force: true });
      else rmSync(socketPath, { force: true });
    },
  };
  const server = Bun.serve({
    unix: socketPath,
    fetch(req) {
      api.requests++;
      const url = new URL(req.url);
      if (url.pathname !== "/localapi/v0/status") return new Response("404 page not found\n", { status: 404 });
      if (req.method !== "GET") return new Response("want GET\n", { status: 405 });
      if (opts.failWith !== undefined) {
        return new Response(`fake tailscaled: failing with ${opts.failWith}\n`, { status: opts.failWith });
      }
      const status = typeof opts.status === "function" ? opts.status() : opts.status;
      // tailscaled pretty-prints with a tab indent.
      return new Response(`${JSON.stringify(status, null, "\t")}\n`, {
        headers: { "Content-Type": "application/json" },
      });
    },
  });
  return api;
}
