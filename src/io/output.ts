/**
 * Where a backup goes: a file (atomically) or stdout, optionally compressed
 * (zstd or gzip) and encrypted (src/io/encrypt.ts), in that order.
 *
 * Compression works in blocks of BLOCK_SIZE bytes, each an independent zstd
 * frame (with its content checksum) or gzip member. Concatenated frames and
 * members are valid streams for the standard tools (`zstd -d`, `gunzip`) and
 * for openInput, and memory stays bounded by one block whatever the size.
 */
import { closeSync, fdatasync, fsyncSync, mkdtempSync, openSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { constants as zc, zstdCompressSync } from "node:zlib";
import type { FileSink } from "bun";
import { NaraError, ExitCode } from "../errors.ts";
import { Encryptor } from "./encrypt.ts";
import { ioError } from "./ioerror.ts";
import { TempSealer } from "./tempfile.ts";

export type Compression = "none" | "gzip" | "zstd";

/**
 * A file is written under a temporary name beside the target and renamed
 * only once complete and synced, so an interrupted run never leaves a
 * partial file under the final name.
 */
export type Output = {
  readonly target: string;
  /** What is written: compression applied before encryption. */
  readonly compression: Compression;
  readonly encrypted: boolean;
  write(chunk: Uint8Array): Promise<void>;
  /** Finishes the data: flush, sync and rename (file) or flush (stdout). */
  commit(): Promise<void>;
  /** Drops what was written (file), synchronously so that it also works on a signal. */
  abort(): void;
};

export type OutputOptions = {
  /** Default: by extension for a file (.zst, .gz; a trailing .enc is looked through), none for stdout. */
  compress?: Compression;
  /** Encrypt with the key derived from this soul seed (32 bytes). */
  encryptSeed?: Uint8Array;
  /** Compression level; default zstd 1, gzip 6. */
  level?: number;
  /**
   * stdout: write to a private temporary file (sealed, see io/tempfile.ts) and copy it
   * to stdout only on commit, so a writer that streams as it goes holds no more memory
   * than for a file, and nothing reaches stdout before the output is complete.
   */
  spool?: boolean;
  /** Where the spool goes (default TMPDIR). */
  tempDir?: string;
};

/** Uncompressed bytes per zstd frame / gzip member. */
export const BLOCK_SIZE = 4 << 20;
export const DEFAULT_LEVEL: Record<Exclude<Compression, "none">, number> = { zstd: 1, gzip: 6 };

/** The compression a file name asks for: .zst/.zstd, .gz/.gzip, looking through a trailing .enc. */
export function compressionForPath(path: string): Compression {
  const p = path.toLowerCase().replace(/\.enc$/, "");
  if (p.endsWith(".zst") || p.endsWith(".zstd")) return "zstd";
  if (p.endsWith(".gz") || p.endsWith(".gzip")) return "gzip";
  return "none";
}

export function parseCompression(value: string, flag = "--compress"): Compression {
  const v = value.trim().toLowerCase();
  if (v === "zstd" || v === "zst") return "zstd";
  if (v === "gzip" || v === "gz") return "gzip";
  if (v === "none" || v === "") return "none";
  throw new NaraError(`${flag}: "${value}" is not a compression`, { hint: "use zstd, gzip or none", exitCode: ExitCode.usage });
}

export function openOutput(path: string | undefined, opts: OutputOptions = {}): Output {
  const toStdout = path === undefined || path === "-";
  const compression = opts.compress ?? (toStdout ? "none" : compressionForPath(path));
  const sink = !toStdout ? fileSink(path) : opts.spool ? spoolSink(opts.tempDir ?? tmpdir()) : stdoutSink();
  const encryptor = opts.encryptSeed ? new Encryptor(opts.encryptSeed) : undefined;
  let level = opts.level;
  if (compression !== "none") {
    level ??= DEFAULT_LEVEL[compression];
    const [lo, hi] = compression === "zstd" ? [1, 19] : [0, 9];
    if (!Number.isInteger(level) || level < lo || level > hi) {
      sink.abort();
      throw new NaraError(`${compression} level ${level} is out of range (${lo}..${hi})`, { exitCode: ExitCode.usage });
    }
  }

  /** After compression: encrypt (if asked) and hand to the sink, honouring backpressure. */
  const emit = async (bytes: Uint8Array): Promise<void> => {
    if (!encryptor) return sink.write(bytes);
    // Each piece is written (and copied by the sink) before the next is sealed into the same buffer.
    for (const piece of encryptor.pieces(bytes)) await sink.write(piece);
  };
  const compressBlock =
    compression === "zstd"
      ? (b: Uint8Array) =>
          zstdCompressSync(b, { params: { [zc.ZSTD_c_compressionLevel]: level!, [zc.ZSTD_c_checksumFlag]: 1 } }) as Uint8Array
      : compression === "gzip"
        ? (b: Uint8Array) => Bun.gzipSync(b as Uint8Array<ArrayBuffer>, { level: level as 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 })
        : undefined;

  let block: Uint8Array | undefined;
  let fill = 0;
  let blocks = 0;
  const write = !compressBlock
    ? emit
    : async (chunk: Uint8Array): Promise<void> => {
        let at = 0;
        while (at < chunk.length) {
          block ??= new Uint8Array(BLOCK_SIZE);
          const n = Math.min(chunk.length - at, BLOCK_SIZE - fill);
          block.set(chunk.subarray(at, at + n), fill);
          fill += n;
          at += n;
          if (fill === BLOCK_SIZE) {
            fill = 0;
            blocks++;
            await emit(compressBlock(block));
          }
        }
      };

  let state: "open" | "committed" | "aborted" = "open";
  return {
    target: sink.target,
    compression,
    encrypted: encryptor !== undefined,
    write: async (chunk) => {
      if (state !== "open") throw new NaraError(`write to ${sink.target} after it was ${state}`, { exitCode: ExitCode.internal });
      await write(chunk);
    },
    async commit() {
      if (state !== "open") throw new NaraError(`commit of ${sink.target} after it was ${state}`, { exitCode: ExitCode.internal });
      // A last partial block; an empty output still gets one (empty) frame, a valid file for the tools.
      if (compressBlock && (fill > 0 || blocks === 0)) await emit(compressBlock((block ?? new Uint8Array(0)).subarray(0, fill)));
      block = undefined;
      if (encryptor) for (const piece of encryptor.lastPieces()) await sink.write(piece);
      await sink.commit();
      state = "committed";
    },
    abort() {
      if (state !== "open") return;
      state = "aborted";
      block = undefined;
      sink.abort();
    },
  };
}

type Sink = {
  target: string;
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): void;
};

/** Writes honouring backpressure: a FileSink returns a promise when its buffer is backed up. */
async function writeTo(sink: FileSink, chunk: Uint8Array): Promise<void> {
  const r = sink.write(chunk);
  if (typeof r !== "number") await r;
}

function stdoutSink(): Sink {
  const sink = Bun.stdout.writer();
  return {
    target: "stdout",
    write: (chunk) => writeTo(sink, chunk),
    async commit() {
      await sink.flush();
    },
    abort() {},
  };
}

/** A private directory (0700) in `parent` for temporary files; a NaraError naming it when that fails. */
export function privateDir(parent: string, prefix: string): string {
  try {
    return mkdtempSync(join(parent, prefix));
  } catch (err) {
    throw new NaraError(`cannot create a temporary directory in ${parent}`, {
      cause: err,
      hint: "set --temp-dir (or TMPDIR) to a writable directory with room for about the size of the backup",
      exitCode: ExitCode.usage,
    });
  }
}

function spoolSink(parent: string): Sink {
  const dir = privateDir(parent, "nara-spool-");
  const path = join(dir, "stdout");
  const sealer = new TempSealer();
  let file: ReturnType<TempSealer["writer"]> | undefined;
  const remove = () => {
    file?.close();
    file = undefined;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    file = sealer.writer(path);
  } catch (err) {
    remove();
    throw err;
  }
  return {
    target: "stdout",
    // A full disk is named by the sealed writer (io/tempfile.ts).
    write: async (chunk) => file!.write(chunk),
    async commit() {
      file!.close();
      const out = Bun.stdout.writer();
      try {
        const r = sealer.reader(path);
        try {
          let unflushed = 0;
          for (let block = r.next(); block; block = r.next()) {
            await writeTo(out, block);
            // A FileSink on a file or a fast pipe rarely pushes back: flushing keeps its buffer small.
            if ((unflushed += block.length) >= 1 << 20) {
              await out.flush();
              unflushed = 0;
            }
          }
        } catch (err) {
          throw ioError(err, "stdout");
        } finally {
          r.close();
        }
        await out.flush();
      } finally {
        remove();
      }
    },
    abort: remove,
  };
}

/** Bytes written between background syncs of a file being written. */
const SYNC_EVERY = 16 << 20;

function fileSink(path: string): Sink {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let sink: FileSink;
  // The file must be on disk before it is renamed. Syncing 100 MB at the end took ~60 ms of the
  // dump's wall time; syncing as it grows, in the background, leaves the end only the last part.
  let syncFd: number | undefined;
  let syncing: Promise<void> | undefined;
  let syncError: Error | undefined;
  let unsynced = 0;
  const syncInBackground = () => {
    unsynced = 0;
    syncFd ??= openSync(tmp, "r+");
    const fd = syncFd;
    // Linux reports a failed write-back once: keep it for commit rather than lose it here.
    syncing = new Promise<void>((resolve) =>
      fdatasync(fd, (err) => {
        syncError ??= err ?? undefined;
        resolve();
      }),
    ).finally(() => (syncing = undefined));
  };
  try {
    // Open eagerly: a directory that is missing or read-only should fail before any network work.
    closeSync(openSync(tmp, "wx", 0o600));
    sink = Bun.file(tmp).writer();
  } catch (err) {
    throw new NaraError(`cannot write ${path}`, {
      cause: err,
      hint: "check that the directory exists and is writable",
      exitCode: ExitCode.usage,
    });
  }
  let done = false;
  return {
    target: path,
    async write(chunk) {
      unsynced += chunk.length;
      try {
        if (unsynced >= SYNC_EVERY && !syncing) syncInBackground();
        await writeTo(sink, chunk);
      } catch (err) {
        throw ioError(err, path);
      }
    },
    async commit() {
      try {
        await sink.end();
      } catch (err) {
        throw ioError(err, path);
      }
      await syncing;
      const fd = syncFd ?? openSync(tmp, "r+");
      syncFd = undefined;
      try {
        if (syncError) throw syncError;
        fsyncSync(fd);
      } catch (err) {
        throw new NaraError(`cannot write ${path}: the data did not reach the disk`, {
          cause: err,
          hint: "check the disk (space, errors) and run the command again",
          exitCode: ExitCode.internal,
        });
      } finally {
        closeSync(fd);
      }
      try {
        renameSync(tmp, path);
      } catch (err) {
        throw ioError(err, path, "cannot rename the finished backup to");
      }
      done = true;
    },
    abort() {
      if (done) return;
      done = true;
      try {
        void sink.end();
      } catch {}
      // A background sync may still use the descriptor: close it once that is over.
      const fd = syncFd;
      syncFd = undefined;
      if (fd !== undefined) void (syncing ?? Promise.resolve()).then(() => closeSync(fd));
      rmSync(tmp, { force: true });
    },
  };
}
