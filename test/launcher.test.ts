/**
 * src/launcher.mjs, the package's bin: Node runs it and it runs the CLI with
 * the Bun from node_modules (no bun on PATH here), passing arguments, stdio,
 * signals and the exit code through.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { generateNaras } from "./sim/generate.ts";
import { startMesh } from "./sim/mesh.ts";
import { startPeer } from "./sim/peer.ts";

const root = join(import.meta.dir, "..");
const launcher = join(root, "src/launcher.mjs");
const node = Bun.which("node");
// PATH with node but without any bun: only the launcher's own search can find one.
const nodeOnlyPath = node ? dirname(node) : "";
const noBunOnPath = node !== null && Bun.which("bun", { PATH: nodeOnlyPath }) === null;
const dir = mkdtempSync(join(tmpdir(), "nara-launcher-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Result = { code: number | null; signal: unknown; stdout: string; stderr: string };

async function run(argv: string[], stdin?: string): Promise<Result> {
  const proc = Bun.spawn(argv, { cwd: dir, env: { PATH: nodeOnlyPath }, stdin: stdin === undefined ? "ignore" : new Blob([stdin]), stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
  await proc.exited;
  return { code: proc.exitCode, signal: proc.signalCode, stdout, stderr };
}

/** The pids whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the ")" that closes the command name: state, ppid, ...
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {}
  }
  return out;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.skipIf(!noBunOnPath)("the Node launcher (node on PATH, bun only in node_modules; skipped where node is missing or a bun sits beside it)", () => {
  test("passes stdout and exit code 0 through", async () => {
    const r = await run([node!, launcher, "--version"]);
    expect(r).toEqual({ code: 0, signal: null, stdout: `${pkg.version}\n`, stderr: "" });
  });

  test("passes arguments unchanged (spaces, non-ASCII) and a non-zero exit code", async () => {
    const r = await run([node!, launcher, "no such ü"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`unknown command "no such ü"`);
  });

  test("passes stdin through", async () => {
    const line = '{"id":"x"}\n';
    const r = await run([node!, launcher, "stats", "-", "--json"], line.repeat(3));
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ bytes: line.length * 3 });
  });

  test("a signal sent to the launcher reaches the CLI, and the launcher dies of it too", async () => {
    // verify reading a stdin that stays open: the CLI blocks until the signal; its first log line says it runs.
    const proc = Bun.spawn([node!, launcher, "verify", "-", "--verbose"], { cwd: dir, env: { PATH: nodeOnlyPath }, stdin: "pipe", stdout: "ignore", stderr: "pipe" });
    const reader = proc.stderr.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toContain("[debug]");
    const child = childrenOf(proc.pid)[0];
    expect(child).toBeNumber();
    proc.kill("SIGTERM");
    await proc.exited;
    expect(proc.signalCode).toBe("SIGTERM");
    // The launcher waited for the CLI to end before it re-raised the signal.
    expect(alive(child!)).toBe(false);
    proc.stdin.end();
    reader.releaseLock();
  });

  test("Ctrl-C in a terminal (SIGINT to the whole process group, so the CLI gets it twice): exit 130, no temporary file left", async () => {
    const mesh = await startMesh({ peers: 2, events: 50, seed: 5, faults: { hangAfterPages: 0 } });
    const out = mkdtempSync(join(dir, "int-"));
    try {
      const proc = Bun.spawn([node!, launcher, "dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "-o", join(out, "b.jsonl")], {
        cwd: out,
        env: { PATH: nodeOnlyPath, NARA_SOUL: mesh.client.soul },
        stdout: "ignore",
        stderr: "pipe",
        // Its own process group, as a shell gives a foreground job.
        detached: true,
      });
      // The dump has started (its signal handlers are set) once both peers hold a hanging request.
      await Promise.all(mesh.peers.map((p) => p.until((s) => s.syncRequests > 0)));
      process.kill(-proc.pid, "SIGINT");
      await proc.exited;
      expect(proc.exitCode).toBe(130);
      expect(readdirSync(out)).toEqual([]);
    } finally {
      await mesh.stop();
    }
  });

  test.skipIf(!Bun.which("script"))("Ctrl-C on a real terminal reaches the CLI once: restore-events stops after the request in flight", async () => {
    const mesh = await startMesh({ peers: 1, events: 200, seed: 6 });
    const target = startPeer({ nara: generateNaras(3, 8)[2]!, naras: mesh.naras, faults: { latencyMs: 1200 } });
    const file = join(dir, "ctrl-c.jsonl");
    writeFileSync(file, mesh.allEvents.map((e) => `${e.raw}\n`).join(""));
    try {
      const command = [node!, launcher, "restore-events", "--nara-url", target.url, "--name", target.name, "--batch-size", "50", file].map((a) => `'${a}'`).join(" ");
      // script(1) runs the command on a pseudo-terminal; a \x03 written to it is the terminal's Ctrl-C.
      const proc = Bun.spawn(["script", "-qefc", command, "/dev/null"], {
        cwd: dir,
        env: { PATH: nodeOnlyPath, NARA_SOUL: target.nara.soul },
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
      });
      // The first batch was imported; its answer is held back by the latency.
      await target.until((s) => s.imports > 0);
      proc.stdin.write("\x03");
      await proc.stdin.flush();
      const [screen, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      expect(code).toBe(130);
      // One Ctrl-C: the graceful stop with a resume hint, not "quit at once".
      expect(screen).toContain("stopping after the request in flight");
      expect(screen).toContain("--skip 50");
      expect(target.stats.imports).toBe(1);
    } finally {
      await Promise.all([mesh.stop(), target.stop()]);
    }
  });

  test("without any bun it says so and how to fix it, exit 1", async () => {
    const alone = mkdtempSync(join(dir, "alone-"));
    copyFileSync(launcher, join(alone, "launcher.mjs"));
    const r = await run([node!, join(alone, "launcher.mjs"), "--version"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot start Bun");
    expect(r.stderr).toContain("hint:");
  });
});

test("under Bun (bunx) the launcher runs the CLI in the same process", async () => {
  const r = await run([process.execPath, launcher, "no-such-command"]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`unknown command "no-such-command"`);
  expect((await run([process.execPath, launcher, "--version"])).stdout).toBe(`${pkg.version}\n`);
});
