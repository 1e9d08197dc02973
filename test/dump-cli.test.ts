import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startFakeLocalApi, tailscaleStatus } from "./sim/localapi.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { checkDestination } from "../src/dump/plan.ts";
import { interruptedMessage, renderTable } from "../src/cli/render/dump.ts";
import { ExitCode, NaraError } from "../src/errors.ts";

const root = join(import.meta.dir, "..");
const bun = process.execPath;
let dir: string;
let mesh: SimMesh;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nara-dump-cli-"));
  mesh = await startMesh({ peers: 3, events: 1200, seed: 42, generate: { sharedTsRate: 0.3 }, tailscale: true });
});
afterAll(async () => {
  await mesh.stop();
  rmSync(dir, { recursive: true, force: true });
});

function expected(): string {
  const sorted = [...mesh.allEvents].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1));
  return sorted.map((e) => `${e.raw}\n`).join("");
}

type Result = { code: number; stdout: string; stderr: string };

const cli = (args: string[], env: Record<string, string> = {}, cmd?: string[]): Promise<Result> =>
  runCli(args, { cwd: dir, env: { NARA_SOUL: mesh.client.soul, ...env }, cmd });

const staticPeers = () => mesh.peers.map((p) => `${p.name}=${p.hostname}:${p.port}`).join(",");

describe("dump-events from the command line", () => {
  test("the backup goes to stdout, everything else to stderr, exit 0; the soul appears nowhere", async () => {
    const r = await cli(["dump-events", "-name", mesh.client.name, "-peers", staticPeers(), "-page-size", "70"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(expected());
    expect(r.stderr).toContain("events from 3/3 peers");
    // stderr is a pipe here: no progress bar redraws, only plain lines.
    expect(r.stderr).not.toContain("\r");
    expect(r.stdout + r.stderr).not.toContain(mesh.client.soul);
  });

  test.skipIf(!Bun.which("script"))("on a terminal, stderr shows a redrawn progress bar with counts and rate", async () => {
    const out = join(dir, "tty.jsonl");
    const command = [bun, join(root, "src/cli.ts"), "dump-events", "--name", mesh.client.name, "--peers", staticPeers(), "-o", out, "--page-size", "50"]
      .map((a) => `'${a}'`)
      .join(" ");
    // script(1) runs the command on a pseudo-terminal: stderr.isTTY is true there.
    const r = await cli(["-qefc", command, "/dev/null"], {}, ["script"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("\r\x1b[2K");
    expect(r.stdout).toMatch(/peers \[[#-]+\] \d+\/3 \d+%/);
    expect(r.stdout).toMatch(/events fetched \([\d.,k]+ events\/s\)/);
    expect(readFileSync(out, "utf8")).toBe(expected());
  });

  test("--json prints one summary object on stderr with the documented keys", async () => {
    const out = join(dir, "json.jsonl");
    const r = await cli(["dump-events", "--name", mesh.client.name, "--peers", staticPeers(), "-o", out, "--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    const summary = JSON.parse(r.stderr.trim().split("\n").at(-1)!);
    for (const key of ["peers", "fetched", "unique", "written", "duplicates", "seconds"]) expect(summary).toHaveProperty(key);
    expect(summary.written).toBe(mesh.allEvents.length);
    expect(summary.peers[0]).toMatchObject({ name: mesh.peers[0]!.name, status: "ok", error: null });
    expect(Object.keys(summary.peers[0])).toEqual(expect.arrayContaining(["name", "address", "status", "pages", "streams", "events", "error"]));
    expect(readFileSync(out, "utf8")).toBe(expected());
  });

  test("peers discovered through the Tailscale LocalAPI", async () => {
    const ts = mesh.tailscale!;
    const r = await cli([
      "dump-events",
      "--name",
      mesh.client.name,
      "--tailscale-socket",
      ts.socketPath,
      "--mesh-port",
      String(ts.port),
      "--verbose",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(expected());
  });

  test("one dead peer: partial backup of the others, exit 3", async () => {
    const r = await cli(["dump-events", "--name", mesh.client.name, "--peers", `${staticPeers()},dead=127.0.0.1:1`, "--timeout", "1s"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe(expected());
    expect(r.stderr).toMatch(/dead.*failed/);
  });

  test("every peer dead: exit 4 and no output file", async () => {
    const out = join(dir, "never.jsonl");
    const r = await cli(["dump-events", "--name", mesh.client.name, "--peers", "dead=127.0.0.1:1", "--timeout", "500ms", "-o", out]);
    expect(r.code).toBe(4);
    expect(existsSync(out)).toBe(false);
  });

  test("no peers found: exit 5 and a message, not an empty backup", async () => {
    const api = await startFakeLocalApi({
      status: tailscaleStatus({ self: { HostName: "nara-backup-x1y2" }, peers: [{ hostName: "sleepy-owl-ab12", online: false }] }),
    });
    try {
      const r = await cli(["dump-events", "--name", mesh.client.name, "--tailscale-socket", api.socketPath]);
      expect(r.code).toBe(5);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("sleepy-owl");
    } finally {
      await api.stop();
    }
  });

  test("--max-inflight takes a size: 64k works, a word is a usage error (exit 2)", async () => {
    const ok = await cli(["dump-events", "-name", mesh.client.name, "-peers", staticPeers(), "-page-size", "70", "-max-inflight", "64k"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(expected());
    const bad = await cli(["dump-events", "--name", mesh.client.name, "--peers", staticPeers(), "--max-inflight", "lots"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--max-inflight");
  });

  test("--streams-per-peer takes a count: 1 works, 0 is a usage error (exit 2)", async () => {
    const ok = await cli(["dump-events", "-name", mesh.client.name, "-peers", staticPeers(), "-streams-per-peer", "1"]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe(expected());
    const bad = await cli(["dump-events", "--name", mesh.client.name, "--peers", staticPeers(), "--streams-per-peer", "0"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--streams-per-peer");
  });

  test("-o naming the --ids-from file is refused (it would replace the backup with only the new events)", async () => {
    const file = join(dir, "same.jsonl");
    writeFileSync(file, expected());
    const before = mesh.peers.reduce((n, p) => n + p.stats.requests, 0);
    const r = await cli(["dump-events", "--name", mesh.client.name, "--peers", staticPeers(), "--ids-from", file, "-o", join(dir, ".", "same.jsonl")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("merge");
    expect(readFileSync(file, "utf8")).toBe(expected());
    expect(mesh.peers.reduce((n, p) => n + p.stats.requests, 0)).toBe(before);
  });

  test("a soul bonded to another name: exit 2 before any request, soul not echoed", async () => {
    const before = mesh.peers.reduce((n, p) => n + p.stats.requests, 0);
    const r = await cli(["dump-events", "--name", "someone-else", "--peers", staticPeers()]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not bonded");
    expect(r.stderr).not.toContain(mesh.client.soul);
    expect(mesh.peers.reduce((n, p) => n + p.stats.requests, 0)).toBe(before);
  });

  test("Ctrl-C leaves neither the output file nor a temporary file; exit 130", async () => {
    const hanging = await startMesh({ peers: 1, events: 500, seed: 8, faults: { hangAfterPages: 1 } });
    const sub = join(dir, "interrupt");
    const out = join(sub, "backup.jsonl");
    await Bun.write(join(sub, ".keep"), "");
    try {
      const proc = Bun.spawn(
        [bun, join(root, "src/cli.ts"), "dump-events", "--name", hanging.client.name, "--peers", hanging.peersArg, "-o", out, "--verbose", "--page-size", "100"],
        { env: { PATH: process.env.PATH ?? "", NARA_SOUL: hanging.client.soul }, stdout: "pipe", stderr: "pipe" },
      );
      // Wait for --verbose to report the first page: the dump is then mid-flight, its temporary file open.
      const reader = proc.stderr.getReader();
      let seen = "";
      while (!seen.includes("page 1,")) {
        const { value, done } = await reader.read();
        if (done) break;
        seen += new TextDecoder().decode(value);
      }
      expect(readdirSync(sub).some((f) => f.endsWith(".tmp"))).toBe(true);
      proc.kill("SIGINT");
      expect(await proc.exited).toBe(130);
      expect(readdirSync(sub)).toEqual([".keep"]);
    } finally {
      await hanging.stop();
    }
  });
});

describe("the single-file binary", () => {
  test("bun build --compile gives a binary whose workers load, and it dumps the mesh", async () => {
    const bin = join(dir, "nara-backup");
    const build = Bun.spawnSync([bun, "build", "--compile", "src/cli.ts", "workers/fetch-peer.ts", "workers/restore-check.ts", "--outfile", bin], { cwd: root });
    expect(build.exitCode).toBe(0);
    // Run from another directory: the binary must not load workers from the working directory.
    const r = await cli(["dump-events", "--name", mesh.client.name, "--peers", staticPeers()], {}, [bin]);
    expect(r.stderr).not.toContain("ModuleNotFound");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(expected());
    rmSync(bin, { force: true });
  }, 120_000);
});

describe("checkDestination", () => {
  const refusal = (d: Parameters<typeof checkDestination>[0]): string | undefined => {
    try {
      checkDestination(d);
      return undefined;
    } catch (err) {
      expect(err).toBeInstanceOf(NaraError);
      expect((err as NaraError).exitCode).toBe(ExitCode.usage);
      return (err as NaraError).message;
    }
  };

  test("compressed or encrypted data is refused on a terminal, plain JSON Lines and redirected stdout are not", () => {
    expect(refusal({ compress: "zstd", encrypt: false, stdoutIsTTY: true })).toBe("refusing to write compressed or encrypted data to a terminal");
    expect(refusal({ output: "-", encrypt: true, stdoutIsTTY: true })).toBe("refusing to write compressed or encrypted data to a terminal");
    expect(refusal({ compress: "none", encrypt: false, stdoutIsTTY: true })).toBeUndefined();
    expect(refusal({ compress: "gzip", encrypt: true, stdoutIsTTY: false })).toBeUndefined();
    expect(refusal({ output: join(dir, "b.jsonl.zst"), compress: "zstd", encrypt: true, stdoutIsTTY: true })).toBeUndefined();
  });

  test("-o naming the --ids-from file, also by another spelling, is refused; stdout with --ids-from is not", () => {
    const file = join(dir, "ids.jsonl");
    expect(refusal({ output: join(dir, ".", "ids.jsonl"), idsFrom: file, encrypt: false, stdoutIsTTY: false })).toContain("would replace the --ids-from file");
    expect(refusal({ output: join(dir, "other.jsonl"), idsFrom: file, encrypt: false, stdoutIsTTY: false })).toBeUndefined();
    expect(refusal({ idsFrom: file, encrypt: false, stdoutIsTTY: false })).toBeUndefined();
  });
});

describe("render", () => {
  test("the peers table: columns padded but the last, skipped peers indented below", () => {
    const peers = [
      { name: "alice", url: "http://100.64.0.1:7433", source: "tailscale" as const, host: "100.64.0.1", port: 7433 },
      { name: "bo", url: "http://10.0.0.2:8080", source: "static" as const, host: "10.0.0.2", port: 8080 },
    ];
    expect(renderTable(peers, [{ name: "carol", reason: "offline" }])).toBe(
      "NAME   ADDRESS          SOURCE\nalice  100.64.0.1:7433  tailscale\nbo     10.0.0.2:8080    static\n\nskipped (1):\n  carol  offline\n",
    );
    expect(renderTable([], [])).toBe("no peers\n");
  });

  test("what a Ctrl-C says, before and after stdout began to receive the backup", () => {
    expect(interruptedMessage(false)).toBe("interrupted: no backup written\n");
    expect(interruptedMessage(true)).toBe("interrupted: the backup on stdout is incomplete, do not use it\n");
  });
});
