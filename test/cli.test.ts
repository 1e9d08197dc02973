import { afterEach, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { join } from "node:path";
import { main } from "../src/cli.ts";
import { ExitCode } from "../src/errors.ts";
import { startFakeLocalApi, tailscaleStatus, type FakeLocalApi } from "./sim/localapi.ts";

const ROOT = join(import.meta.dir, "..");
const BUN = join(ROOT, "node_modules/.bin/bun");
const CLI = join(ROOT, "src/cli.ts");

const souls = (await Bun.file(join(ROOT, "../shared/vectors/souls.json")).json()) as {
  valid: { name: string; soul: string; nara_id: string }[];
  invalid: { name: string; soul: string; error_class: string }[];
};
const alice = souls.valid.find((v) => v.name === "alice")!;
const tooShort = souls.invalid.find((v) => v.error_class === "wrong_length" && v.soul.length > 20)!;

/** A clean environment: no NARA_SOUL from the developer's shell, no colours. */
function env(extra: Record<string, string> = {}): Record<string, string> {
  const base = { ...process.env } as Record<string, string>;
  delete base.NARA_SOUL;
  return { ...base, NO_COLOR: "1", ...extra };
}

const run = (args: string[], extraEnv: Record<string, string> = {}) => runCli(args, { cwd: ROOT, env: env(extraEnv), cmd: [BUN, CLI] });

const apis: FakeLocalApi[] = [];
afterEach(() => {
  while (apis.length) apis.pop()!.stop();
});

describe("nara-backup peers (subprocess)", () => {
  test("--peers with --json prints the peers as JSON on stdout, nothing on stderr", async () => {
    const r = await run(["peers", "--peers", "a=127.0.0.1:1,b=h", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.via).toBe("static");
    expect(out.peers).toEqual([
      { name: "a", host: "127.0.0.1", port: 1, url: "http://127.0.0.1:1", source: "static" },
      { name: "b", host: "h", port: 7433, url: "http://h:7433", source: "static" },
    ]);
    expect(out.skipped).toEqual([]);
  });

  test("Go-style single-dash flags; a table on stdout; the soul checked and never printed", async () => {
    const r = await run(["peers", "-name", "alice", "-soul", alice.soul, "-verbose", "-peers", "bob=100.64.0.3"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("NAME  ADDRESS          SOURCE\nbob   100.64.0.3:7433  static\n");
    expect(r.stderr).toContain("NARA_SOUL"); // the hint against --soul
    expect(r.stderr).toContain(alice.nara_id);
    expect(r.stderr).toContain("soul from --soul"); // debug level is on
    expect(r.stderr + r.stdout).not.toContain(alice.soul);
  });

  test("a soul bonded to another name: exit 2, error on stderr, no soul anywhere", async () => {
    const r = await run(["peers", "--name", "bob", "--soul", alice.soul, "--peers", "a=127.0.0.1:1"]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('error: the soul is not bonded to the name "bob"');
    expect(r.stderr).toContain("hint: ");
    expect(r.stderr).not.toContain(alice.soul);
  });

  test("a malformed soul in NARA_SOUL: exit 2, no soul on stderr", async () => {
    const r = await run(["peers", "--name", "alice", "--peers", "a=127.0.0.1:1"], { NARA_SOUL: tooShort.soul });
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stderr).toStartWith("error: the soul decodes to");
    expect(r.stderr).not.toContain(tooShort.soul);
  });

  test("Tailscale discovery through a fake LocalAPI, skipped peers listed", async () => {
    const api = startFakeLocalApi({
      status: tailscaleStatus({
        self: { HostName: "nara-backup-k3j4" },
        peers: [{ hostName: "blue-jay-x7k2" }, { hostName: "alice-a1b2", online: false }],
      }),
    });
    apis.push(api);
    const r = await run(["peers", "-tailscale-socket", api.socketPath]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "NAME      ADDRESS          SOURCE\nblue-jay  100.64.0.2:7433  tailscale\n\nskipped (1):\n  alice  offline\n",
    );
  });

  test("nobody to back up: exit 5, the (empty) listing still on stdout", async () => {
    const api = startFakeLocalApi({
      status: tailscaleStatus({ self: { HostName: "nara-backup-k3j4" }, peers: [{ hostName: "alice-a1b2", online: false }] }),
    });
    apis.push(api);
    const r = await run(["peers", "--tailscale-socket", api.socketPath, "--json"]);
    expect(r.code).toBe(ExitCode.noPeers);
    expect(JSON.parse(r.stdout)).toMatchObject({ peers: [], skipped: [{ name: "alice", reason: "offline" }] });
    expect(r.stderr).toContain("error: Tailscale shows no nara to back up");
  });

  test("--help prints usage on stdout and exits 0", async () => {
    const top = await run(["--help"]);
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("dump-events");
    expect(top.stdout).toContain("peers");
    expect(top.stdout).toContain("Exit codes");
    const sub = await run(["peers", "-h", "--bogus"]);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain("--peers-file");
    expect(sub.stdout).not.toContain("\x1b[");
  });
});

/** main() in-process, for the paths that never reach a command's own output. */
async function inProcess(argv: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { code, stdout, stderr };
}

describe("main()", () => {
  test("no command: usage and an error on stderr, exit 2", async () => {
    const r = await inProcess([]);
    expect(r.code).toBe(ExitCode.usage);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("USAGE");
    expect(r.stderr).toContain("error: no command given");
  });

  test("unknown command, unknown option, stray argument: exit 2", async () => {
    const cmd = await inProcess(["frobnicate"]);
    expect(cmd.code).toBe(ExitCode.usage);
    expect(cmd.stderr).toContain('unknown command "frobnicate"');
    expect(cmd.stderr).toContain("hint: commands: dump-events, restore-events, peers");
    expect((await inProcess(["peers", "--peer", "a=1.2.3.4"])).stderr).toContain("unknown option --peer");
    expect((await inProcess(["--verbose", "peers"])).code).toBe(ExitCode.usage);
    const stray = await inProcess(["peers", "--name", "alice", alice.soul]);
    expect(stray.code).toBe(ExitCode.usage);
    expect(stray.stderr).toContain("unexpected argument");
    expect(stray.stderr).not.toContain(alice.soul);
  });

  test("--version", async () => {
    const r = await inProcess(["--version"]);
    expect(r).toEqual({ code: 0, stdout: "0.1.0\n", stderr: "" });
  });
});
