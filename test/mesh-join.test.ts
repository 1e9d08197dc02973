/**
 * Joining the nara tailnet with --login-server, end to end: the CLI spawns the
 * simulated tailscaled (test/sim/tailscaled.ts) exactly as it spawns the real
 * one, and every peer request goes through that daemon's proxy.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { generateNaras } from "./sim/generate.ts";
import { startMesh, type MeshOptions, type SimMesh } from "./sim/mesh.ts";
import { alive, simTailnet, type SimTailnet } from "./sim/tailnet.ts";
import { joinMesh } from "../src/mesh/join.ts";

const root = join(import.meta.dir, "..");
const KEY = "hskey-auth-7f3c9a1e5b2d4f60";
const naras = generateNaras(3, 77);
/** We act as the first nara: discovery must include it. */
const me = naras[0]!;
let dir: string;
let mesh: SimMesh;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nara-mesh-join-"));
  mesh = await startMesh({ peers: naras, events: 900, seed: 77, overlap: 0.3, generate: { sharedTsRate: 0.3 }, client: { name: me.name, soul: me.soul } });
});
afterAll(async () => {
  await mesh.stop();
  rmSync(dir, { recursive: true, force: true });
});

type Run = { proc: ReturnType<typeof Bun.spawn>; stderrText: () => string; waitStderr(re: RegExp): Promise<void>; done: Promise<Result> };
type Result = { code: number; stdout: string; stderr: string };

function start(args: string[], env: Record<string, string> = {}): Run {
  const proc = Bun.spawn([process.execPath, join(root, "src/cli.ts"), ...args], {
    cwd: dir,
    // A dead HTTP_PROXY: peer requests must go through the daemon's proxy anyway.
    env: { PATH: process.env.PATH ?? "", NARA_SOUL: me.soul, NARA_MESH_AUTH_KEY: KEY, HTTP_PROXY: "http://127.0.0.1:9", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  let stderr = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      stderr += decoder.decode(chunk, { stream: true });
      for (const w of waiters.filter((w) => w.re.test(stderr))) w.resolve();
    }
  })();
  const done = Promise.all([new Response(proc.stdout as ReadableStream).text(), proc.exited, reading]).then(([stdout, code]) => ({ code, stdout, stderr }));
  return {
    proc,
    stderrText: () => stderr,
    waitStderr: (re) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(stderr)) return resolve();
        waiters.push({ re, resolve });
        void done.then(() => reject(new Error(`the CLI ended before ${re}: ${stderr}`)));
      }),
    done,
  };
}

const cli = (args: string[], env?: Record<string, string>) => start(args, env).done;

const join_ = (net: SimTailnet, extra: string[] = []) => ["--login-server", net.controlUrl, "--tailscaled", net.bin, "--mesh-timeout", "20s", ...extra];

function expected(m: SimMesh): string {
  const sorted = [...m.allEvents].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1));
  return sorted.map((e) => `${e.raw}\n`).join("");
}

/** Every daemon spawned is gone, and so is its private dir; the key was never on its command line. */
function expectNothingLeft(net: SimTailnet, spawns = 1): void {
  const records = net.records("spawn");
  expect(records).toHaveLength(spawns);
  for (const r of records) {
    expect(alive(r.pid)).toBe(false);
    const socket = (r.argv as string[]).find((a) => a.startsWith("--socket="))!.slice("--socket=".length);
    expect(existsSync(dirname(socket))).toBe(false);
    expect(JSON.stringify(r)).not.toContain(KEY);
  }
}

const events = (net: SimTailnet) => net.records().map((r) => (r.event === "localapi" ? `${r.method} ${r.path}` : r.event === "signal" ? r.signal : r.event));

describe("dump-events --login-server", () => {
  test("joins as a private ephemeral node, dumps every peer (ours included) through the proxy byte for byte, logs out, stops", async () => {
    const net = simTailnet({
      mesh,
      keys: { [KEY]: "valid" },
      extras: [
        { hostName: "nara-backup-4242", ip: "100.64.0.40", target: "127.0.0.1:9" },
        { hostName: "ghost-a1b2", ip: "100.64.0.41", target: "127.0.0.1:9", online: false },
      ],
    });
    try {
      const r = await cli(["dump-events", "--name", me.name, ...join_(net), "--json", "--verbose", "--page-size", "100"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(expected(mesh));
      const summary = JSON.parse(r.stderr.trim().split("\n").find((l) => l.startsWith('{"complete"'))!);
      expect(summary.peers.map((p: { name: string; address: string }) => `${p.name} ${p.address}`).sort()).toEqual(
        naras.map((n) => `${n.name} http://${net.ips[n.name]}:7433`).sort(),
      );
      expect(summary.mesh.loginServer).toBe(net.controlUrl);
      expect(summary.mesh.hostname).toMatch(/^nara-backup-\d+$/);
      expect([...summary.mesh.peersSeen].sort()).toEqual(naras.map((n) => n.name).sort());
      expect(r.stderr).toContain(`joining the nara mesh as ${summary.mesh.hostname}`);
      expect(r.stderr).toContain("connected: 3 nara(s)");
      expect(r.stderr).toContain("skipped ghost: offline");
      // The key travels only in the /start body: not on argv, stderr, stdout or in --json.
      expect(r.stderr + r.stdout).not.toContain(KEY);
      expect(r.stderr).not.toContain(me.soul);

      const [spawn] = net.records("spawn");
      const d = dirname((spawn!.argv as string[])[3]!.slice("--socket=".length));
      expect(spawn!.argv).toEqual([
        "--tun=userspace-networking",
        "--state=mem:",
        `--statedir=${d}/state`,
        `--socket=${d}/tsd.sock`,
        "--port=0",
        "--no-logs-no-support",
        "--outbound-http-proxy-listen=127.0.0.1:0",
      ]);
      expect(spawn!.env).toEqual({ TS_LOGS_DIR: `${d}/logs`, PORT: null });
      expect(net.records("flags")[0]).toMatchObject({ ephemeral: true, logsDirUsed: true, noLogs: true });
      expect(net.records("start")[0]!.prefs).toEqual({
        ControlURL: net.controlUrl,
        Hostname: summary.mesh.hostname,
        WantRunning: true,
        ShieldsUp: true,
        CorpDNS: false,
        RouteAll: false,
      });
      expect(net.records("localapi").every((r) => r.host === "local-tailscaled.sock")).toBe(true);
      const seq = events(net).filter((e) => !e.startsWith("GET /localapi/v0/status") && e !== "proxy");
      expect(seq).toEqual(["spawn", "flags", "POST /localapi/v0/start", "start", "POST /localapi/v0/login-interactive", "registered", "POST /localapi/v0/logout", "logout", "SIGTERM", "exit"]);
      // Every peer request went through the proxy, to a peer's tailnet IP only.
      const proxied = net.records("proxy");
      expect(proxied.length).toBeGreaterThanOrEqual(2 * naras.length);
      expect(proxied.every((p) => p.allowed === true && Object.values(net.ips).some((ip) => p.uri.startsWith(`http://${ip}:7433/`)))).toBe(true);
      expectNothingLeft(net);
    } finally {
      net.cleanup();
    }
  });

  test("peers lists the nara we act as, with the key from --auth-key-file", async () => {
    const net = simTailnet({ mesh, keys: { [KEY]: "valid" }, extras: [{ hostName: "laptop", ip: "100.64.0.50", target: "127.0.0.1:9" }] });
    const keyFile = join(dir, "key");
    writeFileSync(keyFile, `${KEY}\n`, { mode: 0o600 });
    try {
      const r = await cli(["peers", "--name", me.name, ...join_(net, ["--auth-key-file", keyFile]), "--json"], { NARA_MESH_AUTH_KEY: "" });
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.peers.map((p: { name: string }) => p.name).sort()).toEqual(naras.map((n) => n.name).sort());
      expect(out.peers.find((p: { name: string }) => p.name === me.name).host).toBe(net.ips[me.name]);
      expect(out.skipped).toEqual([{ name: "laptop", reason: "hostname is not NAME-xxxx, not a nara" }]);
      expect(out.mesh.loginServer).toBe(net.controlUrl);
      expect(r.stdout + r.stderr).not.toContain(KEY);
      expect(net.records("logout")).toHaveLength(1);
      expectNothingLeft(net);
    } finally {
      net.cleanup();
    }
  });
});

describe("joining fails clearly, exit 5, and leaves nothing behind", () => {
  test("an invalid key: named, with the headscale command that makes a good one", async () => {
    const net = simTailnet({ mesh, keys: { "hskey-other": "valid" } });
    try {
      const r = await cli(["dump-events", "--name", me.name, ...join_(net)]);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain("error: the nara mesh refused the pre-auth key: You are logged out. The last login error was: register request: http 401: invalid pre auth key");
      expect(r.stderr).toContain("headscale preauthkeys create --user ID --reusable --ephemeral --expiration 24h");
      expect(r.stderr).not.toContain(KEY);
      expect(net.records("proxy")).toHaveLength(0);
      expect(net.records("signal").map((s) => s.signal)).toEqual(["SIGTERM"]);
      expectNothingLeft(net);
    } finally {
      net.cleanup();
    }
  });

  test("an expired key", async () => {
    const net = simTailnet({ mesh, keys: { [KEY]: "expired" } });
    try {
      const r = await cli(["peers", "--name", me.name, ...join_(net)]);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain("http 401: authkey expired");
      expectNothingLeft(net);
    } finally {
      net.cleanup();
    }
  });

  test("a wrong control URL: the Health text within --mesh-timeout, and a hint about --login-server", async () => {
    const net = simTailnet({ mesh, keys: { [KEY]: "valid" } });
    try {
      const r = await cli(["dump-events", "--name", me.name, ...join_(net), "--login-server", "https://wrong.example", "--mesh-timeout", "1s"]);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain('error: cannot reach the control server https://wrong.example within 1 s: You are logged out. The last login error was: fetch control key: Get "https://wrong.example/key?v=133"');
      expect(r.stderr).toContain("hint: check --login-server");
      expectNothingLeft(net);
    } finally {
      net.cleanup();
    }
  });

  test("no DERP relay: stuck in Starting", async () => {
    const net = simTailnet({ mesh, keys: { [KEY]: "valid" }, derp: false });
    try {
      const r = await cli(["peers", "--name", me.name, ...join_(net), "--mesh-timeout", "1s"]);
      expect(r.code).toBe(5);
      expect(r.stderr).toContain("stuck in Starting for 1 s: no DERP relay reachable");
      expect(net.records("logout")).toHaveLength(1);
      expectNothingLeft(net);
    } finally {
      net.cleanup();
    }
  });

  test("tailscaled missing: exit 5 with how to install it and the --peers alternative", async () => {
    const r = await cli(["dump-events", "--name", me.name, "--login-server", "https://hs.example", "--tailscaled", join(dir, "no-such-tailscaled")]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain(`error: --tailscaled ${join(dir, "no-such-tailscaled")}: no such executable`);
    expect(r.stderr).toContain("https://tailscale.com/download");
    expect(r.stderr).toContain("--peers");
  });

  const installed = ["/usr/sbin/tailscaled", "/usr/local/sbin/tailscaled", "/usr/local/bin/tailscaled", "/opt/homebrew/bin/tailscaled", "/opt/homebrew/sbin/tailscaled"].some(existsSync);
  test.skipIf(installed)("tailscaled on neither PATH nor the usual places", async () => {
    const r = await cli(["peers", "--login-server", "https://hs.example"], { PATH: "/nonexistent" });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("error: tailscaled not found");
    expect(r.stderr).toContain("--peers");
  });

  test("no key: a usage error before anything is spawned", async () => {
    const net = simTailnet({ mesh, keys: {} });
    try {
      const r = await cli(["dump-events", "--name", me.name, ...join_(net)], { NARA_MESH_AUTH_KEY: "" });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("--login-server needs a pre-auth key: set NARA_MESH_AUTH_KEY or pass --auth-key-file FILE");
      expect(net.records("spawn")).toHaveLength(0);
    } finally {
      net.cleanup();
    }
  });
});

describe("ending mid-dump", () => {
  const slowMesh = (faults: MeshOptions["faults"]) =>
    startMesh({ peers: naras, events: 600, seed: 78, overlap: 0.3, client: { name: me.name, soul: me.soul }, faults });

  test("Ctrl-C: logout and stop still happen, no output file, exit 130", async () => {
    const m = await slowMesh({ latencyMs: 150 });
    const net = simTailnet({ mesh: m, keys: { [KEY]: "valid" } });
    const out = join(dir, "interrupted.jsonl");
    try {
      const run = start(["dump-events", "--name", me.name, ...join_(net), "--page-size", "10", "--verbose", "-o", out]);
      await run.waitStderr(/: page 1, /);
      run.proc.kill("SIGINT");
      const r = await run.done;
      expect(r.code).toBe(130);
      expect(existsSync(out)).toBe(false);
      const tail = events(net).filter((e) => e !== "proxy" && !e.startsWith("GET "));
      expect(tail.slice(-4)).toEqual(["POST /localapi/v0/logout", "logout", "SIGTERM", "exit"]);
      expectNothingLeft(net);
    } finally {
      net.cleanup();
      await m.stop();
    }
  });

  test("the daemon killed: the peers in flight fail naming it, what was fetched is kept, exit 3", async () => {
    const fast = naras[1]!.name;
    const m = await slowMesh({ [naras[0]!.name]: { latencyMs: 150 }, [fast]: {}, [naras[2]!.name]: { latencyMs: 150 } });
    const net = simTailnet({ mesh: m, keys: { [KEY]: "valid" } });
    const out = join(dir, "partial.jsonl");
    try {
      const run = start(["dump-events", "--name", me.name, ...join_(net), "--page-size", "10", "--timeout", "2s", "--verbose", "-o", out, "--json"]);
      await run.waitStderr(new RegExp(`${fast}: ok, `));
      process.kill(net.records("spawn")[0]!.pid, "SIGKILL");
      const r = await run.done;
      expect(r.code).toBe(3);
      const summary = JSON.parse(r.stderr.trim().split("\n").find((l) => l.startsWith('{"complete"'))!);
      const byName = Object.fromEntries(summary.peers.map((p: { name: string }) => [p.name, p]));
      expect(byName[fast].status).toBe("ok");
      for (const n of [naras[0]!.name, naras[2]!.name]) {
        expect(byName[n].status).not.toBe("ok");
        expect(byName[n].error).toContain("(the private tailscaled killed by SIGKILL mid-dump)");
      }
      // The fast peer's whole ledger is in the file.
      const written = new Set(readFileSync(out, "utf8").split("\n").filter(Boolean));
      const fastEvents = m.peer(fast).events.list();
      expect(fastEvents.length).toBeGreaterThan(0);
      expect(fastEvents.every((e) => written.has(e.raw))).toBe(true);
      expect(net.records("logout")).toHaveLength(0);
      expectNothingLeft(net);
    } finally {
      net.cleanup();
      await m.stop();
    }
  });
});

describe("restore-events --login-server", () => {
  test("restores into a nara reachable only on the tailnet, through the daemon's proxy; other addresses are refused", async () => {
    const m = await startMesh({ peers: naras, events: 300, seed: 79, overlap: 0.3, client: { name: me.name, soul: me.soul } });
    const net = simTailnet({ mesh: m, keys: { [KEY]: "valid" } });
    const backup = join(dir, "restore.jsonl");
    writeFileSync(backup, m.allEvents.map((e) => `${e.raw}\n`).join(""));
    try {
      const target = m.peer(me.name);
      expect(target.events.size).toBeLessThan(m.allEvents.length);
      const r = await cli(["restore-events", "--nara-url", `http://${net.ips[me.name]}:7433`, "--name", me.name, ...join_(net), backup]);
      expect(r.code).toBe(0);
      expect(target.events.size).toBe(m.allEvents.length);
      expect(net.records("proxy").filter((p) => p.uri === `http://${net.ips[me.name]}:7433/api/events/import`).length).toBeGreaterThan(0);
      expect(net.records("logout")).toHaveLength(1);
      expectNothingLeft(net);

      const off = await cli(["restore-events", "--nara-url", "http://100.99.0.1:7433", "--name", me.name, ...join_(net), backup]);
      expect(off.code).toBe(5);
      expect(off.stderr).toContain("error: --nara-url: 100.99.0.1 is not a peer on the nara mesh");
      expectNothingLeft(net, 2);
    } finally {
      net.cleanup();
      await m.stop();
    }
  });
});

describe("a tailscaled the user runs, and what the simulated one refuses", () => {
  test("--proxy sends --peers requests through it; its LocalAPI wants Host local-tailscaled.sock; its proxy never dials a non-peer", async () => {
    const net = simTailnet({ mesh, keys: { [KEY]: "valid" } });
    // A server that must never be reached through the proxy.
    let bystanderHits = 0;
    const bystander = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (bystanderHits++, new Response("reached")) });
    const session = await joinMesh({ loginServer: net.controlUrl, authKey: KEY, tailscaled: net.bin, timeoutMs: 20_000 });
    try {
      const peers = naras.map((n) => `${n.name}=${net.ips[n.name]}:7433`).join(",");
      const r = await cli(["dump-events", "--name", me.name, "--peers", peers, "--proxy", session.proxyUrl]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(expected(mesh));

      for (const headers of [{ Host: "localhost" }, { Origin: "http://evil.example" }, { Referer: "http://evil.example/" }] as Record<string, string>[]) {
        const res = await fetch("http://local-tailscaled.sock/localapi/v0/status", { unix: session.socket, headers });
        expect(res.status).toBe(403);
        expect(await res.text()).toBe("invalid localapi request\n");
      }
      const direct = `http://127.0.0.1:${bystander.port}/ping`;
      const forwarded = await fetch(direct, { proxy: session.proxyUrl });
      expect(forwarded.status).toBe(502);
      const tunnel = await new Promise<string>((resolve, reject) => {
        let got = "";
        void Bun.connect({
          hostname: "127.0.0.1",
          port: Number(new URL(session.proxyUrl).port),
          socket: {
            open: (s) => void s.write(`CONNECT 127.0.0.1:${bystander.port} HTTP/1.1\r\nHost: 127.0.0.1:${bystander.port}\r\n\r\n`),
            data: (_s, d) => void (got += d.toString()),
            close: () => resolve(got),
            error: (_s, e) => reject(e),
          },
        });
      });
      expect(tunnel).toStartWith("HTTP/1.1 500 ");
      expect(tunnel).toContain("Tailscale-Connect-Error: ");
      const origin = await fetch(`${session.proxyUrl}/ping`);
      expect(origin.status).toBe(400);
      expect(await origin.text()).toBe("bogus RequestURI; must be absolute URL or CONNECT\n");
      expect(bystanderHits).toBe(0);
    } finally {
      await session.leave();
      bystander.stop(true);
    }
    expectNothingLeft(net);
    net.cleanup();
  });
});
