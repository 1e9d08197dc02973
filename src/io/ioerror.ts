/**
 * A failing disk as one line: the system's code and its meaning, the path,
 * and what to do, instead of a stack trace.
 */
import { ExitCode, NaraError } from "../errors.ts";

const MEANING: Record<string, string> = {
  ENOSPC: "no space left",
  EDQUOT: "disk quota exceeded",
  EFBIG: "file too large for this file system",
  EIO: "input/output error (a failing disk?)",
  EROFS: "read-only file system",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOENT: "no such file or directory",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EMFILE: "too many open files",
  EPIPE: "the reader went away (broken pipe)",
};

const HINT: Record<string, string> = {
  ENOSPC: "free some space there, or write elsewhere (-o on another disk; TMPDIR or --temp-dir for temporary files), and run the command again",
  EDQUOT: "free some space there, or write elsewhere (-o on another disk; TMPDIR or --temp-dir for temporary files), and run the command again",
  EIO: "check the disk (dmesg, SMART) and run the command again",
};

export const errorCode = (err: unknown): string | undefined => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
};

/** Is this the system failing a read or write (a code like ENOSPC), as opposed to a bug? */
export const isSystemError = (err: unknown): boolean => /^E[A-Z]+$/.test(errorCode(err) ?? "");

/**
 * `cannot write PATH: ENOSPC: no space left`, with a hint; exit code 1. A
 * NaraError passes through, and so does anything that is not a system error.
 */
export function ioError(err: unknown, path: string, what = "cannot write"): unknown {
  if (err instanceof NaraError || !isSystemError(err)) return err;
  return new NaraError(`${what} ${path}: ${systemCause(err)}`, {
    hint: HINT[errorCode(err)!] ?? "check the path and the disk, and run the command again",
    exitCode: ExitCode.internal,
  });
}

/** "ENOSPC: no space left": the code and what it means. */
export function systemCause(err: unknown): string {
  const code = errorCode(err) ?? "error";
  return `${code}: ${MEANING[code] ?? (err instanceof Error ? err.message : String(err))}`;
}
