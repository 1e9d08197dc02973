#!/usr/bin/env bun
/**
 * `npm run demo`: a real dump and restore against a simulated local mesh.
 * Starts five simulated naras on 127.0.0.1, runs the real CLI to dump them to
 * a file, restores that file into a fresh, empty nara, dumps the fresh nara
 * to show nothing was lost or altered; then, briefly, on the same mesh: a
 * compressed and encrypted dump, verify catching a tampered line, stats,
 * merge of two partial dumps, and a stash round trip. It stops everything it
 * started.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateNaras } from "./generate.ts";
import { startMesh } from "./mesh.ts";
import { startPeer } from "./peer.ts";
import { cli as runCli } from "../helpers/cli.ts";

const dir = mkdtempSync(join(tmpdir(), "nara-backup-demo-"));
const backup = join(dir, "backup.jsonl");
const again = join(dir, "restored.jsonl");
const say = (s: string) => process.stderr.write(`\n\x1b[1m== ${s}\x1b[0m\n`);

async function cli(args: string[], env: Record<string, string>): Promise<number> {
  process.stderr.write(`$ nara-backup ${args.join(" ")}\n`);
  return (await runCli(args, { env: { ...process.env, ...env }, inherit: true })).code;
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

  const client = { NARA_SOUL: mesh.client.soul };
  const sealed = join(dir, "backup.jsonl.zst");
  say("dump-events -o backup.jsonl.zst --encrypt: compressed, then encrypted with the soul's key");
  failed ||= (await cli(["dump-events", "-name", mesh.client.name, "-peers", mesh.peersArg, "-o", sealed, "-encrypt", "-quiet"], client)) !== 0;
  process.stderr.write(`${statSync(sealed).size} bytes instead of ${statSync(backup).size}; it starts with ${JSON.stringify((await Bun.file(sealed).slice(0, 8).text()))}\n`);

  say("verify: every line an event, every ID recomputed, every signature checked (the encrypted file, with the soul)");
  failed ||= (await cli(["verify", sealed, "-quiet"], client)) !== 0;

  say("verify a copy with one changed digit on line 100: caught, exit 7");
  const tampered = join(dir, "tampered.jsonl");
  const rows = (await Bun.file(backup).text()).split("\n");
  rows[99] = rows[99]!.replace(/("ts":\d*)(\d)/, (_, head: string, d: string) => `${head}${(Number(d) + 1) % 10}`);
  await Bun.write(tampered, rows.join("\n"));
  const verifyCode = await cli(["verify", tampered, "-quiet"], {});
  process.stderr.write(`exit ${verifyCode}\n`);
  failed ||= verifyCode !== 7;

  say("stats: what the encrypted backup holds");
  failed ||= (await cli(["stats", sealed, "-top", "3"], client)) !== 0;

  say("merge: two dumps of overlapping halves of the mesh give the whole backup again");
  const all = mesh.peersArg.split(",");
  const [a, b, merged] = ["first.jsonl", "second.jsonl", "merged.jsonl"].map((f) => join(dir, f));
  failed ||= (await cli(["dump-events", "-name", mesh.client.name, "-peers", all.slice(0, 3).join(","), "-o", a, "-quiet"], client)) !== 0;
  failed ||= (await cli(["dump-events", "-name", mesh.client.name, "-peers", all.slice(2).join(","), "-o", b, "-quiet"], client)) !== 0;
  failed ||= (await cli(["merge", a, b, "-o", merged], {})) !== 0;
  const mergedSame = (await Bun.file(merged).text()) === (await Bun.file(backup).text());
  process.stderr.write(`the merge ${mergedSame ? "is byte-identical to" : "DIFFERS from"} the full backup\n`);
  failed ||= !mergedSame;

  const owner = mesh.peers[0]!;
  const stashFile = join(dir, `${owner.name}.stash`);
  const stash = '{"plants":{"basil":"water on monday"},"todo":["backup the stash"]}';
  say(`the stash: ${owner.name}'s owner keeps ${stash} with 3 confidants`);
  await fetch(`${owner.url}/api/stash/update`, { method: "POST", body: stash });
  const ownerSoul = { NARA_SOUL: owner.nara.soul };
  failed ||= (await cli(["dump-stash", "-nara-url", owner.url, "-name", owner.name, "-o", stashFile], ownerSoul)) !== 0;
  // A restart while the confidants are away: the nara comes back without its stash.
  owner.stash.restart(Number.MAX_SAFE_INTEGER);
  say(`${owner.name} restarts and its confidants are away: restore-stash gives it back`);
  failed ||= (await cli(["restore-stash", "-nara-url", owner.url, "-name", owner.name, stashFile], ownerSoul)) !== 0;
  const back = await (await fetch(`${owner.url}/api/stash/status`)).json();
  const stashSame = JSON.stringify(back.my_stash?.data) === JSON.stringify(JSON.parse(stash));
  process.stderr.write(`${owner.name} shows ${JSON.stringify(back.my_stash?.data)}: ${stashSame ? "the stash it had" : "NOT the stash it had"}\n`);
  failed ||= !stashSame;
} finally {
  await Promise.all([mesh.stop(), fresh.stop()]);
  rmSync(dir, { recursive: true, force: true });
}
say(failed ? "demo FAILED" : "demo done: everything it started is stopped");
process.exit(failed ? 1 : 0);
