/**
 * What verify, stats and merge print: the reports for people, the --json
 * summary of merge, and their progress lines. The library (src/backup)
 * returns the reports; nothing here decides anything about a backup.
 */
import type { MergeHooks, MergeSummary } from "../../backup/merge.ts";
import type { Bucket, StatsReport } from "../../backup/stats.ts";
import type { Issue, IssueKind, ServiceCounts, VerifyReport } from "../../backup/verify.ts";
import { ExitCode } from "../../errors.ts";
import { KNOWN_SERVICES } from "../../events/id.ts";
import type { Log } from "../log.ts";
import { formatBytes, formatCount, formatDuration, formatRate, type Progress } from "../progress.ts";
import { columns } from "../table.ts";

export const pct = (n: number, of: number): string => `${of > 0 ? ((100 * n) / of).toFixed(1) : "0.0"}%`;
const mib = (n: number) => Math.round(n / 1048576);

/** Progress of reading the inputs (verify, stats): MiB of `totalSize` read, then `extra` (counts, the file). */
export function inputProgress<P>(progress: Progress, label: string, totalSize: number, extra: (p: P) => string) {
  return (p: P & { rawBytes: number; file: string }): void =>
    progress.update({
      label,
      done: mib(p.rawBytes),
      total: mib(totalSize),
      fraction: totalSize > 0 ? p.rawBytes / totalSize : 0,
      extra: `MiB · ${extra(p)} · ${p.file}`,
    });
}

// ---- verify

/** Warnings of each kind printed before "… and N more" (all with --verbose). */
const WARNINGS_SHOWN = 10;

const KIND_WORDS: Record<IssueKind, string> = {
  unreadable: "unreadable inputs",
  malformed: "malformed lines",
  "id-mismatch": "ID mismatches",
  "bad-signature": "bad signatures",
  unsorted: "lines out of order",
  duplicate: "duplicates",
  "key-conflict": "key conflicts",
  "key-change": "key changes",
};

/** `file:line: message`, warnings marked as such. */
export function formatIssue(it: Issue): string {
  return `${it.file}:${it.line}: ${it.error ? "" : "warning: "}${it.message}\n`;
}

/** The issues for stderr: every error, the first warnings of each kind (none with quiet, all with verbose), then what was left out. */
export function renderIssues(report: VerifyReport, out: { quiet: boolean; verbose: boolean }): string {
  let text = "";
  const shown = new Map<IssueKind, number>();
  for (const it of report.issues) {
    if (!it.error && (out.quiet || (!out.verbose && (shown.get(it.kind) ?? 0) >= WARNINGS_SHOWN))) continue;
    shown.set(it.kind, (shown.get(it.kind) ?? 0) + 1);
    text += formatIssue(it);
  }
  for (const [kind, n] of Object.entries(report.issueCounts) as [IssueKind, number][]) {
    const more = n - (shown.get(kind) ?? 0);
    const isError = report.issues.find((i) => i.kind === kind)?.error ?? false;
    if (more > 0 && (isError || !out.quiet)) text += `… and ${formatCount(more)} more ${KIND_WORDS[kind]} (--verbose lists them all)\n`;
  }
  return text;
}

const COLUMNS: [keyof ServiceCounts, string][] = [
  ["events", "events"],
  ["ok", "ok"],
  ["idMismatch", "ID mismatch"],
  ["badSignature", "bad signature"],
  ["unsigned", "unsigned"],
  ["unknownKey", "unknown key"],
];

/** The report for people: the table per service, then what else was found, then the verdict. */
export function renderReport(r: VerifyReport): string {
  const rows: string[][] = [["service", ...COLUMNS.map(([, h]) => h)]];
  for (const [svc, c] of Object.entries(r.services)) rows.push([svc, ...COLUMNS.map(([k]) => formatCount(c[k]))]);
  rows.push(["total", ...COLUMNS.map(([k]) => formatCount(r.total[k]))]);
  const lines = [columns(rows).join("\n")];
  for (const [svc, n] of Object.entries(r.unknownServices)) lines.push(`${svc}: ${formatCount(n)} event(s) of an unknown service (not verifiable: its content string is unknown)`);
  lines.push("");
  for (const f of r.files) {
    const form = [f.compression !== "none" ? f.compression : "", f.encrypted ? "encrypted" : ""].filter(Boolean).join(", ");
    lines.push(
      `${f.name}: ${formatCount(f.lines)} lines, ${formatCount(f.events)} events, ${formatBytes(f.bytes)}${form ? ` (${form})` : ""}` +
        `${f.truncated ? ", truncated" : ""}${f.unreadable ? ", DAMAGED: read only up to this point" : ""}`,
    );
  }
  lines.push(`malformed lines: ${formatCount(r.malformed)}`);
  lines.push(`duplicates: ${formatCount(r.duplicates)}${r.duplicatesAcrossFiles > 0 ? ` (${formatCount(r.duplicatesAcrossFiles)} across inputs)` : ""}`);
  lines.push(`out of order: ${formatCount(r.unsorted)}${r.unsorted > 0 ? (r.requireSorted ? " (an error: --require-sorted)" : " (a warning; --require-sorted makes it an error)") : ""}`);
  lines.push(
    `keys: ${formatCount(r.keys.learned)} learned from hey-there/chau events${r.keys.trusted > 0 ? `, ${formatCount(r.keys.trusted)} name(s) given with --keys` : ""}` +
      `${r.keys.conflicts > 0 ? `, ${formatCount(r.keys.conflicts)} announced key(s) differing from --keys (ignored)` : ""}` +
      `${r.keys.changed > 0 ? `, ${formatCount(r.keys.changed)} name(s) with more than one key` : ""}`,
  );
  const noKey = Object.entries(r.unknownKeyEmitters);
  if (noKey.length > 0) {
    const list = noKey.slice(0, 10).map(([name, n]) => `${name} (${formatCount(n)})`).join(", ");
    lines.push(`no public key for: ${list}${noKey.length > 10 ? `, and ${noKey.length - 10} more` : ""} (give them with --keys FILE)`);
  }
  const rate = r.seconds > 0 ? ` (${formatRate(r.total.events / r.seconds, "events")}, ${formatRate(r.bytes / r.seconds, "B")})` : "";
  lines.push(`time: ${r.seconds.toFixed(1)}s${rate}`);
  if (r.ok) {
    lines.push(
      `result: OK: ${formatCount(r.total.events)} event(s); every ID recomputes, ${formatCount(r.total.ok)} signature(s) verify` +
        `${r.total.unknownKey > 0 ? `, ${formatCount(r.total.unknownKey)} could not be checked (no key)` : ""}`,
    );
  } else {
    const unsortedErrors = r.requireSorted ? r.unsorted : 0;
    const parts = [
      [r.files.filter((f) => f.unreadable).length, "damaged input(s)"],
      [r.malformed, "malformed line(s)"],
      [r.total.idMismatch, "ID mismatch(es)"],
      [r.total.badSignature, "bad signature(s)"],
      [unsortedErrors, "line(s) out of order"],
    ]
      .filter(([n]) => (n as number) > 0)
      .map(([n, w]) => `${formatCount(n as number)} ${w}`);
    lines.push(`result: CORRUPT: ${parts.join(", ")} (listed on stderr as FILE:LINE)`);
  }
  return `${lines.join("\n")}\n`;
}

/** The --json report: the library's, with the exit code. */
export const verifyJson = (r: VerifyReport): string => `${JSON.stringify({ ...r, exitCode: r.ok ? ExitCode.ok : ExitCode.corrupt })}\n`;

// ---- stats

/** What stats warns about: the malformed lines left out, and a --by it could not keep. */
export function statsWarnings(r: StatsReport, by?: Bucket): string[] {
  const warnings: string[] = [];
  if (r.malformed > 0) {
    for (const m of r.malformedLines) warnings.push(`${m.file}:${m.line}: ${m.bytes === undefined ? "malformed line: " : ""}${m.reason}`);
    const more = r.malformed - r.malformedLines.length;
    warnings.push(`${r.malformed} malformed line(s) left out of the statistics${more > 0 ? ` (${more} not listed)` : ""}; \`nara-backup verify\` tells more`);
  }
  if (r.timeline.by !== (by ?? r.timeline.by)) warnings.push(`--by ${by}: too many bars, counted by ${r.timeline.by} instead`);
  return warnings;
}

/** "3d 04h 05m 06s", "1h 02m 03s", "4.5s", "0s": a span of nanoseconds (decimal text) for people (under a minute: to the millisecond). */
export function formatSpan(nsText: string): string {
  const ns = BigInt(nsText);
  if (ns < 60_000_000_000n) return `${(Number(ns) / 1e9).toFixed(3).replace(/\.?0+$/, "")}s`;
  const total = Number(ns / 1_000_000_000n);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const p = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${p(h)}h ${p(m)}m ${p(s)}s`;
  if (h > 0) return `${h}h ${p(m)}m ${p(s)}s`;
  if (m > 0) return `${m}m ${p(s)}s`;
  return `${s}s`;
}

const EIGHTHS = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];

/** A bar of `value / max` of `width` cells, in eighths of a cell. */
export function bar(value: number, max: number, width: number): string {
  if (max <= 0 || value <= 0) return "";
  const eighths = Math.max(1, Math.round((value / max) * width * 8));
  return "█".repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
}

function bucketLabel(startIso: string, by: Bucket): string {
  if (by === "hour") return `${startIso.slice(0, 10)} ${startIso.slice(11, 16)}`;
  if (by === "day") return startIso.slice(0, 10);
  return startIso.slice(0, 7);
}

/** The statistics for people, `width` columns wide. */
export function renderStats(r: StatsReport, width = 80): string {
  const lines: string[] = [];
  const form = (f: StatsReport["files"][number]) => [f.compression !== "none" ? f.compression : "", f.encrypted ? "encrypted" : ""].filter(Boolean).join(", ");
  const head: string[][] = [
    ["events", `${formatCount(r.events)}${r.duplicates > 0 ? ` (+${formatCount(r.duplicates)} duplicate lines)` : ""}${r.malformed > 0 ? ` (${formatCount(r.malformed)} malformed lines left out)` : ""}`],
    ["bytes", `${formatBytes(r.bytes)} in ${r.files.length} input(s)`],
    ["signed", `${formatCount(r.signed)} (${pct(r.signed, r.events)})`],
  ];
  if (r.first && r.last) {
    head.push(["first", `${r.first.time}  (${r.first.ts})`]);
    head.push(["last", `${r.last.time}  (${r.last.ts})`]);
    head.push(["span", formatSpan(r.spanNs)]);
  }
  for (const [k, v] of head) lines.push(`${k.padEnd(7)} ${v}`);
  if (r.files.length > 1 || r.files.some((f) => form(f))) {
    for (const f of r.files) lines.push(`  ${f.name}: ${formatCount(f.events)} events, ${formatBytes(f.bytes)}${form(f) ? ` (${form(f)})` : ""}`);
  }
  if (r.events === 0) return `${lines.join("\n")}\n`;

  lines.push("", "services");
  const svcRows = Object.entries(r.services).map(([svc, n]) => [svc, formatCount(n), pct(n, r.events), KNOWN_SERVICES.has(svc) ? "" : "(unknown service)"]);
  lines.push(...columns(svcRows, { indent: "  " }));

  lines.push("", `emitters (${formatCount(r.emitters.distinct)}${r.emitters.top.length < r.emitters.distinct ? `, top ${r.emitters.top.length}` : ""})`);
  const emitterRows = r.emitters.top.map((e) => [e.name, formatCount(e.events), pct(e.events, r.events)]);
  if (r.emitters.others > 0) emitterRows.push(["(others)", formatCount(r.emitters.others), pct(r.emitters.others, r.events)]);
  emitterRows.push(["(no emitter)", formatCount(r.emitters.none), pct(r.emitters.none, r.events)]);
  lines.push(...columns(emitterRows, { indent: "  " }));

  const { by, buckets } = r.timeline;
  lines.push("", `events per ${by} (UTC)`);
  const labels = buckets.map((b) => bucketLabel(b.start, by));
  const counts = buckets.map((b) => formatCount(b.events));
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const countWidth = Math.max(...counts.map((c) => c.length));
  const max = Math.max(...buckets.map((b) => b.events));
  const barWidth = Math.max(10, width - 2 - labelWidth - 2 - countWidth - 2);
  buckets.forEach((b, i) => {
    lines.push(`  ${labels[i]!.padEnd(labelWidth)}  ${counts[i]!.padStart(countWidth)}  ${bar(b.events, max, barWidth)}`.trimEnd());
  });
  return `${lines.join("\n")}\n`;
}

// ---- merge

/** The merge's messages and progress, through the log and the progress line (cleared before a message). */
export function mergeHooks(log: Log, progress: Progress): MergeHooks {
  const say = (print: (m: string) => void) => (m: string) => {
    progress.clear();
    print(m);
  };
  return {
    onWarn: say((m) => log.warn(m)),
    onInfo: say((m) => log.info(m)),
    onDebug: say((m) => log.debug(m)),
    onProgress: (p) =>
      progress.update({
        label: p.phase,
        done: mib(p.bytesRead),
        total: mib(p.bytesTotal),
        fraction: p.bytesTotal > 0 ? p.bytesRead / p.bytesTotal : 0,
        extra: `MiB · ${formatCount(p.events)} events`,
      }),
  };
}

/** The merge's summary: two log lines, or with --json one object on stderr. */
export function reportMerge(s: MergeSummary, log: Log, json: boolean): void {
  if (json) {
    process.stderr.write(`${JSON.stringify(summaryJson(s))}\n`);
    return;
  }
  log.success(`${formatCount(s.written)} events from ${s.inputs.length} input(s) to ${s.output} in ${formatDuration(s.seconds * 1000)}`);
  log.info(
    `read ${s.read}, duplicates ${s.duplicates}` +
      (s.replaced ? ` (${s.replaced} replaced by a signed copy)` : "") +
      (s.invalid ? `, invalid lines left out ${s.invalid}` : "") +
      (s.conflicts ? `, left out for an id under two timestamps ${s.conflicts}` : "") +
      `, runs spilled ${s.runs}` +
      (s.restarts ? `, restarts ${s.restarts}` : "") +
      `, ${formatBytes(s.bytes)} written`,
  );
}

/** The `--json` summary; its keys are part of the CLI's contract (README). */
export function summaryJson(s: MergeSummary) {
  return {
    complete: s.exitCode === ExitCode.ok,
    exitCode: s.exitCode,
    output: s.output,
    inputs: s.inputs.map((i) => ({ ...i })),
    read: s.read,
    invalid: s.invalid,
    written: s.written,
    duplicates: s.duplicates,
    replaced: s.replaced,
    conflicts: s.conflicts,
    idCheck: s.idCheck,
    runs: s.runs,
    restarts: s.restarts,
    bytes: s.bytes,
    seconds: Number(s.seconds.toFixed(3)),
  };
}
