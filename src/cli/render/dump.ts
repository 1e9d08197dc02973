/** What dump-events and peers print: progress, log lines, the summary, the peer table. */
import { columns } from "../table.ts";
import { ExitCode } from "../../errors.ts";
import type { DumpHooks, DumpSummary } from "../../dump/dump.ts";
import type { Discovery, Peer, Skipped } from "../../mesh/discovery.ts";
import type { Log } from "../log.ts";
import { formatBytes, formatCount, formatDuration, formatRate, type Progress } from "../progress.ts";
import type { meshJson } from "../mesh.ts";

/** The dump's log lines and progress line as it runs; `progress` is stopped by the caller. */
export function dumpHooks(log: Log, progress: Progress): DumpHooks {
  let events = 0;
  let bytes = 0;
  const started = performance.now();
  const draw = (p: { peersDone: number; peersTotal: number; fraction: number }) =>
    progress.update({
      label: "peers",
      done: p.peersDone,
      total: p.peersTotal,
      fraction: p.fraction,
      extra: `· ${formatCount(events)} events fetched (${formatRate((events * 1000) / Math.max(1, performance.now() - started), "events")}) · ${formatBytes(bytes)}`,
    });
  return {
    onPage(page, p) {
      events += page.events;
      bytes += page.bytes;
      log.debug(`${page.peer}: page ${page.page}, ${page.events} new event(s)`);
      draw(p);
    },
    onLog(peer, level, message) {
      progress.clear();
      if (level === "warn") log.warn(`${peer}: ${message}`);
      else log.debug(`${peer}: ${message}`);
    },
    onPeerDone(r, p) {
      progress.clear();
      const line = `${r.name}: ${r.status}, ${r.pages} page(s)${r.streams > 1 ? ` by ${r.streams} streams` : ""}, ${r.events} event(s) in ${r.seconds.toFixed(1)} s`;
      if (r.status === "ok") log.debug(line);
      else log.warn(`${line}: ${r.error}${r.hint ? ` (${r.hint})` : ""}`);
      draw(p);
    },
    onWarn: (m) => log.warn(m),
  };
}

/** What a Ctrl-C leaves, once stdout has (or has not) begun to receive the backup. */
export const interruptedMessage = (copying: boolean): string =>
  copying ? "interrupted: the backup on stdout is incomplete, do not use it\n" : "interrupted: no backup written\n";

/** The summary: one JSON object on stderr with --json, else log lines. */
export function reportDump(s: DumpSummary, log: Log, json: boolean, mesh: ReturnType<typeof meshJson> = null): void {
  if (json) {
    process.stderr.write(`${JSON.stringify({ ...summaryJson(s), mesh })}\n`);
    return;
  }
  const ok = s.peers.filter((p) => p.status === "ok").length;
  const line = `${formatCount(s.written)} events from ${ok}/${s.peers.length} peers to ${s.output} in ${formatDuration(s.seconds * 1000)}`;
  const details =
    `fetched ${s.fetched}, unique ${s.unique}, duplicates ${s.duplicates}` +
    (s.replaced ? ` (${s.replaced} replaced by a signed copy)` : "") +
    (s.existing ? `, already in --ids-from ${s.existing}` : "") +
    (s.spilledRuns ? `; ${s.spilledEvents} spilled to ${s.spilledRuns} temporary run(s) (--max-memory)` : "");
  if (s.exitCode === ExitCode.ok) log.success(line);
  else log.warn(`${s.exitCode === ExitCode.failed ? "nothing fetched" : "partial backup"}: ${line}`);
  log.info(details);
  for (const p of s.peers) if (p.status !== "ok") log.warn(`${p.name} (${p.url}) ${p.status}: ${p.error ?? ""}`);
}

/** The `--json` summary; its keys are part of the CLI's contract (README). */
export function summaryJson(s: DumpSummary) {
  return {
    complete: s.exitCode === ExitCode.ok,
    exitCode: s.exitCode,
    output: s.output,
    peers: s.peers.map((p) => ({
      name: p.name,
      address: p.url,
      status: p.status,
      pages: p.pages,
      streams: p.streams,
      events: p.events,
      bytes: p.bytes,
      retries: p.retries,
      signatures: p.signatures,
      seconds: Number(p.seconds.toFixed(3)),
      error: p.error ?? null,
      hint: p.hint ?? null,
      warnings: p.warnings,
    })),
    fetched: s.fetched,
    unique: s.unique,
    written: s.written,
    duplicates: s.duplicates,
    replaced: s.replaced,
    existing: s.existing,
    late: s.late,
    spilled: s.spilledEvents,
    spillRuns: s.spilledRuns,
    bytes: s.bytes,
    seconds: Number(s.seconds.toFixed(3)),
  };
}

const address = (p: Peer): string => p.url.replace(/^http:\/\//, "");

const leftColumns = (rows: string[][], indent = ""): string => `${columns(rows, { indent, align: () => "left" }).join("\n")}\n`;

/** What `peers` prints on stdout: the discovery as JSON (--json), else as a table. */
export function renderPeers(found: Discovery & { via: string }, mesh: ReturnType<typeof meshJson>, json: boolean): string {
  return json ? `${JSON.stringify({ ...found, mesh }, null, 2)}\n` : renderTable(found.peers, found.skipped);
}

/** `peers`: the naras a backup would fetch from, and the ones it would skip. */
export function renderTable(peers: Peer[], skipped: Skipped[]): string {
  let text = peers.length
    ? leftColumns([["NAME", "ADDRESS", "SOURCE"], ...peers.map((p) => [p.name, address(p), p.source])])
    : "no peers\n";
  if (skipped.length) text += `\nskipped (${skipped.length}):\n` + leftColumns(skipped.map((s) => [s.name, s.reason]), "  ");
  return text;
}
