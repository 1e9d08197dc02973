import { defineCommand } from "citty";
import { identityArgs, outputArgs, lineArgs, outputOptions, parseIntArg, parseMaxLineBytes } from "../cli/args.ts";
import { createLog } from "../cli/log.ts";
import { createProgress, formatBytes, formatRate, progressEnabled } from "../cli/progress.ts";
import { ExitCode } from "../errors.ts";
import { loadKeysFile } from "../backup/keys.ts";
import { checkStdin, inputSizes, soulFromArgs } from "../backup/open.ts";
import { defaultThreads, verifyBackups, type Issue, type IssueKind, type ServiceCounts, type VerifyReport } from "../backup/verify.ts";

/** Warnings of each kind printed before "… and N more" (all with --verbose). */
const WARNINGS_SHOWN = 10;

export default defineCommand({
  meta: {
    name: "verify",
    description: "Check backups offline: every line an event, every ID recomputed, every signature verified, no duplicates, sorted",
  },
  args: {
    files: {
      type: "positional",
      required: false,
      description: "backups (plain, .zst, .gz, encrypted); none or - reads stdin",
      valueHint: "FILE...",
      variadic: true,
    } as { type: "positional"; required: false; description: string; valueHint: string },
    keys: {
      type: "string",
      description: "trusted public keys: lines name=BASE64 or a JSON object {name: BASE64}; they replace keys announced in the backup",
      valueHint: "path",
    },
    "require-sorted": { type: "boolean", description: "a line out of (ts, id) order is an error, not a warning" },
    ...lineArgs,
    workers: { type: "string", description: "signature-checking threads (default: cores, at most 4; 0 = main thread)", valueHint: "n" },
    ...identityArgs,
    name: { type: "string", description: "name the soul is bonded to (checked when given); the soul is needed only for encrypted backups", valueHint: "name" },
    ...outputArgs,
    json: { type: "boolean", description: "print the report as one JSON object on stdout" },
  },
  async run({ args }) {
    const out = outputOptions(args);
    const log = createLog({ ...out, quiet: out.quiet || (out.json && !out.verbose) });
    const inputs = (args._ ?? []).map(String);
    const keys = args.keys === undefined ? undefined : loadKeysFile(args.keys);
    if (keys) log.debug(`${keys.size} trusted key(s) from ${args.keys}`);
    const threads = args.workers === undefined ? defaultThreads() : parseIntArg(args.workers, "--workers", { min: 0, max: 64 });
    const maxLineBytes = parseMaxLineBytes(args);
    const progress = createProgress({ enabled: progressEnabled(out) });
    checkStdin(inputs, "verify");
    const totalSize = inputSizes(inputs);
    const shown = new Map<IssueKind, number>();

    let report: VerifyReport;
    try {
      report = await verifyBackups(
        {
          inputs,
          keys,
          requireSorted: args["require-sorted"] === true,
          maxLineBytes,
          soul: soulFromArgs(args, log),
          threads,
          issueLimit: out.verbose ? Number.MAX_SAFE_INTEGER : 1000,
        },
        {
          onProgress(p) {
            progress.update({
              label: "verifying",
              done: Math.round(p.rawBytes / 1048576),
              total: Math.round(totalSize / 1048576),
              fraction: totalSize > 0 ? p.rawBytes / totalSize : 0,
              extra: `MiB · ${p.events.toLocaleString("en")} events · ${p.file}`,
            });
          },
          onDebug: (m) => log.debug(m),
        },
      );
    } finally {
      progress.stop();
    }

    if (!out.json) {
      for (const it of report.issues) {
        if (!it.error && (out.quiet || (!out.verbose && (shown.get(it.kind) ?? 0) >= WARNINGS_SHOWN))) continue;
        shown.set(it.kind, (shown.get(it.kind) ?? 0) + 1);
        process.stderr.write(formatIssue(it));
      }
      for (const [kind, n] of Object.entries(report.issueCounts) as [IssueKind, number][]) {
        const more = n - (shown.get(kind) ?? 0);
        const isError = report.issues.find((i) => i.kind === kind)?.error ?? false;
        if (more > 0 && (isError || !out.quiet)) process.stderr.write(`… and ${num(more)} more ${KIND_WORDS[kind]} (--verbose lists them all)\n`);
      }
      process.stdout.write(renderReport(report));
    } else {
      process.stdout.write(`${JSON.stringify({ ...report, exitCode: report.ok ? ExitCode.ok : ExitCode.corrupt })}\n`);
    }
    return report.ok ? ExitCode.ok : ExitCode.corrupt;
  },
});

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

const num = (n: number): string => n.toLocaleString("en");

/** First column left-aligned, numbers right-aligned. */
function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
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
  for (const [svc, c] of Object.entries(r.services)) rows.push([svc, ...COLUMNS.map(([k]) => num(c[k]))]);
  rows.push(["total", ...COLUMNS.map(([k]) => num(r.total[k]))]);
  const lines = [table(rows)];
  for (const [svc, n] of Object.entries(r.unknownServices)) lines.push(`${svc}: ${num(n)} event(s) of an unknown service (not verifiable: its content string is unknown)`);
  lines.push("");
  for (const f of r.files) {
    const form = [f.compression !== "none" ? f.compression : "", f.encrypted ? "encrypted" : ""].filter(Boolean).join(", ");
    lines.push(
      `${f.name}: ${num(f.lines)} lines, ${num(f.events)} events, ${formatBytes(f.bytes)}${form ? ` (${form})` : ""}` +
        `${f.truncated ? ", truncated" : ""}${f.unreadable ? ", DAMAGED: read only up to this point" : ""}`,
    );
  }
  lines.push(`malformed lines: ${num(r.malformed)}`);
  lines.push(`duplicates: ${num(r.duplicates)}${r.duplicatesAcrossFiles > 0 ? ` (${num(r.duplicatesAcrossFiles)} across inputs)` : ""}`);
  lines.push(`out of order: ${num(r.unsorted)}${r.unsorted > 0 ? (r.requireSorted ? " (an error: --require-sorted)" : " (a warning; --require-sorted makes it an error)") : ""}`);
  lines.push(
    `keys: ${num(r.keys.learned)} learned from hey-there/chau events${r.keys.trusted > 0 ? `, ${num(r.keys.trusted)} name(s) given with --keys` : ""}` +
      `${r.keys.conflicts > 0 ? `, ${num(r.keys.conflicts)} announced key(s) differing from --keys (ignored)` : ""}` +
      `${r.keys.changed > 0 ? `, ${num(r.keys.changed)} name(s) with more than one key` : ""}`,
  );
  const noKey = Object.entries(r.unknownKeyEmitters);
  if (noKey.length > 0) {
    const list = noKey.slice(0, 10).map(([name, n]) => `${name} (${num(n)})`).join(", ");
    lines.push(`no public key for: ${list}${noKey.length > 10 ? `, and ${noKey.length - 10} more` : ""} (give them with --keys FILE)`);
  }
  const rate = r.seconds > 0 ? ` (${formatRate(r.total.events / r.seconds, "events")}, ${formatRate(r.bytes / r.seconds, "B")})` : "";
  lines.push(`time: ${r.seconds.toFixed(1)}s${rate}`);
  if (r.ok) {
    lines.push(
      `result: OK: ${num(r.total.events)} event(s); every ID recomputes, ${num(r.total.ok)} signature(s) verify` +
        `${r.total.unknownKey > 0 ? `, ${num(r.total.unknownKey)} could not be checked (no key)` : ""}`,
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
      .map(([n, w]) => `${num(n as number)} ${w}`);
    lines.push(`result: CORRUPT: ${parts.join(", ")} (listed on stderr as FILE:LINE)`);
  }
  return `${lines.join("\n")}\n`;
}
