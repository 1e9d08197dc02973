/** What a restore tells as it goes (hooks) and what it returns (the summary). */
import { ExitCode, type NaraError } from "../errors.ts";
import { displayUrl, naraBaseUrl } from "./import.ts";

export type InvalidLine = { input: string; line: number; reason: string };

export type Plan = {
  /** Events that will be sent, after --skip. */
  toSend: number;
  batches: number;
  heyThere: number;
  services: Record<string, number>;
};

export type BatchReport = {
  /** 1-based. */
  index: number;
  /** Planned total. */
  of: number;
  events: number;
  bytes: number;
  imported: number;
  duplicates: number;
  warnings: number;
  attempts: number;
  ms: number;
  /** Events accepted so far (this batch included), --skip not counted. */
  sentSoFar: number;
  services: Record<string, number>;
};

export type RestoreHooks = {
  onInvalid?: (bad: InvalidLine) => void;
  onWarn?: (message: string) => void;
  onDebug?: (message: string) => void;
  /** After validation, before anything is sent. */
  onPlan?: (plan: Plan) => void;
  onBatch?: (report: BatchReport) => void;
  onRetry?: (info: { batch: number; attempt: number; of: number; error: string; delayMs: number }) => void;
  /** Progress of pass 1: lines and bytes read so far in all inputs, and the total bytes. */
  onScan?: (progress: { lines: number; bytes: number; totalBytes: number }) => void;
};

export type InputReport = { name: string; lines: number; valid: number; invalid: number };

export type RestoreSummary = {
  /** The nara's base URL (what the user gave), without credentials. */
  url: string;
  /** The import endpoint. */
  endpoint: string;
  dryRun: boolean;
  inputs: InputReport[];
  /** Non-blank lines read. */
  lines: number;
  valid: number;
  invalid: number;
  /** Extra copies of an ID within or across inputs (one copy of each is kept). */
  duplicatesInInput: number;
  /** Distinct valid events. */
  unique: number;
  /** Distinct events left out by --service/--since/--until/--nara. */
  filtered: number;
  /** Left out by --skip. */
  skipped: number;
  /** Events planned to be sent (after filters and --skip). */
  toSend: number;
  /** Per service, of toSend. */
  services: Record<string, number>;
  /** Batches accepted (dry run: batches planned and signed). */
  batches: number;
  batchesPlanned: number;
  /** Events in accepted batches (dry run: 0). */
  sent: number;
  imported: number;
  duplicates: number;
  warnings: number;
  /** Failed attempts that were retried. */
  retries: number;
  /** When stopped early: the --skip value that resumes where this run stopped. */
  resumeSkip?: number;
  exitCode: ExitCode;
  /** Why the restore stopped or failed (also for invalid input); the caller prints it. */
  failure?: NaraError;
  seconds: number;
};

/** The summary before anything is read. */
export function emptySummary(url: string, dryRun: boolean): RestoreSummary {
  return {
    url: naraBaseUrl(displayUrl(url)),
    endpoint: displayUrl(url),
    dryRun,
    inputs: [],
    lines: 0,
    valid: 0,
    invalid: 0,
    duplicatesInInput: 0,
    unique: 0,
    filtered: 0,
    skipped: 0,
    toSend: 0,
    services: {},
    batches: 0,
    batchesPlanned: 0,
    sent: 0,
    imported: 0,
    duplicates: 0,
    warnings: 0,
    retries: 0,
    exitCode: ExitCode.ok,
    seconds: 0,
  };
}
