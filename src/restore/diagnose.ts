/**
 * Why a nara refused an import (HTTP 403), in words a user can act on. The
 * three causes: the soul is not this nara's, the clock is more than five
 * minutes off, or the signature was damaged on the way.
 */
import { ExitCode, NaraError } from "../errors.ts";
import { describeSigner, type RestoreIdentity } from "../identity/signer.ts";

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
