import { defineCommand } from "citty";
import { identityArgs, outputArgs, lineArgs, outputOptions, parseIntArg, parseMaxLineBytes } from "../cli/args.ts";
import { createLog } from "../cli/log.ts";
import { createProgress, formatBytes, progressEnabled } from "../cli/progress.ts";
import { ExitCode, usageError } from "../errors.ts";
import { KNOWN_SERVICES } from "../events/id.ts";
import { checkStdin, inputSizes, soulFromArgs } from "../backup/open.ts";
import { backupStats, formatSpan, type Bucket, type StatsReport } from "../backup/stats.ts";

export default defineCommand({
  meta: {
    name: "stats",
    description: "What backups hold: events, bytes, time span, events per service, per emitter and over time",
  },
  args: {
    files: {
      type: "positional",
      required: false,
      description: "backups (plain, .zst, .gz, encrypted); none or - reads stdin",
      valueHint: "FILE...",
      variadic: true,
    } as { type: "positional"; required: false; description: string; valueHint: string },
    top: { type: "string", default: "10", description: "emitters listed by name (the rest are summed)", valueHint: "n" },
    ...lineArgs,
    by: { type: "string", description: "chart bucket: hour, day or month (default: by the time span)", valueHint: "hour|day|month" },
    ...identityArgs,
    name: { type: "string", description: "name the soul is bonded to (checked when given); the soul is needed only for encrypted backups", valueHint: "name" },
    ...outputArgs,
    json: { type: "boolean", description: "print the statistics as one JSON object on stdout" },
  },
  async run({ args }) {
    const out = outputOptions(args);
    const log = createLog({ ...out, quiet: out.quiet || (out.json && !out.verbose) });
    const top = parseIntArg(args.top, "--top", { min: 0, max: 1_000_000 });
    let by: Bucket | undefined;
    if (args.by !== undefined) {
      if (args.by !== "hour" && args.by !== "day" && args.by !== "month") throw usageError(`--by: "${args.by}" is not hour, day or month`);
      by = args.by;
    }
    const maxLineBytes = parseMaxLineBytes(args);
    const progress = createProgress({ enabled: progressEnabled(out) });
    const inputs = (args._ ?? []).map(String);
    checkStdin(inputs, "stats");
    const totalSize = inputSizes(inputs);
    let report: StatsReport;
    try {
      report = await backupStats({ inputs, top, by, maxLineBytes, soul: soulFromArgs(args, log) }, (p) =>
        progress.update({
          label: "reading",
          done: Math.round(p.rawBytes / 1048576),
          total: Math.round(totalSize / 1048576),
          fraction: totalSize > 0 ? p.rawBytes / totalSize : 0,
          extra: `MiB · ${p.lines.toLocaleString("en")} lines · ${p.file}`,
        }),
      );
    } finally {
      progress.stop();
    }
    if (report.malformed > 0) {
      for (const m of report.malformedLines) log.warn(`${m.file}:${m.line}: ${m.bytes === undefined ? "malformed line: " : ""}${m.reason}`);
      const more = report.malformed - report.malformedLines.length;
      log.warn(`${report.malformed} malformed line(s) left out of the statistics${more > 0 ? ` (${more} not listed)` : ""}; \`nara-backup verify\` tells more`);
    }
    if (report.timeline.by !== (by ?? report.timeline.by)) log.warn(`--by ${by}: too many bars, counted by ${report.timeline.by} instead`);
    const width = process.stdout.isTTY ? (process.stdout.columns || 80) : 80;
    process.stdout.write(out.json ? `${JSON.stringify(report)}\n` : renderStats(report, width));
    return ExitCode.ok;
  },
});

const num = (n: number): string => n.toLocaleString("en");
const pct = (n: number, of: number): string => `${of > 0 ? ((100 * n) / of).toFixed(1) : "0.0"}%`;

function columns(rows: string[][], indent = "  "): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => indent + r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd());
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
    ["events", `${num(r.events)}${r.duplicates > 0 ? ` (+${num(r.duplicates)} duplicate lines)` : ""}${r.malformed > 0 ? ` (${num(r.malformed)} malformed lines left out)` : ""}`],
    ["bytes", `${formatBytes(r.bytes)} in ${r.files.length} input(s)`],
    ["signed", `${num(r.signed)} (${pct(r.signed, r.events)})`],
  ];
  if (r.first && r.last) {
    head.push(["first", `${r.first.time}  (${r.first.ts})`]);
    head.push(["last", `${r.last.time}  (${r.last.ts})`]);
    head.push(["span", formatSpan(r.spanNs)]);
  }
  for (const [k, v] of head) lines.push(`${k.padEnd(7)} ${v}`);
  if (r.files.length > 1 || r.files.some((f) => form(f))) {
    for (const f of r.files) lines.push(`  ${f.name}: ${num(f.events)} events, ${formatBytes(f.bytes)}${form(f) ? ` (${form(f)})` : ""}`);
  }
  if (r.events === 0) return `${lines.join("\n")}\n`;

  lines.push("", "services");
  lines.push(
    ...columns(
      Object.entries(r.services).map(([svc, n]) => [svc, num(n), pct(n, r.events), KNOWN_SERVICES.has(svc) ? "" : "(unknown service)"]),
    ),
  );

  lines.push("", `emitters (${num(r.emitters.distinct)}${r.emitters.top.length < r.emitters.distinct ? `, top ${r.emitters.top.length}` : ""})`);
  const emitterRows = r.emitters.top.map((e) => [e.name, num(e.events), pct(e.events, r.events)]);
  if (r.emitters.others > 0) emitterRows.push(["(others)", num(r.emitters.others), pct(r.emitters.others, r.events)]);
  emitterRows.push(["(no emitter)", num(r.emitters.none), pct(r.emitters.none, r.events)]);
  lines.push(...columns(emitterRows));

  const { by, buckets } = r.timeline;
  lines.push("", `events per ${by} (UTC)`);
  const labels = buckets.map((b) => bucketLabel(b.start, by));
  const counts = buckets.map((b) => num(b.events));
  const labelWidth = Math.max(...labels.map((l) => l.length));
  const countWidth = Math.max(...counts.map((c) => c.length));
  const max = Math.max(...buckets.map((b) => b.events));
  const barWidth = Math.max(10, width - 2 - labelWidth - 2 - countWidth - 2);
  buckets.forEach((b, i) => {
    lines.push(`  ${labels[i]!.padEnd(labelWidth)}  ${counts[i]!.padStart(countWidth)}  ${bar(b.events, max, barWidth)}`.trimEnd());
  });
  return `${lines.join("\n")}\n`;
}
