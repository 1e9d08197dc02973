/**
 * Compression and encryption throughput of src/io: openOutput (write a
 * backup) and openInput (read it back), for none / zstd / gzip, plain and
 * encrypted, on simulated events. Each measurement runs in a fresh process
 * so that its peak RSS is its own. Prints a Markdown section for
 * bench/RESULTS.md.
 *
 *   bun bench/compression.ts [--mb 128] [--rounds 3]
 */
import { cpus, tmpdir, totalmem } from "node:os";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : Number(process.argv[i + 1]);
};

if (process.argv[2] === "--child") {
  await child();
  process.exit(0);
}

const mb = arg("mb", 128);
const rounds = arg("rounds", 3);
const dir = mkdtempSync(join(tmpdir(), "nara-bench-io-"));
const source = join(dir, "events.jsonl");

try {
  await run(["make", source, String(mb)]);
  const bytes = statSync(source).size;
  type Row = { label: string; ext: string; enc: boolean; write: number[]; read: number[]; size: number; wRss: number; rRss: number };
  const rows: Row[] = [];
  for (const [label, ext] of [["none", "jsonl"], ["zstd (level 1)", "jsonl.zst"], ["gzip (level 6)", "jsonl.gz"]] as const) {
    for (const enc of [false, true]) {
      const row: Row = { label, ext, enc, write: [], read: [], size: 0, wRss: 0, rRss: 0 };
      const target = join(dir, `out.${ext}`);
      for (let r = 0; r < rounds; r++) {
        const w = await run(["write", source, target, enc ? "enc" : "plain"]);
        row.write.push(w.seconds);
        row.wRss = Math.max(row.wRss, w.rssMiB);
        row.size = statSync(target).size;
        const rd = await run(["read", target, String(bytes)]);
        row.read.push(rd.seconds);
        row.rRss = Math.max(row.rRss, rd.rssMiB);
      }
      rows.push(row);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mbps = (s: number) => (bytes / 1e6 / s).toFixed(0);
  const out: string[] = [];
  out.push("## Compression");
  out.push("");
  out.push(
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Bun ${Bun.version}, ` +
      `files in ${tmpdir()}. Command: \`bun bench/compression.ts --mb ${mb} --rounds ${rounds}\` (${(bytes / 1e6).toFixed(0)} MB of simulated events, ` +
      `written through \`openOutput\` in 64 KiB writes, then read back through \`openInput\`, each run in a fresh process; medians of ${rounds}). ` +
      "MB/s are of uncompressed (plaintext) JSON Lines; RSS is the whole process's peak, including the ~40–50 MiB of an idle Bun.",
  );
  out.push("");
  out.push("| output | encrypted | write MB/s | read MB/s | ratio | peak RSS write / read (MiB) |");
  out.push("| --- | --- | --- | --- | --- | --- |");
  for (const r of rows) {
    out.push(`| ${r.label} | ${r.enc ? "yes" : "no"} | ${mbps(median(r.write))} | ${mbps(median(r.read))} | ${(bytes / r.size).toFixed(2)} | ${r.wRss.toFixed(0)} / ${r.rRss.toFixed(0)} |`);
  }
  console.log(out.join("\n"));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function run(args: string[]): Promise<{ seconds: number; rssMiB: number }> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--child", ...args], { stdout: "pipe", stderr: "inherit" });
  const [text, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  if (code !== 0) throw new Error(`child ${args.join(" ")} exited ${code}`);
  return JSON.parse(text.trim().split("\n").at(-1)!);
}

async function child(): Promise<void> {
  const [, , , what, a, b, c] = process.argv;
  let peak = 0;
  const sample = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const started = performance.now();
  if (what === "make") {
    const { generateEvents, generateNaras } = await import("../test/sim/generate.ts");
    const naras = generateNaras(20, 1);
    const sink = Bun.file(a!).writer();
    let n = 0;
    for (let round = 0; n < Number(b) * 1e6; round++) {
      const text = generateEvents({ naras, count: 20000, seed: round + 1 }).map((e) => `${e.raw}\n`).join("");
      sink.write(text);
      n += Buffer.byteLength(text);
    }
    await sink.end();
  } else if (what === "write") {
    const { openOutput } = await import("../src/io/output.ts");
    const out = openOutput(b!, c === "enc" ? { encryptSeed: new Uint8Array(32).fill(7) } : {});
    for await (const chunk of Bun.file(a!).stream()) {
      for (let i = 0; i < chunk.length; i += 65536) await out.write(chunk.subarray(i, i + 65536));
    }
    await out.commit();
  } else if (what === "read") {
    const { openInput } = await import("../src/io/input.ts");
    const { stream } = await openInput(a!, { soul: () => ({ seed: new Uint8Array(32).fill(7) }) });
    let n = 0;
    for await (const chunk of stream) n += chunk.length;
    if (n !== Number(b)) throw new Error(`read ${n} bytes, expected ${b}`);
  }
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sample);
  peak = Math.max(peak, process.memoryUsage().rss);
  console.log(JSON.stringify({ seconds, rssMiB: peak / 2 ** 20 }));
}
