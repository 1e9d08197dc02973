/**
 * The inputs of a restore as sources that can be read three times (pass 1
 * validates, passes 2 and 3 send): files as they are, stdin spooled (raw, as
 * it came) to a private temp file. Each read opens its source through
 * openInput, which decompresses (zstd, gzip) and decrypts as it reads.
 */
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode, NaraError, usageError } from "../errors.ts";
import { forEachLine } from "../events/lines.ts";
import { openInput, sniff, statBackup } from "../io/input.ts";
import { errorCode, isSystemError, systemCause } from "../io/ioerror.ts";
import type { RestoreOptions } from "./options.ts";
import { splitPoint } from "./parallel.ts";

/** Thrown inside a line visitor to stop reading an input early. */
export class StopReading extends Error {}

export type Source = {
  name: string;
  path: string;
  size: number;
  cleanup?: () => void;
  /** Its bytes, when pass 1 holds them for the send passes (held.ts). */
  held?: Uint8Array;
};

/** An input as a source: "-" is stdin. */
export async function openSource(path: string, opts: RestoreOptions): Promise<Source> {
  return path === "-" ? stdinSource(opts) : fileSource(path);
}

function fileSource(path: string): Source {
  return { name: path, path, size: statBackup(path).size };
}

/**
 * stdin as a file that can be read three times: a redirected regular file
 * is reopened through /proc (Linux), anything else (a pipe) is copied to a
 * private temp file, removed when the restore ends.
 */
async function stdinSource(opts: RestoreOptions): Promise<Source> {
  if (opts.stdin === undefined) {
    if (process.stdin.isTTY) {
      throw usageError("no input: stdin is a terminal", "give backup files as arguments, or redirect one: nara-backup restore-events … < backup.jsonl");
    }
    if (process.platform === "linux") {
      try {
        if (fstatSync(0).isFile()) return { name: "stdin", path: "/proc/self/fd/0", size: fstatSync(0).size };
      } catch {}
    }
  }
  const stream = opts.stdin ?? Bun.stdin.stream();
  let dir: string;
  try {
    dir = mkdtempSync(join(opts.tmpDir ?? tmpdir(), "nara-restore-"));
  } catch (err) {
    throw new NaraError("cannot create a temporary file to hold stdin", {
      cause: err,
      hint: "set TMPDIR to a writable directory, or pass the backup as a FILE argument",
      exitCode: ExitCode.usage,
    });
  }
  // The raw bytes as they came (maybe compressed or encrypted): each pass decodes them through openInput.
  const path = join(dir, "stdin.jsonl");
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  // A signal kills us without running finally blocks: remove the spool on exit too.
  const onExit = () => cleanup();
  process.once("exit", onExit);
  try {
    closeSync(openSync(path, "wx", 0o600));
    const sink = Bun.file(path).writer();
    let sinceFlush = 0;
    for await (const chunk of stream as AsyncIterable<Uint8Array>) {
      if (opts.signal?.aborted) break;
      const r = sink.write(chunk);
      if (typeof r !== "number") await r;
      sinceFlush += chunk.length;
      if (sinceFlush >= 1 << 20) {
        await sink.flush();
        sinceFlush = 0;
      }
    }
    await sink.end();
  } catch (err) {
    cleanup();
    process.off("exit", onExit);
    // The disk failing (ENOSPC, EIO): one line with the path, exit 1; stdin itself failing: a usage error.
    if (isSystemError(err) && errorCode(err) !== "EPIPE") {
      throw new NaraError(`cannot copy stdin to ${path}: ${systemCause(err)}`, {
        hint: "set TMPDIR to a disk with room, or pass the backup as a FILE argument",
        exitCode: ExitCode.internal,
      });
    }
    throw new NaraError("cannot copy stdin to a temporary file", { cause: err, hint: "pass the backup as a FILE argument", exitCode: ExitCode.usage });
  }
  return {
    name: "stdin",
    path,
    size: statSync(path).size,
    cleanup: () => {
      cleanup();
      process.off("exit", onExit);
    },
  };
}

/**
 * Reads the lines of a source through openInput (decompressing, decrypting);
 * with `end`, only its bytes before `end` (a plain file being split for
 * parallel checking). Returns the number of lines read, blank ones included.
 */
export async function readLines(
  src: Source,
  opts: RestoreOptions,
  visit: (buf: Uint8Array, s: number, e: number, line: number) => void | Promise<void>,
  onRead?: (rawBytes: number) => void,
  end?: number,
  /** A line over the cap (skipped unread); the send passes need not say, pass 1 has. */
  onLong?: (line: number, bytes: number) => void,
): Promise<number> {
  const signal = opts.signal;
  try {
    let stream: ReadableStream<Uint8Array>;
    if (end === undefined) {
      ({ stream } = await openInput(src.path, {
        name: src.name,
        soul: opts.decryptSoul ?? (() => ({ seed: opts.signer.identity.seedBytes() })),
        soulHint:
          opts.decryptSoulHint ??
          "give the soul of the nara that made the backup with NARA_BACKUP_SOUL or --backup-soul-file FILE (the restore signs with the target's soul, NARA_SOUL / --soul-file)",
        onRead,
      }));
    } else {
      stream = Bun.file(src.path).slice(0, end).stream();
      if (onRead) {
        stream = stream.pipeThrough(
          new TransformStream<Uint8Array, Uint8Array>({
            transform(c, ctl) {
              onRead(c.length);
              ctl.enqueue(c);
            },
          }),
        );
      }
    }
    return await forEachLine(
      stream,
      (buf, s, e, line) => {
        if (signal?.aborted) throw new StopReading();
        return visit(buf, s, e, line);
      },
      { maxLineBytes: opts.maxLineBytes, onLong },
    );
  } catch (err) {
    if (err instanceof StopReading) return 0;
    if (err instanceof NaraError) throw err;
    const code = (err as { code?: string }).code;
    throw new NaraError(`cannot read ${src.name}`, { cause: err, exitCode: code === "ENOENT" || code === "EACCES" ? ExitCode.usage : ExitCode.internal });
  }
}

/** Where to split a source for parallel checking: only a plain (not compressed or encrypted) file. */
export async function plainSplit(src: Source): Promise<number | undefined> {
  try {
    if (!(await isPlainFile(src))) return undefined;
    // The main thread also takes the worker's lines in after its own: it gets the smaller part.
    return await splitPoint(src.path, src.size, 0.42);
  } catch {
    return undefined; // read it the ordinary way, which says what is wrong
  }
}

/**
 * Is the source a regular file, neither compressed nor encrypted (a pass over
 * it costs only its reading)? Anything else (a FIFO, a device) is not peeked
 * at: what is read from it would be gone for pass 1.
 */
export async function isPlainFile(src: Source): Promise<boolean> {
  return statSync(src.path).isFile() && sniff(await Bun.file(src.path).slice(0, 8).bytes()) === "none";
}
