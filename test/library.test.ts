/**
 * The library without the CLI: every function src/index.ts exports for a
 * command runs from plain options and returns its summary. A dump of a
 * simulated mesh is verified, counted, merged with itself and restored into
 * a fresh nara, all through the package's entry point.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { backupStats, dumpEvents, ExitCode, mergeBackups, NaraError, restoreEvents, verifyBackups } from "../src/index.ts";
import { sha256 } from "../src/identity/crypto.ts";
import { importUrl } from "../src/restore/import.ts";
import { expectedDump } from "./helpers/dump.ts";
import { makeNara } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { startPeer } from "./sim/peer.ts";

let mesh: SimMesh;
let dir: string;

beforeAll(async () => {
  mesh = await startMesh({ peers: 3, events: 1500, seed: 41 });
  dir = mkdtempSync(join(tmpdir(), "nara-library-"));
});
afterAll(async () => {
  await mesh.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("src/index.ts", () => {
  test("a dump with no fetch thread is refused before any work, not left waiting", async () => {
    const err = await dumpEvents({ peers: [], name: mesh.client.name, soul: mesh.client.soul, workers: 0, output: join(dir, "none.jsonl") }).catch((e) => e);
    expect(err).toBeInstanceOf(NaraError);
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(existsSync(join(dir, "none.jsonl"))).toBe(false);
  });

  test("dump (its settings, workers and concurrency defaulted), verify, stats, merge and restore, as functions", async () => {
    const backup = join(dir, "backup.jsonl");
    const dumped = await dumpEvents({
      peers: mesh.peers.map((p) => ({ name: p.name, url: p.url })),
      name: mesh.client.name,
      soul: mesh.client.soul,
      settings: { backoffMs: 10 },
      output: backup,
    });
    const expected = expectedDump(mesh.allEvents);
    const unique = expected.split("\n").length - 1;
    expect(dumped.exitCode).toBe(ExitCode.ok);
    expect(readFileSync(backup, "utf8")).toBe(expected);

    const report = await verifyBackups({ inputs: [backup], threads: 0 });
    expect(report.ok).toBe(true);
    expect(report.total.events).toBe(unique);
    expect(report.errors).toBe(0);

    const stats = await backupStats({ inputs: [backup] });
    expect(stats.events).toBe(unique);
    expect(stats.duplicates).toBe(0);

    const merged = join(dir, "merged.jsonl");
    const summary = await mergeBackups({ inputs: [backup, backup], output: merged });
    expect(summary.written).toBe(unique);
    expect(summary.duplicates).toBe(unique);
    expect(readFileSync(merged, "utf8")).toBe(expected);

    const target = startPeer({ nara: makeNara("fresh", sha256("library:fresh")), knownKeys: { [mesh.client.name]: mesh.client.publicKey } });
    try {
      const restored = await restoreEvents({
        inputs: [merged],
        url: importUrl(target.url),
        signer: { identity: target.identity, bondChecked: true, source: "env" },
        batchSize: 500,
        timeoutMs: 10_000,
        retries: 0,
      });
      expect(restored.exitCode).toBe(ExitCode.ok);
      expect(target.events.size).toBe(unique);
    } finally {
      await target.stop();
    }
  });
});
