/** What a restore is asked to do, its defaults, and the checks on them. */
import { availableParallelism } from "node:os";
import { usageError } from "../errors.ts";
import type { SeedSource } from "../io/encrypt.ts";
import type { RestoreIdentity } from "../identity/signer.ts";
import type { EventFilter } from "./filter.ts";
import type { FetchLike } from "./import.ts";

/** Events per import request. */
export const DEFAULT_BATCH_SIZE = 2000;
/** Batches sent at once: a nara imports one at a time, the next is prepared meanwhile. */
export const DEFAULT_IN_FLIGHT = 1;
/** Per request (each attempt): a nara importing a big batch on a small machine takes minutes. */
export const DEFAULT_TIMEOUT_MS = 5 * 60_000;
/** Attempts after the first, per batch. */
export const DEFAULT_RETRIES = 5;
/** The first wait before a retry, and the longest (io/retry.ts backs off between them). */
export const BACKOFF_MS = 500;
export const MAX_BACKOFF_MS = 30_000;
/** Plain files at least this big are checked on two threads (pass 1), on a machine with more than two cores. */
export const PARALLEL_CHECK_BYTES = 16 << 20;

/**
 * The size from which pass 1 checks a file on two threads. Not on two cores:
 * there the other core is the restored nara's (a restore after a fresh install
 * runs beside it), and the checking worker's own VM cost 0.2–0.3 CPU-s and
 * ~30 MiB of peak RSS for 113 MiB of events while saving 0.1 s of a 22 s restore
 * (bench/RESULTS.md, 2026-12-07).
 */
export const parallelCheckBytes = (cores = availableParallelism()): number => (cores > 2 ? PARALLEL_CHECK_BYTES : Infinity);
/** Plain inputs up to this much in all are held in memory from pass 1 to the send passes (read once). */
export const HOLD_BYTES = 64 << 20;
/** The hey-there lines of compressed or encrypted inputs are copied in pass 1 up to this much in all (held.ts, KeptLines). */
export const KEEP_HEY_THERE_BYTES = 16 << 20;

export type RestoreOptions = {
  /** Files to read; "-" (or none at all) is stdin. */
  inputs: readonly string[];
  /** The import endpoint (see importUrl). */
  url: string;
  signer: RestoreIdentity;
  batchSize: number;
  /** Plain files at least this big are checked on two threads (default parallelCheckBytes(); tests lower it). */
  parallelCheckBytes?: number;
  /** Bytes of plain inputs held in memory from pass 1 to the send passes (default HOLD_BYTES; 0: read each pass). */
  holdBytes?: number;
  /** Bytes of hey-there lines copied in pass 1 from compressed or encrypted inputs (default KEEP_HEY_THERE_BYTES; 0: pass 2 reads them). */
  keepHeyThereBytes?: number;
  /** Batches sent at once (default 1: the next is prepared while one is with the nara). */
  inFlight?: number;
  /** Per request (each attempt). */
  timeoutMs: number;
  /** Attempts after the first, per batch. */
  retries: number;
  backoffMs?: number;
  maxBackoffMs?: number;
  dryRun?: boolean;
  /** Leave out the first N events of the send order (to resume). */
  skip?: number;
  /** Send the valid lines even when some are invalid. */
  skipInvalid?: boolean;
  /** Longer lines are invalid, skipped without being held (default DEFAULT_MAX_LINE_BYTES, 1 MiB). */
  maxLineBytes?: number;
  filter?: EventFilter;
  /**
   * The soul that decrypts encrypted inputs (the backup owner's). Default:
   * the signer's own soul (a nara restoring its own backup).
   */
  decryptSoul?: SeedSource;
  /** Advice when an encrypted input needs another soul (e.g. "--backup-soul-file"). */
  decryptSoulHint?: string;
  /** stdin, injectable for tests. */
  stdin?: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;
  /** Where stdin is spooled (default: the OS temp dir, i.e. $TMPDIR). */
  tmpDir?: string;
  /** Stops the restore between requests (a request in flight is let finish). */
  signal?: AbortSignal;
  fetch?: FetchLike;
  /** The clock batches are signed with. */
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
};

/** The sending settings a restore cannot run with (the command checks them as it parses its flags). */
export function checkSendSettings(s: { batchSize: number; inFlight?: number; timeoutMs: number }): void {
  if (!Number.isInteger(s.batchSize) || s.batchSize < 1) throw usageError("--batch-size must be at least 1");
  const inFlight = s.inFlight ?? DEFAULT_IN_FLIGHT;
  if (!Number.isInteger(inFlight) || inFlight < 1) throw usageError("--in-flight must be at least 1");
  if (!(s.timeoutMs > 0)) throw usageError("--timeout must be more than 0");
}
