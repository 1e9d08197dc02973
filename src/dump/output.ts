import { closeSync, fsyncSync, openSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { FileSink } from "bun";
import { NaraError, ExitCode } from "../errors.ts";

/**
 * Where a backup goes. A file is written under a temporary name beside the
 * target and renamed only once complete and synced, so an interrupted run
 * never leaves a partial file under the final name.
 */
export type Output = {
  readonly target: string;
  write(chunk: Uint8Array): Promise<void>;
  /** Finishes the data: flush, sync and rename (file) or flush (stdout). */
  commit(): Promise<void>;
  /** Drops what was written (file), synchronously so that it also works on a signal. */
  abort(): void;
};

export function openOutput(path: string | undefined): Output {
  return path === undefined || path === "-" ? stdoutOutput() : fileOutput(path);
}

/** Writes honouring backpressure: a FileSink returns a promise when its buffer is backed up. */
async function writeTo(sink: FileSink, chunk: Uint8Array): Promise<void> {
  const r = sink.write(chunk);
  if (typeof r !== "number") await r;
}

function stdoutOutput(): Output {
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

function fileOutput(path: string): Output {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let sink: FileSink;
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
    write: (chunk) => writeTo(sink, chunk),
    async commit() {
      await sink.end();
      const fd = openSync(tmp, "r+");
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      done = true;
    },
    abort() {
      if (done) return;
      done = true;
      try {
        void sink.end();
      } catch {}
      rmSync(tmp, { force: true });
    },
  };
}
