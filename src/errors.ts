/** Exit codes of every command; README.md documents them. */
export const ExitCode = {
  ok: 0,
  /** A bug or an unexpected condition (the system failing: disk full, I/O errors). */
  internal: 1,
  /** Bad flags, a bad soul or name, invalid input: nothing was done. */
  usage: 2,
  /** Some of the work was done, some failed (peers, batches). */
  partial: 3,
  /** Nothing could be done: every peer failed, or no batch was accepted. */
  failed: 4,
  /** Discovery found no peer to back up. */
  noPeers: 5,
  /** The nara refused our signature (HTTP 403 on import). */
  refused: 6,
  /** verify found corrupt events: malformed lines, IDs that do not recompute, bad signatures. */
  corrupt: 7,
  /** Interrupted by a signal (128 + SIGINT). */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * The error value every module returns or throws: what went wrong, why, and
 * what the user can do about it. Never put the soul in any of its fields.
 */
export class NaraError extends Error {
  readonly hint?: string;
  readonly exitCode: ExitCode;
  constructor(message: string, opts: { cause?: unknown; hint?: string; exitCode?: ExitCode } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "NaraError";
    this.hint = opts.hint;
    this.exitCode = opts.exitCode ?? ExitCode.internal;
  }
}

export const usageError = (message: string, hint?: string): NaraError =>
  new NaraError(message, { hint, exitCode: ExitCode.usage });

/** A one-line description of any thrown value, following `cause` chains. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  const own = err.message || err.name;
  return cause === undefined ? own : `${own}: ${describeError(cause)}`;
}

/** Why a file could not be read, in words (the Node error code when there are none). */
export function fileErrorReason(err: unknown): string {
  const code = (err as { code?: string }).code;
  return code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (code ?? "unreadable");
}

/** `cannot read WHAT: no such file` (or the other reasons), as a usage error: the user named the file. */
export const unreadableFile = (what: string, err: unknown, hint?: string): NaraError => usageError(`cannot read ${what}: ${fileErrorReason(err)}`, hint);
