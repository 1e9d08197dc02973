/**
 * Honest failures: a full disk (a small tmpfs mounted here) and Ctrl-C, as
 * the user sees them: one line naming the cause and the path, exit 1 or
 * 130, nothing under the final name, no temporary file left.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describeError, ExitCode, NaraError } from "../src/errors.ts";
import { TempSealer } from "../src/io/tempfile.ts";
import { openOutput } from "../src/io/output.ts";
import { importUrl } from "../src/restore/import.ts";
import { restoreEvents } from "../src/restore/restore.ts";
import { makeNara } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { startPeer } from "./sim/peer.ts";

const dir = mkdtempSync(join(tmpdir(), "nara-failures-"));
const full = join(dir, "full");
mkdirSync(full);
// A full disk: a 256 KiB tmpfs (the backups below are ~1 MB). Mounted here, before the tests are defined, to know which to skip.
const mounted = Bun.spawnSync(["mount", "-t", "tmpfs", "-o", "size=256k,mode=1777", "tmpfs", full], { stderr: "pipe" });
/** Why the full-disk tests cannot run here, if they cannot. */
const noMount =
  mounted.exitCode === 0
    ? undefined
    : `cannot mount a tmpfs here (${mounted.stderr.toString().trim() || `mount exited ${mounted.exitCode}`}): the full-disk tests are skipped`;
if (noMount) console.warn(`SKIP: ${noMount}`);
let mesh: SimMesh;

beforeAll(async () => {
  mesh = await startMesh({ peers: 3, events: 3000, seed: 31, faults: [{ hangAfterPages: 1 }] });
});
afterAll(async () => {
  await mesh.stop();
  if (!noMount) Bun.spawnSync(["umount", full]);
  rmSync(dir, { recursive: true, force: true });
});

type Result = { code: number; stdout: string; stderr: string };

const cli = (args: string[], opts: { env?: Record<string, string>; stdin?: Uint8Array; until?: string; signal?: NodeJS.Signals } = {}): Promise<Result> =>
  // stdin through a pipe, as from `cat backup |` (bytes would arrive as a file).
  runCli(args, { cwd: dir, env: { NARA_SOUL: mesh.client.soul, ...opts.env }, pipe: opts.stdin, until: opts.until, signal: opts.signal });

const healthy = () => mesh.peers.slice(1).map((p) => `${p.name}=${p.hostname}:${p.port}`).join(",");
const all = () => mesh.peers.map((p) => `${p.name}=${p.hostname}:${p.port}`).join(",");
const listing = (d: string) => readdirSync(d).sort();

describe("stdout spool", () => {
  test("stdout output is written to a private sealed file as it comes, copied out on commit, removed on abort", async () => {
    const temp = mkdtempSync(join(dir, "spool-"));
    const out = openOutput("-", { spool: true, tempDir: temp });
    const line = new TextEncoder().encode(`{"id":"${"a".repeat(64)}","ts":1}\n`.repeat(1000));
    for (let i = 0; i < 8; i++) await out.write(line);
    const [spoolDir] = listing(temp);
    expect(spoolDir).toStartWith("nara-spool-");
    expect(statSync(join(temp, spoolDir!)).mode & 0o777).toBe(0o700);
    const file = join(temp, spoolDir!, "stdout");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // On disk, not in memory; and sealed: not a byte of the events in the clear.
    expect(statSync(file).size).toBeGreaterThanOrEqual(8 * line.length);
    expect(readFileSync(file).includes(Buffer.from("a".repeat(64)))).toBe(false);
    out.abort();
    expect(listing(temp)).toEqual([]);
  });

  test("a dump to stdout is the same backup as -o, and leaves no temporary file", async () => {
    const temp = mkdtempSync(join(dir, "cli-spool-"));
    const file = join(dir, "healthy.jsonl");
    const a = await cli(["dump-events", "-name", mesh.client.name, "-peers", healthy(), "-o", file]);
    const b = await cli(["dump-events", "-name", mesh.client.name, "-peers", healthy(), "--temp-dir", temp]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(b.stdout.length).toBeGreaterThan(100_000);
    expect(b.stdout).toBe(readFileSync(file, "utf8"));
    expect(listing(temp)).toEqual([]);
  });
});

describe("Ctrl-C", () => {
  test("dump-events -o: says no backup was written, exit 130, no file, no temporary file", async () => {
    const d = mkdtempSync(join(dir, "int-"));
    const r = await cli(["dump-events", "-name", mesh.client.name, "-peers", all(), "-o", join(d, "b.jsonl"), "--timeout", "60s", "--verbose", "--page-size", "100"], {
      until: ": page 1,",
      signal: "SIGINT",
    });
    expect(r.code).toBe(ExitCode.interrupted);
    expect(r.stderr).toContain("interrupted: no backup written");
    expect(listing(d)).toEqual([]);
  });

  test("dump-events to stdout: the same, and the spool is removed", async () => {
    const temp = mkdtempSync(join(dir, "int-spool-"));
    const r = await cli(["dump-events", "-name", mesh.client.name, "-peers", all(), "--temp-dir", temp, "--timeout", "60s", "--verbose", "--page-size", "100"], {
      until: ": page 1,",
      signal: "SIGINT",
    });
    expect(r.code).toBe(ExitCode.interrupted);
    expect(r.stderr).toContain("interrupted: no backup written");
    expect(r.stdout).toBe("");
    expect(listing(temp)).toEqual([]);
  });
});

describe("a full disk", () => {
  const ENOSPC = (path: string) => new RegExp(`^error: cannot write ${path.replace(/[/.]/g, "\\$&")}\\S*: ENOSPC: no space left$`, "m");

  test.skipIf(noMount !== undefined)("dump-events -o: one line naming the cause and the file, a hint, no stack; exit 1; nothing left", async () => {
    const target = join(full, "b.jsonl");
    const r = await cli(["dump-events", "-name", mesh.client.name, "-peers", healthy(), "-o", target]);
    expect(r.code).toBe(ExitCode.internal);
    expect(r.stderr).toMatch(ENOSPC(target));
    expect(r.stderr).toContain("hint: free some space there");
    expect(r.stderr).not.toContain("    at ");
    expect(listing(full)).toEqual([]);
  });

  test.skipIf(noMount !== undefined)("dump-events to stdout with the spool on the full disk: the same, nothing on stdout", async () => {
    const r = await cli(["dump-events", "-name", mesh.client.name, "-peers", healthy(), "--temp-dir", full]);
    expect(r.code).toBe(ExitCode.internal);
    expect(r.stderr).toMatch(ENOSPC(`temporary file ${full}/nara-spool-`));
    expect(r.stderr).not.toContain("    at ");
    expect(r.stdout).toBe("");
    expect(listing(full)).toEqual([]);
  });

  test.skipIf(noMount !== undefined)("a temporary file created on a disk that is already full: the same one line, from its first write", () => {
    const filler = join(full, "filler");
    try {
      // Fill the tmpfs to the last byte, so that even the 4-byte header of a new run cannot be written.
      try {
        writeFileSync(filler, Buffer.alloc(512 << 10));
      } catch (err) {
        expect((err as { code?: string }).code).toBe("ENOSPC");
      }
      let thrown: unknown;
      try {
        new TempSealer().writer(join(full, "run-1"));
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(NaraError);
      expect(`error: ${describeError(thrown)}`).toMatch(ENOSPC(`temporary file ${full}/run-1`));
    } finally {
      rmSync(filler, { force: true });
      rmSync(join(full, "run-1"), { force: true });
    }
    expect(listing(full)).toEqual([]);
  });

  test.skipIf(noMount !== undefined)("dump-events spilling past --max-memory onto the full disk: the same, no output file", async () => {
    const target = join(dir, "spilled.jsonl");
    const r = await cli(["dump-events", "-name", mesh.client.name, "-peers", healthy(), "-o", target, "--max-memory", "100K", "--temp-dir", full, "--page-size", "200"]);
    expect(r.code).toBe(ExitCode.internal);
    expect(r.stderr).toMatch(ENOSPC(`temporary file ${full}/nara-dump-`));
    expect(r.stderr).not.toContain("    at ");
    expect(existsSync(target)).toBe(false);
    expect(listing(dir).filter((f) => f.includes("spilled"))).toEqual([]);
    expect(listing(full)).toEqual([]);
  });

  test.skipIf(noMount !== undefined)("merge -o onto the full disk, and merge spilling its runs there", async () => {
    const a = join(dir, "merge-a.jsonl");
    const d = await cli(["dump-events", "-name", mesh.client.name, "-peers", healthy(), "-o", a]);
    expect(d.code).toBe(0);
    const target = join(full, "m.jsonl");
    const r = await cli(["merge", a, a, "-o", target]);
    expect(r.code).toBe(ExitCode.internal);
    expect(r.stderr).toMatch(ENOSPC(target));
    expect(r.stderr).not.toContain("    at ");
    expect(listing(full)).toEqual([]);
    const s = await cli(["merge", a, a, "--presorted=false", "--max-memory", "64K", "--temp-dir", full, "-o", join(dir, "m.jsonl")]);
    expect(s.code).toBe(ExitCode.internal);
    expect(s.stderr).toMatch(ENOSPC(`temporary file ${full}/nara-merge-`));
    expect(s.stderr).not.toContain("    at ");
    expect(existsSync(join(dir, "m.jsonl"))).toBe(false);
    expect(listing(full)).toEqual([]);
  });

  test.skipIf(noMount !== undefined)("restore-events copying stdin to a full TMPDIR", async () => {
    const data = readFileSync(join(dir, "healthy.jsonl"));
    const r = await cli(["restore-events", "--nara-url", "http://127.0.0.1:9"], { env: { TMPDIR: full }, stdin: data });
    expect(r.code).toBe(ExitCode.internal);
    expect(r.stderr).toMatch(new RegExp(`^error: cannot copy stdin to ${full.replace(/[/.]/g, "\\$&")}/nara-restore-\\S+: ENOSPC: no space left$`, "m"));
    expect(r.stderr).not.toContain("    at ");
    expect(listing(full)).toEqual([]);
  });
});

describe("Ctrl-C in restore", () => {
  test("restore says what was restored and the --skip that resumes", async () => {
    const file = join(dir, "restore-int.jsonl");
    writeFileSync(file, mesh.allEvents.slice(0, 1500).map((e) => `${e.raw}\n`).join(""));
    const target = startPeer({ nara: makeNara("int-target", new Uint8Array(32).fill(7)), knownKeys: {} });
    const stop = new AbortController();
    try {
      const s = await restoreEvents(
        {
          inputs: [file],
          url: importUrl(target.url),
          signer: { identity: target.identity, bondChecked: true, source: "env" },
          batchSize: 500,
          timeoutMs: 10_000,
          retries: 0,
          signal: stop.signal,
        },
        { onBatch: (b) => b.index === 2 && stop.abort() },
      );
      expect(s.exitCode).toBe(ExitCode.interrupted);
      expect(s.failure?.message).toBe("interrupted: 1000 event(s) restored in 2 batch(es); --skip 1000 resumes");
    } finally {
      await target.stop();
    }
  });
});
