/**
 * Why a restore stopped, in words a user can act on: a batch that failed
 * (above all why a nara refused an import, HTTP 403: the soul is not this
 * nara's, the clock is more than five minutes off, or the signature was
 * damaged on the way), an interruption, invalid or changing input. Each
 * says how to resume.
 */
import { ExitCode, NaraError } from "../errors.ts";
import { describeSigner, type RestoreIdentity } from "../identity/signer.ts";
import { displayUrl, formatMs, naraBaseUrl, type Attempt } from "./import.ts";
import type { RestoreOptions } from "./options.ts";
import type { RestoreSummary } from "./summary.ts";

export type RefusalCause = "clock" | "soul" | "signature" | "unknown";

/** Real peers accept an import ts within this much of their clock. */
export const IMPORT_WINDOW_MS = 5 * 60_000;

export type RefusalInput = {
  /** The `error` of the 403 body. */
  error: string;
  /** The nara's HTTP Date header, if any. */
  serverDateMs?: number;
  /** Our clock when the answer came. */
  localNowMs: number;
  /** How many batches the nara had already accepted from this restore. */
  acceptedBatches: number;
};

export function refusalCause(r: RefusalInput): { cause: RefusalCause; skewMs?: number } {
  const skewMs = r.serverDateMs === undefined ? undefined : r.localNowMs - r.serverDateMs;
  const e = r.error.toLowerCase();
  if (/timestamp|too old|in future|expired|clock/.test(e)) return { cause: "clock", skewMs };
  // The Date header has a resolution of one second: only a clear skew counts.
  if (skewMs !== undefined && Math.abs(skewMs) > IMPORT_WINDOW_MS - 30_000) return { cause: "clock", skewMs };
  if (/encoding|base64|malformed|decode/.test(e)) return { cause: "signature", skewMs };
  if (/verif|signature|invalid sig|key/.test(e)) return { cause: r.acceptedBatches > 0 ? "unknown" : "soul", skewMs };
  return { cause: "unknown", skewMs };
}

const ago = (ms: number): string => {
  const s = Math.round(Math.abs(ms) / 1000);
  const text = s >= 120 ? `${Math.round(s / 60)} minutes` : `${s} seconds`;
  return ms > 0 ? `${text} ahead of the nara's` : `${text} behind the nara's`;
};

/** The error to stop the restore with: exit 6 when nothing was accepted, 3 (partial) otherwise. */
export function refusalError(
  r: RefusalInput & { url: string; signer: RestoreIdentity; resume?: string },
): NaraError {
  const { cause, skewMs } = refusalCause(r);
  const who = describeSigner(r.signer);
  const skewNote = skewMs !== undefined && Math.abs(skewMs) > 2000 ? ` (our clock is ${ago(skewMs)})` : "";
  const compare = r.signer.bondChecked
    ? `compare with the nara's own name, nara ID and public key`
    : `compare its public key with the nara's (pass --name to also check the soul's bond to a name)`;
  let why: string;
  switch (cause) {
    case "clock":
      why =
        `likely cause: the clock of this machine or of the nara is more than 5 minutes off${skewNote}. ` +
        "Fix the time (NTP: timedatectl set-ntp true) on both machines and rerun.";
      break;
    case "soul":
      why =
        `likely cause: the soul is not this nara's: the nara checks the signature with its own key. Signed with ${who}; ${compare}. ` +
        "Less likely: the signature was damaged on the way (a proxy rewriting the body), or a clock more than 5 minutes off.";
      break;
    case "signature":
      why =
        "likely cause: the signature arrived damaged (something between us and the nara rewrote the request body); " +
        `check for a proxy in the way. Signed with ${who}.`;
      break;
    default:
      why =
        "possible causes: the soul is not this nara's (it checks with its own key), a clock more than 5 minutes off" +
        `${skewNote}, or a signature damaged on the way. Signed with ${who}; ${compare}.`;
  }
  if (r.acceptedBatches > 0) {
    why = `the nara had accepted ${r.acceptedBatches} batch(es) signed with the same soul, so its key is right: most likely its clock or ours jumped. ${why}`;
  }
  return new NaraError(`the nara at ${r.url} refused the import (HTTP 403: ${r.error})`, {
    hint: r.resume ? `${why} ${r.resume}` : why,
    exitCode: r.acceptedBatches > 0 ? ExitCode.partial : ExitCode.refused,
  });
}

/** Stops `summary` as interrupted: what was restored, and the --skip that resumes. */
export function interrupted(summary: RestoreSummary): void {
  summary.exitCode = ExitCode.interrupted;
  const resumable = summary.resumeSkip !== undefined && summary.sent > 0;
  summary.failure = new NaraError(
    resumable
      ? `interrupted: ${summary.sent} event(s) restored in ${summary.batches} batch(es); --skip ${summary.resumeSkip} resumes`
      : "interrupted: nothing restored",
    {
      hint: resumable
        ? `${summary.sent} events were accepted before the interruption; resume with --skip ${summary.resumeSkip} (same inputs and filters)`
        : "rerunning the same command is safe (import skips what the nara already has)",
      exitCode: ExitCode.interrupted,
    },
  );
}

export function invalidInputError(invalid: number): NaraError {
  return new NaraError(`${invalid} invalid line(s) in the input: nothing was sent`, {
    hint: "fix or remove them (each is listed above with its file and line number), or pass --skip-invalid to send the valid events only",
    exitCode: ExitCode.usage,
  });
}

export function changedError(input: string, line: number): NaraError {
  return new NaraError(`${input}:${line} changed while restoring (it was valid when checked, it is not now)`, {
    hint: "do not modify the backup during a restore; rerun it",
    exitCode: ExitCode.failed,
  });
}

/** The send passes found another number of events than pass 1 selected. */
export function countChangedError(validated: number, found: number, sent: number): NaraError {
  return new NaraError(`the input changed while restoring: ${validated} events were validated, ${found} found when sending`, {
    hint: "do not modify the backup during a restore; rerun it",
    exitCode: sent > 0 ? ExitCode.partial : ExitCode.failed,
  });
}

function resumeHint(summary: RestoreSummary): string {
  const n = summary.resumeSkip ?? 0;
  return n > 0
    ? `${summary.sent} event(s) were accepted before this. To resume, rerun the same command (same inputs and filters) with --skip ${n}; rerunning without --skip is also safe (the nara skips what it already has), only slower.`
    : "nothing was accepted; rerunning the same command is safe (import skips what the nara already has).";
}

/** Why a batch failed for good (its last attempt), and how to resume. */
export function batchFailure(
  last: Exclude<Attempt, { kind: "ok" }>,
  ctx: { batch: number; attempts: number; opts: RestoreOptions; summary: RestoreSummary; now: () => number },
): NaraError {
  const { summary, opts } = ctx;
  const endpoint = displayUrl(opts.url);
  const url = naraBaseUrl(endpoint);
  const anyAccepted = summary.batches > 0;
  const code = anyAccepted ? ExitCode.partial : ExitCode.failed;
  switch (last.kind) {
    case "refused":
      return refusalError({
        error: last.error,
        serverDateMs: last.serverDateMs,
        localNowMs: ctx.now(),
        acceptedBatches: summary.batches,
        url,
        signer: opts.signer,
        resume: anyAccepted ? resumeHint(summary) : "Nothing was imported.",
      });
    case "rejected": {
      let why = resumeHint(summary);
      if (last.status === 404 || last.status === 405) {
        why = `is ${url} the nara's own HTTP server (its web UI, default port 8080)? POST ${endpoint} answered ${last.status}. ${why}`;
      } else if (last.status === 400) {
        why = `an event of batch ${ctx.batch} does not decode in the nara although it passed validation here: please report it. ${why}`;
      } else if (last.status >= 300 && last.status < 400) {
        why = `the nara answered with a redirect${last.location ? ` to ${last.location}` : ""}: pass the final URL as --nara-url (a signed body is not resent through redirects). ${why}`;
      } else if (last.status === 401) {
        why = `the server wants authentication this tool does not send: is ${url} the nara's own HTTP server? ${why}`;
      }
      return new NaraError(`the nara rejected batch ${ctx.batch} (${last.error})`, { hint: why, exitCode: code });
    }
    case "aborted":
      return new NaraError("interrupted", { hint: resumeHint(summary), exitCode: ExitCode.interrupted });
    case "transient":
      return new NaraError(
        `batch ${ctx.batch} failed ${ctx.attempts} time(s), giving up: ${last.error}`,
        {
          hint: `${resumeHint(summary)} Raise --retries or --timeout (now ${formatMs(opts.timeoutMs)} per request) if the nara is slow or restarting.`,
          exitCode: code,
        },
      );
  }
}
