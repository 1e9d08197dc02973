#!/usr/bin/env bun
/**
 * `npm run demo`: a real dump and restore against a simulated local mesh.
 * Starts five simulated naras on 127.0.0.1, runs the real CLI to dump them to
 * a file, restores that file into a fresh, empty nara, dumps the fresh nara
 * to show nothing was lost or altered, and stops everything it started.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateNaras } from "./generate.ts";
import { startMesh } from "./mesh.ts";
import { startPeer } from "./peer.ts";

const root = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "nara-backup-demo-"));
const backup = join(dir, "backup.jsonl");
const again = join(dir, "restored.jsonl");
const say = (s: string) => process.stderr.write(`\n\x1b[1m== ${s}\x1b[0m\n`);

async function cli(args: string[], env: Record<string, string>): Promise<number> {
  process.stderr.write(`$ nara-backup ${args.join(" ")}\n`);
  const proc = Bun.spawn([process.execPath, join(root, "src/cli.ts"), ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  return proc.exited;
}

say("starting a simulated mesh: 5 naras on 127.0.0.1, 20 000 events, some sharing a timestamp, 30 ms latency");
// A history that ends about now (0.5 s between events on average), as a live mesh's would.
const startNs = BigInt(Date.now() - 20_000 * 500) * 1_000_000n;
const mesh = await startMesh({ peers: 5, events: 20_000, seed: 2026, pageLatencyMs: 30, generate: { sharedTsRate: 0.2, startNs } });
// A brand-new nara to restore into: it knows the mesh, but holds no events.
const fresh = startPeer({ nara: generateNaras(7, 99)[6]!, naras: mesh.naras, knownKeys: { [mesh.client.name]: mesh.client.publicKey } });
let failed = false;
try {
  for (const p of mesh.peers) process.stderr.write(`  ${p.name.padEnd(14)} ${p.url}  ${p.events.size} events\n`);

  say(`dump-events: back up the whole mesh as ${mesh.client.name} (soul from NARA_SOUL)`);
  const dumpCode = await cli(
    ["dump-events", "-name", mesh.client.name, "-peers", mesh.peersArg, "-o", backup, "-page-size", "1000"],
    { NARA_SOUL: mesh.client.soul },
  );
  const lines = (await Bun.file(backup).text()).split("\n").filter(Boolean).length;
  process.stderr.write(`exit ${dumpCode}; ${backup}: ${lines} events (the mesh holds ${mesh.allEvents.length} distinct events)\n`);
  failed ||= dumpCode !== 0 || lines !== mesh.allEvents.length;

  say(`restore-events: import the backup into ${fresh.name}, a fresh nara (only its own soul can)`);
  const restoreCode = await cli(["restore-events", "-nara-url", fresh.url, "-name", fresh.name, backup], { NARA_SOUL: fresh.nara.soul });
  process.stderr.write(`exit ${restoreCode}; ${fresh.name} now holds ${fresh.events.size} events\n`);
  failed ||= restoreCode !== 0;

  say(`restore-events again: importing twice is harmless (everything is a duplicate)`);
  failed ||= (await cli(["restore-events", "-nara-url", fresh.url, "-name", fresh.name, backup], { NARA_SOUL: fresh.nara.soul })) !== 0;

  say(`dump-events from ${fresh.name} alone: the same bytes come back`);
  const code = await cli(
    ["dump-events", "-name", mesh.client.name, "-peers", `${fresh.name}=${fresh.hostname}:${fresh.port}`, "-o", again, "-quiet"],
    { NARA_SOUL: mesh.client.soul },
  );
  const same = (await Bun.file(backup).text()) === (await Bun.file(again).text());
  process.stderr.write(`exit ${code}; restored dump ${same ? "is byte-identical to" : "DIFFERS from"} the backup\n`);
  failed ||= code !== 0 || !same;
} finally {
  await Promise.all([mesh.stop(), fresh.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
say(failed ? "demo FAILED" : "demo done: everything it started is stopped");
process.exit(failed ? 1 : 0);
