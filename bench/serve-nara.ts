/**
 * The restore benchmark's nara, in its own process so that its CPU time can
 * be measured apart from the client's (bench/restore.ts reads
 * /proc/<pid>/stat). An empty ledger that knows no emitter keys: it learns
 * them from hey-there events, verifies every signed event it can, recomputes
 * every ID (checkIds), one batch at a time (one JS thread). Prints one JSON
 * line {url, stats, name, soul} on stdout and serves until killed; GET on
 * the stats URL answers what it imported.
 *
 *   bun bench/serve-nara.ts
 */
import { sha256 } from "../src/identity/crypto.ts";
import { makeNara } from "../test/sim/generate.ts";
import { startPeer } from "../test/sim/peer.ts";

const nara = makeNara("restore-target", sha256("nara-backup bench restore target"));
const peer = startPeer({ nara, logLimit: 1_000_000, checkIds: true });
const control = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch() {
    const log = peer.stats.importLog;
    return Response.json({
      imports: peer.stats.imports,
      imported: peer.stats.importedEvents,
      held: peer.events.size,
      warnings: log.reduce((n, e) => n + (e.warnings ?? 0), 0),
      refused: log.filter((e) => e.outcome !== 200).length,
      idMismatches: peer.stats.idMismatches ?? 0,
    });
  },
});
process.stdout.write(`${JSON.stringify({ url: peer.url, stats: `http://127.0.0.1:${control.port}/`, name: nara.name, soul: nara.soul })}\n`);
process.on("SIGTERM", () => process.exit(0));
