/**
 * Issue 13: one absurd line among normal ones. Every reading command runs
 * on the same backup with and without a --size MB line of "a"s in the
 * middle (plain; verify and stats also on its .zst and encrypted forms),
 * each in a fresh process: wall time, peak RSS, and whether it named the
 * line. "One pass" is the time to stream the file's bytes and find its
 * newlines, in this process.
 *
 *   bun bench/long-line.ts [--events 50000] [--size 150] [--only LABEL-PART]
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { encryptBytes } from "../test/helpers/encrypt.ts";
import { generateEvents, generateNaras, makeNara } from "../test/sim/generate.ts";
import { sha256 } from "../src/identity/crypto.ts";

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const count = arg("events", 50_000);
const sizeMB = arg("size", 150);

const dir = mkdtempSync(join(tmpdir(), "nara-long-line-bench-"));
const CLI = join(import.meta.dir, "../src/cli.ts");
const nara = makeNara("bench", sha256("long-line-bench"));

try {
  const raws = generateEvents({ naras: generateNaras(8, 3), count, seed: 3 }).map((e) => e.raw);
  const half = raws.length >> 1;
  const head = Buffer.from(raws.slice(0, half).map((l) => `${l}\n`).join(""));
  const tail = Buffer.from(raws.slice(half).map((l) => `${l}\n`).join(""));
  const long = Buffer.alloc(sizeMB * 1_000_000 + 1, 0x61);
  long[long.length - 1] = 0x0a;
  const longLineNo = half + 1;
  const normal = Buffer.concat([head, tail]);
  const withLong = Buffer.concat([head, long, tail]);
  const files: Record<string, string> = {};
  const put = (name: string, data: Uint8Array) => writeFileSync((files[name] = join(dir, name)), data);
  put("base.jsonl", normal);
  put("long.jsonl", withLong);
  put("base.jsonl.zst", zstdCompressSync(normal));
  put("long.jsonl.zst", zstdCompressSync(withLong));
  put("base.jsonl.enc", encryptBytes(nara.identity.seedBytes(), normal));
  put("long.jsonl.enc", encryptBytes(nara.identity.seedBytes(), withLong));

  // One pass over the bytes: stream the file and find its newlines.
  const onePass = async (path: string): Promise<number> => {
    const t = performance.now();
    let n = 0;
    for await (const c of Bun.file(path).stream() as unknown as AsyncIterable<Uint8Array>) {
      for (let i = c.indexOf(0x0a); i !== -1; i = c.indexOf(0x0a, i + 1)) n++;
    }
    if (n < count) throw new Error("short read");
    return (performance.now() - t) / 1000;
  };
  const passLong = await onePass(files["long.jsonl"]!);

  type Run = { seconds: number; rssMiB: number; code: number; named: boolean };
  const run = async (args: (f: string) => string[], file: string): Promise<Run> => {
    const t = performance.now();
    // GNU time's %M: the child's own peak RSS (KiB), on stderr's last line.
    const p = Bun.spawn(["/usr/bin/time", "-f", "%M", process.execPath, CLI, ...args(file)], {
      env: { ...process.env, NARA_SOUL: nara.soul, NO_COLOR: "1" },
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
    });
    const [, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    const seconds = (performance.now() - t) / 1000;
    const rssKiB = Number(stderr.trimEnd().split("\n").at(-1));
    const named = stderr.includes(`:${longLineNo}: line of ${sizeMB * 1_000_000} bytes, longer than any event (limit 1 MiB)`);
    return { seconds, rssMiB: Math.round(rssKiB / 1024), code, named };
  };
  const out = join(dir, "out.jsonl");
  const commands: [string, string, (f: string) => string[]][] = [
    ["restore-events --dry-run --skip-invalid", "jsonl", (f) => ["restore-events", "--nara-url", "http://127.0.0.1:9", "--dry-run", "--skip-invalid", "--quiet", f]],
    ["verify", "jsonl", (f) => ["verify", "--quiet", f]],
    ["verify (.zst)", "jsonl.zst", (f) => ["verify", "--quiet", f]],
    ["verify (encrypted)", "jsonl.enc", (f) => ["verify", "--quiet", f]],
    ["stats", "jsonl", (f) => ["stats", f]],
    ["stats (.zst)", "jsonl.zst", (f) => ["stats", f]],
    ["stats (encrypted)", "jsonl.enc", (f) => ["stats", f]],
    ["merge --skip-invalid", "jsonl", (f) => ["merge", "--skip-invalid", f, "-o", out]],
    ["merge --skip-invalid (.zst)", "jsonl.zst", (f) => ["merge", "--skip-invalid", f, "-o", out]],
    ["dump-events --ids-from", "jsonl", (f) => ["dump-events", "--name", "bench", "--peers", "x=127.0.0.1:9", "--timeout", "2s", "--ids-from", f, "-o", out]],
  ];
  console.log(`${count} events (${(normal.length / 1e6).toFixed(1)} MB) + one line of ${sizeMB} MB at line ${longLineNo}; one pass over the long file: ${passLong.toFixed(2)} s`);
  console.log("| command | without s | with s | extra s | extra / one pass | RSS without MiB | RSS with MiB | names the line |");
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
  const only = process.argv.indexOf("--only");
  for (const [label, ext, args] of commands) {
    if (only > 0 && !label.includes(process.argv[only + 1]!)) continue;
    const base = await run(args, files[`base.${ext}`]!);
    const withIt = await run(args, files[`long.${ext}`]!);
    const extra = withIt.seconds - base.seconds;
    console.log(
      `| ${label} | ${base.seconds.toFixed(2)} | ${withIt.seconds.toFixed(2)} | ${extra.toFixed(2)} | ${(extra / passLong).toFixed(1)} | ${base.rssMiB} | ${withIt.rssMiB} | ${withIt.named ? "yes" : "NO"} (exit ${withIt.code}) |`,
    );
  }
  console.log(`files: ${Object.entries(files).map(([n, p]) => `${n} ${(statSync(p).size / 1e6).toFixed(1)} MB`).join(", ")}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
