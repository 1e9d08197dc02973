/**
 * Memory and time of dump-events against broken and hostile peers (issue
 * #10): the CLI in a fresh process per case, on a simulated mesh in its own
 * process. Peak RSS of the whole CLI process; sha256 of the output.
 *
 *   bun bench/hostile.ts CASE [--peers 8] [--per-peer 60000] [--timeout 40s] [--max-memory 64M]
 *
 * Cases (each starts its own mesh, and is short enough for the shared lock):
 *   outputs   healthy mesh: -o FILE, then stdout (redirected to a file)
 *   endless   the first peer answers its 3rd page with a body that never ends (~100 MB/s)
 *   hang      healthy -o FILE, then the first peer hanging after 3 pages: unconstrained, then with --max-memory
 *   hang-tight  only the --max-memory run of `hang`
 *   big       a healthy mesh dumped with --max-memory (256M by default)
 */
import { createReadStream, mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { spawnMesh } from "./mesh-process.ts";

const which = process.argv[2] ?? "outputs";
const opt = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
};
const bun = process.execPath;
const here = import.meta.dir;
const dir = mkdtempSync(join(tmpdir(), "nara-bench-hostile-"));
const log = (m: string) => process.stderr.write(`${m}\n`);

type Mesh = { peers: { name: string; url: string }[]; name: string; soul: string; unique: number; expectedSha256: string; stop(): void };

async function startMesh(firstFaults: object): Promise<Mesh> {
  const m = await spawnMesh(["--peers", opt("peers", "8"), "--per-peer", opt("per-peer", "60000"), "--first-faults", JSON.stringify(firstFaults)]);
  return { ...m.info, stop: m.stop } as Mesh;
}

async function sha256(path: string): Promise<string> {
  const h = new Bun.CryptoHasher("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

type Result = { label: string; code: number; seconds: number; rssMiB: number; sha: string; stderrTail: string };

async function dump(mesh: Mesh, label: string, extra: string[], toStdout = false): Promise<Result> {
  const out = join(dir, "out.jsonl");
  const peers = mesh.peers.map((p) => `${p.name}=${new URL(p.url).host}`).join(",");
  const t0 = performance.now();
  const args = [bun, join(here, "../src/cli.ts"), "dump-events", "--name", mesh.name, "--peers", peers, ...(toStdout ? [] : ["-o", out]), ...extra];
  const p = Bun.spawn(args, { env: { ...process.env, NARA_SOUL: mesh.soul }, stdout: toStdout ? Bun.file(out) : "ignore", stderr: "pipe" });
  const stderr = await new Response(p.stderr).text();
  const code = await p.exited;
  const seconds = (performance.now() - t0) / 1000;
  const sha = await sha256(out).catch(() => "(none)");
  rmSync(out, { force: true });
  const r = { label, code, seconds, rssMiB: Math.round((p.resourceUsage()?.maxRSS ?? 0) / 2 ** 20), sha, stderrTail: stderr.trim().split("\n").slice(-2).join(" / ") };
  log(`${label}: exit ${code}, ${seconds.toFixed(1)} s, ${r.rssMiB} MiB peak RSS, sha ${sha.slice(0, 12)} — ${r.stderrTail}`);
  return r;
}

const results: Result[] = [];
let expected = "";
try {
  if (which === "outputs") {
    const mesh = await startMesh({});
    expected = mesh.expectedSha256;
    results.push(await dump(mesh, "healthy -o FILE", ["--quiet"]));
    results.push(await dump(mesh, "healthy stdout", ["--quiet"], true));
    mesh.stop();
  } else if (which === "endless") {
    const mesh = await startMesh({ endlessAfterPages: 2 });
    results.push(await dump(mesh, "endless-body first peer, -o FILE", ["--timeout", opt("timeout", "3m")]));
    mesh.stop();
  } else if (which === "hang" || which === "hang-tight") {
    // A fresh mesh per run: the hang counts the pages its peer served.
    const timeout = opt("timeout", "40s");
    const runs: [string, string[]][] = [[`hanging first peer, --timeout ${timeout} --max-memory ${opt("max-memory", "64M")}`, ["--max-memory", opt("max-memory", "64M")]]];
    if (which === "hang") runs.unshift([`hanging first peer, --timeout ${timeout}`, []]);
    // The healthy -o run first, as the yardstick in the same run.
    const healthy = await startMesh({});
    expected = healthy.expectedSha256;
    results.push(await dump(healthy, "healthy -o FILE", ["--quiet"]));
    healthy.stop();
    for (const [label, extra] of runs) {
      const mesh = await startMesh({ hangAfterPages: 3 });
      results.push(await dump(mesh, label, ["--timeout", timeout, ...extra]));
      mesh.stop();
    }
  } else if (which === "big") {
    // Run with --peers 32 --per-peer 125000 for the 2 M-event mesh (generating it takes minutes).
    const mesh = await startMesh({});
    expected = mesh.expectedSha256;
    results.push(await dump(mesh, `${mesh.unique} events, --max-memory ${opt("max-memory", "256M")}`, ["--max-memory", opt("max-memory", "256M")]));
    mesh.stop();
  } else throw new Error(`unknown case ${which}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

console.log(`Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}. Case \`${which}\`, ${opt("peers", "8")} peers × ${opt("per-peer", "60000")} events.\n`);
console.log("| run | exit | wall s | peak RSS MiB | × first run | output sha256 |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const r of results) {
  const ratio = (r.rssMiB / results[0]!.rssMiB).toFixed(2);
  console.log(`| ${r.label} | ${r.code} | ${r.seconds.toFixed(1)} | ${r.rssMiB} | ${ratio} | ${r.sha.slice(0, 16)}${expected && r.sha === expected ? " (expected)" : ""} |`);
}
