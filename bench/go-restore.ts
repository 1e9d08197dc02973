/**
 * The competitor of bench/restore.ts: the Go tool's restore algorithm in one
 * JS thread. Every line is decoded (Go unmarshals each into its struct:
 * JSON.parse here) and kept in memory, then batches of 2000 are encoded
 * (json.Marshal: JSON.stringify), signed and sent one after another, each
 * waiting for its answer. No validation, no hey-there pass, no dedup.
 * JSON.stringify rounds ts beyond 2^53 where Go's encoder does not: the nara
 * then counts those signatures as failing (the same verify work) and stores
 * rounded timestamps; this client exists to be timed, never used.
 * With --raw it sends the lines as read instead of re-encoding them
 * (cheaper than the Go tool: a stricter baseline, with exact bytes).
 *
 *   NARA_SOUL=... bun bench/go-restore.ts URL NAME FILE [--raw]
 * Prints {"imported","duplicates","warnings","batches"} on stdout.
 */
import { parseSoul } from "../src/identity/soul.ts";
import { signImport } from "../src/mesh/auth.ts";

const [url, name, file] = process.argv.slice(2) as [string, string, string];
const raw = process.argv.includes("--raw");
const identity = parseSoul(process.env.NARA_SOUL!, name);
const events: unknown[] = [];
const lines: string[] = [];
const ids: string[] = [];
for (const line of (await Bun.file(file).text()).split("\n")) {
  if (line.trim() === "") continue;
  const e = JSON.parse(line) as { id: string };
  ids.push(e.id);
  if (raw) lines.push(line);
  else events.push(e);
}
const totals = { imported: 0, duplicates: 0, warnings: 0, batches: 0 };
for (let i = 0; i < ids.length; i += 2000) {
  const batchIds = ids.slice(i, i + 2000);
  const ts = Math.floor(Date.now() / 1000);
  const sig = signImport(identity, ts, batchIds);
  const body = raw
    ? `{"events":[${lines.slice(i, i + 2000).join(",")}],"ts":${ts},"sig":"${sig}"}`
    : JSON.stringify({ events: events.slice(i, i + 2000), ts, sig });
  const res = await fetch(`${url}/api/events/import`, { method: "POST", body, headers: { "Content-Type": "application/json" } });
  const j = (await res.json()) as { success: boolean; imported: number; duplicates: number; warnings?: number };
  if (!j.success) throw new Error(`batch ${totals.batches + 1}: HTTP ${res.status}`);
  totals.imported += j.imported;
  totals.duplicates += j.duplicates;
  totals.warnings += j.warnings ?? 0;
  totals.batches++;
}
process.stdout.write(`${JSON.stringify(totals)}\n`);
