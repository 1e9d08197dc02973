/**
 * `npm run build`'s command for this machine's target, run for real: the
 * single-file binary starts, and a dump through it uses the fetch worker
 * (which is compiled in only when it is an entrypoint too, BUN-NOTES).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { startMesh } from "./sim/mesh.ts";

const root = join(import.meta.dir, "..");
const target = process.platform === "linux" && (process.arch === "x64" || process.arch === "arm64") ? `bun-linux-${process.arch}` : undefined;
// The build script is one `bun build ... --target=T ... --outfile F` per target, joined by &&.
const buildCommand = pkg.scripts.build
  .split("&&")
  .map((c) => c.trim().split(/\s+/))
  .find((argv) => argv.includes(`--target=${target}`));
const dir = mkdtempSync(join(tmpdir(), "nara-compile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("npm run build makes binaries for linux-x64 and linux-arm64", () => {
  const targets = pkg.scripts.build.split("&&").map((c) => /--target=(\S+)/.exec(c)?.[1]);
  expect(targets).toEqual(["bun-linux-x64", "bun-linux-arm64"]);
  // Every command compiles the workers too.
  for (const c of pkg.scripts.build.split("&&")) expect(c).toContain(" src/cli.ts workers/fetch-peer.ts workers/restore-check.ts ");
});

test.skipIf(buildCommand === undefined)("the native binary from npm run build dumps a simulated mesh, worker included (skipped off linux-x64/arm64)", async () => {
  const argv = [...buildCommand!];
  expect(argv[0]).toBe("bun");
  argv[0] = process.execPath;
  const binary = join(dir, "nara-backup");
  argv[argv.indexOf("--outfile") + 1] = binary;
  const build = Bun.spawnSync(argv, { cwd: root, stdout: "pipe", stderr: "pipe" });
  expect(build.stderr.toString()).not.toContain("error");
  expect(build.exitCode).toBe(0);

  // Run from an empty directory: nothing beside the binary to load by mistake.
  const cwd = mkdtempSync(join(dir, "run-"));
  const version = Bun.spawnSync([binary, "--version"], { cwd, env: {} });
  expect(version.stdout.toString()).toBe(`${pkg.version}\n`);

  const mesh = await startMesh({ peers: 2, events: 300, seed: 12 });
  try {
    const peers = mesh.peers.map((p) => `${p.name}=${p.hostname}:${p.port}`).join(",");
    const proc = Bun.spawn([binary, "dump-events", "--name", mesh.client.name, "--peers", peers, "--page-size", "40", "--workers", "1"], {
      cwd,
      env: { NARA_SOUL: mesh.client.soul },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(err).not.toContain("ModuleNotFound");
    expect(code).toBe(0);
    const ids = new Set(out.split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id));
    expect(ids).toEqual(new Set(mesh.allEvents.map((e) => e.id)));
  } finally {
    await mesh.stop();
  }
});
