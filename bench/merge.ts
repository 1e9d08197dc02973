/**
 * The merge benchmark: two overlapping sorted backups of about `--mb` MB
 * each (the sorted, streaming path), and one unsorted input made of both
 * shuffled (about 2 x mb, the bounded-memory sort path, --max-memory 32M).
 * Each run is a fresh process running the CLI's main(); it reports its own
 * process.resourceUsage().maxRSS. Checks that every output equals the
 * expected bytes.
 *
 *   bun bench/merge.ts [--mb 50] [--rounds 3] [--max-memory 32M] [--dir DIR]
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { distribute, generateEvents, generateNaras, Rng, type SimEvent } from "../test/sim/generate.ts";

if (process.argv[2] === "--child") {
  // One measured merge: the CLI's main() in this process, then our peak RSS on stderr.
  const { main } = await import("../src/cli.ts");
  const code = await main(process.argv.slice(3));
  process.stderr.write(`\nMEASURE ${JSON.stringify({ code, maxRSSKiB: process.resourceUsage().maxRSS })}\n`);
  process.exit(code);
}

const arg = (name: string, fallback: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1]!;
};
const mb = Number(arg("mb", "50"));
const rounds = Number(arg("rounds", "3"));
const maxMemory = arg("max-memory", "32M");
const dir = arg("dir", join(tmpdir(), `nara-merge-bench-${mb}`));
const root = join(import.meta.dir, "..");
const bun = process.execPath;

const byTsId = (a: SimEvent, b: SimEvent) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const lines = (evs: readonly SimEvent[]) => Buffer.from(evs.map((e) => `${e.raw}\n`).join(""));
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

const files = { a: join(dir, "a.jsonl"), b: join(dir, "b.jsonl"), unsorted: join(dir, "unsorted.jsonl"), expected: join(dir, "expected.jsonl") };
if (!existsSync(files.expected)) {
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  // ~320 bytes per event; with overlap 0.5 each of two peers holds ~3/4 of the events.
  const count = Math.round((mb * 1e6) / 320 / 0.75);
  const events = generateEvents({ naras: generateNaras(8, 11), count, seed: 11, sharedTsRate: 0.2 });
  const [a, b] = distribute(events, 2, { overlap: 0.5, seed: 5 });
  writeFileSync(files.a, lines([...a!].sort(byTsId)));
  writeFileSync(files.b, lines([...b!].sort(byTsId)));
  const all = [...a!, ...b!];
  const rng = new Rng(99);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  writeFileSync(files.unsorted, lines(all));
  writeFileSync(files.expected, lines([...events].sort(byTsId)));
  console.error(`generated ${count} events in ${((performance.now() - t0) / 1000).toFixed(1)} s into ${dir}`);
}
const expectedSha = sha(readFileSync(files.expected));
const size = (p: string) => statSync(p).size;

type Result = { seconds: number; maxRssMiB: number; ok: boolean };
function run(args: string[]): Result {
  const out = join(dir, "out.jsonl");
  const t0 = performance.now();
  // Through sh (not exec'd): on Linux a child's maxRSS starts from its parent's at fork, and this
  // process holds the test data; sh is small, so the measured process starts from sh's.
  const cmd = [bun, import.meta.path, "--child", "merge", ...args, "-o", out, "--quiet"];
  const p = Bun.spawnSync(["sh", "-c", '"$@"; exit $?', "sh", ...cmd], { stderr: "pipe" });
  const seconds = (performance.now() - t0) / 1000;
  const stderr = p.stderr.toString();
  if (p.exitCode !== 0) throw new Error(`merge failed: ${stderr}`);
  const measured = JSON.parse(/MEASURE (.*)/.exec(stderr)![1]!) as { maxRSSKiB: number };
  const ok = sha(readFileSync(out)) === expectedSha;
  rmSync(out, { force: true });
  return { seconds, maxRssMiB: Math.round(measured.maxRSSKiB / 1024), ok };
}

const runsDir = mkdtempSync(join(tmpdir(), "nara-merge-runs-"));
process.on("exit", () => rmSync(runsDir, { recursive: true, force: true }));
const cases = [
  { name: "2 sorted inputs (streaming k-way merge)", args: [files.a, files.b], bytes: size(files.a) + size(files.b) },
  {
    name: `1 unsorted input, --max-memory ${maxMemory} (runs + merge)`,
    args: [files.unsorted, "--presorted=false", "--max-memory", maxMemory, "--temp-dir", runsDir],
    bytes: size(files.unsorted),
  },
  { name: "1 unsorted input, default --max-memory (auto: streams, finds it unsorted, sorts in memory)", args: [files.unsorted], bytes: size(files.unsorted) },
];
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? "?"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Bun ${Bun.version}`);
console.log("| case | input MB | seconds (median) | MB/s | peak RSS MiB | output correct |");
console.log("| --- | --- | --- | --- | --- | --- |");
for (const c of cases) {
  const rs = Array.from({ length: rounds }, () => run(c.args)).sort((x, y) => x.seconds - y.seconds);
  const med = rs[Math.floor(rs.length / 2)]!;
  const mbIn = c.bytes / 1e6;
  console.log(
    `| ${c.name} | ${mbIn.toFixed(1)} | ${med.seconds.toFixed(2)} | ${(mbIn / med.seconds).toFixed(0)} | ${Math.max(...rs.map((r) => r.maxRssMiB))} | ${rs.every((r) => r.ok) ? "yes" : "NO"} |`,
  );
}
