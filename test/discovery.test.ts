import { afterEach, describe, expect, test } from "bun:test";
import { rejection, thrown } from "./helpers/errors.ts";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import {
  discoverPeers,
  discoverTailscale,
  parsePeerList,
  parsePeerSpec,
  readPeersFile,
  resolvePeers,
} from "../src/mesh/discovery.ts";
import { startFakeLocalApi, tailscaleStatus, type FakeLocalApi, type FakePeer } from "./sim/localapi.ts";

const cleanups: (() => void)[] = [];
afterEach(() => {
  while (cleanups.length) cleanups.pop()!();
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "nara-discovery-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function fakeTailnet(peers: FakePeer[], opts: { selfHost?: string; failWith?: number; backendState?: string } = {}): FakeLocalApi {
  const api = startFakeLocalApi({
    status: tailscaleStatus({ self: { HostName: opts.selfHost ?? "nara-backup-q9w8" }, peers, backendState: opts.backendState }),
    failWith: opts.failWith,
  });
  cleanups.push(() => api.stop());
  return api;
}

describe("static peers", () => {
  test("name=host:port, default port, bracketed IPv6", () => {
    expect(parsePeerSpec("alice=100.64.0.2:7433")).toEqual({
      name: "alice",
      host: "100.64.0.2",
      port: 7433,
      url: "http://100.64.0.2:7433",
      source: "static",
    });
    expect(parsePeerSpec("bob=100.64.0.3")).toMatchObject({ host: "100.64.0.3", port: 7433, url: "http://100.64.0.3:7433" });
    expect(parsePeerSpec("carol=[::1]:8000")).toMatchObject({ host: "::1", port: 8000, url: "http://[::1]:8000" });
    expect(parsePeerSpec(" dave = [fd7a:115c:a1e0::5] ")).toMatchObject({ name: "dave", host: "fd7a:115c:a1e0::5", port: 7433 });
    expect(parsePeerSpec("erin=nara.example:80")).toMatchObject({ host: "nara.example", port: 80 });
  });

  test.each([
    ["alice", "missing name="],
    ["=1.2.3.4", "empty name"],
    ["alice=", "empty address"],
    ["alice=1.2.3.4:0", "port"],
    ["alice=1.2.3.4:70000", "port"],
    ["alice=1.2.3.4:x", "port"],
    ["alice=fd7a::1", "brackets"],
    ["alice=[::1", "unclosed"],
    ["al ice=1.2.3.4", "name"],
    ["alice=http://1.2.3.4", "not a URL"],
    ["alice=a/b", "host"],
  ])("%p is a usage error naming the entry", (spec, why) => {
    const err = thrown(() => parsePeerSpec(spec));
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.message).toContain(`"${spec}"`);
    expect(err.message).toContain(why);
    expect(err.hint).toContain("name=host");
  });

  test("a comma list, ignoring empty entries", () => {
    const peers = parsePeerList("a=127.0.0.1:1, b=h,,");
    expect(peers.map((p) => [p.name, p.host, p.port])).toEqual([
      ["a", "127.0.0.1", 1],
      ["b", "h", 7433],
    ]);
    expect(thrown(() => parsePeerList("a=1.2.3.4,oops")).message).toContain('"oops"');
  });

  test("a peers file with comments and blank lines", () => {
    const path = join(tempDir(), "peers.txt");
    writeFileSync(path, "# the mesh\n\nalice=100.64.0.2:7433\n  bob=100.64.0.3   # trailing comment\r\n\n");
    expect(readPeersFile(path).map((p) => [p.name, p.url, p.source])).toEqual([
      ["alice", "http://100.64.0.2:7433", "file"],
      ["bob", "http://100.64.0.3:7433", "file"],
    ]);
  });

  test("a bad line in a peers file names its line number", () => {
    const path = join(tempDir(), "peers.txt");
    writeFileSync(path, "# header\nalice=100.64.0.2\n\nbob=100.64.0.3:99999\n");
    const err = thrown(() => readPeersFile(path));
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.message).toStartWith(`${path}:4: `);
    expect(err.message).toContain("bob=100.64.0.3:99999");
  });

  test("a missing peers file is a usage error", () => {
    const err = thrown(() => readPeersFile(join(tempDir(), "nope.txt")));
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.message).toContain("no such file");
  });

  test("file and --peers merge; --peers wins for a name in both; Tailscale is not asked", async () => {
    const path = join(tempDir(), "peers.txt");
    writeFileSync(path, "alice=10.0.0.1\nbob=10.0.0.2\n");
    const found = await discoverPeers({
      peers: "bob=10.0.0.9:1234,carol=10.0.0.3",
      peersFile: path,
      socket: "/nonexistent/tailscaled.sock",
    });
    expect(found.via).toBe("static");
    expect(found.peers.map((p) => `${p.name}@${p.host}:${p.port}/${p.source}`)).toEqual([
      "alice@10.0.0.1:7433/file",
      "bob@10.0.0.9:1234/static",
      "carol@10.0.0.3:7433/static",
    ]);
  });

  test("an empty static list is noPeers, never an empty backup", async () => {
    const err = await rejection(resolvePeers({ peers: " , " }));
    expect(err.exitCode).toBe(ExitCode.noPeers);
    expect(err.hint).toBeTruthy();
  });
});

describe("Tailscale discovery through the LocalAPI", () => {
  test("strips the hostname suffix and uses the first IPv4 at port 7433", async () => {
    const api = fakeTailnet([{ hostName: "blue-jay-x7k2" }, { hostName: "alice-a1b2", ips: ["fd7a:115c:a1e0::7", "100.64.0.77"] }]);
    const { peers, skipped } = await discoverTailscale({ socket: api.socketPath });
    expect(peers).toEqual([
      { name: "alice", host: "100.64.0.77", port: 7433, url: "http://100.64.0.77:7433", source: "tailscale" },
      { name: "blue-jay", host: "100.64.0.2", port: 7433, url: "http://100.64.0.2:7433", source: "tailscale" },
    ]);
    expect(skipped).toEqual([]);
    expect(api.requests).toBe(1);
  });

  test("skips backup tools and Self; reports offline, no-IP and IPv6-only peers; includes the nara we act as", async () => {
    const api = fakeTailnet(
      [
        { hostName: "alice-a1b2" },
        { hostName: "nara-backup-zz11" },
        { hostName: "bob-b2c3", online: false },
        { hostName: "carol-c3d4", ips: [] },
        { hostName: "dave-d4e5", ips: ["fd7a:115c:a1e0::d"] },
        { hostName: "erin-e5f6" },
        { hostName: "laptop" },
        { hostName: "nara-backup-q9w8" },
      ],
      { selfHost: "nara-backup-q9w8" },
    );
    const { peers, skipped } = await discoverTailscale({ socket: api.socketPath });
    // erin is the nara a backup acts as (--name erin): its own node answers and holds the longest history.
    expect(peers.map((p) => p.name)).toEqual(["alice", "erin"]);
    const reasons = Object.fromEntries(skipped.map((s) => [s.name, s.reason]));
    expect(Object.keys(reasons).sort()).toEqual(["bob", "carol", "dave", "laptop"]);
    expect(reasons.bob).toBe("offline");
    expect(reasons.carol).toContain("no Tailscale IP");
    expect(reasons.dave).toContain("no IPv4");
    expect(reasons.dave).toContain("fd7a:115c:a1e0::d");
    expect(reasons.laptop).toContain("not a nara");
  });

  test("two online nodes with one name: the first is used, the other reported", async () => {
    const api = fakeTailnet([{ hostName: "alice-a1b2" }, { hostName: "alice-z9y8" }]);
    const { peers, skipped } = await discoverTailscale({ socket: api.socketPath });
    expect(peers.map((p) => p.host)).toEqual(["100.64.0.2"]);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]!.reason).toContain("second node");
  });

  test("a missing socket is an error with a hint", async () => {
    const socket = join(tempDir(), "tailscaled.sock");
    const err = await rejection(discoverTailscale({ socket }));
    expect(err.message).toBe(`cannot reach tailscaled at ${socket}: no such socket`);
    expect(err.hint).toContain("tailscaled running");
    expect(err.hint).toContain("--peers");
    expect(err.exitCode).toBe(ExitCode.noPeers);
  });

  test("a non-200 answer is an error with the status", async () => {
    const api = fakeTailnet([{ hostName: "alice-a1b2" }], { failWith: 403 });
    const err = await rejection(discoverTailscale({ socket: api.socketPath }));
    expect(err.message).toContain("HTTP 403");
    expect(err.hint).toContain("--peers");
  });

  test("a tailnet that is not running is an error, not an empty list", async () => {
    const api = fakeTailnet([], { backendState: "NeedsLogin" });
    const err = await rejection(discoverTailscale({ socket: api.socketPath }));
    expect(err.message).toContain("NeedsLogin");
  });

  test("resolvePeers uses Tailscale without a static list and refuses an empty result", async () => {
    const ok = fakeTailnet([{ hostName: "alice-a1b2" }]);
    const found = await resolvePeers({ socket: ok.socketPath });
    expect(found.via).toBe("tailscale");
    expect(found.peers.map((p) => p.name)).toEqual(["alice"]);

    const empty = fakeTailnet([{ hostName: "bob-b2c3", online: false }, { hostName: "nara-backup-aaaa" }]);
    const err = await rejection(resolvePeers({ socket: empty.socketPath }));
    expect(err.exitCode).toBe(ExitCode.noPeers);
    expect(err.message).toContain("bob: offline");
    expect(err.hint).toContain("--peers");
  });

  test("resolvePeers tells of each skipped peer before it refuses an empty result", async () => {
    const empty = fakeTailnet([{ hostName: "bob-b2c3", online: false }, { hostName: "carol-c3d4", online: false }]);
    const heard: string[] = [];
    const err = await rejection(resolvePeers({ socket: empty.socketPath }, undefined, (s) => heard.push(`${s.name}: ${s.reason}`)));
    expect(err.exitCode).toBe(ExitCode.noPeers);
    expect(heard).toEqual(["bob: offline", "carol: offline"]);
  });
});
