/**
 * The command run as a user runs it: a subprocess of `bun src/cli.ts`, its
 * output collected, its exit code awaited.
 */
import { join } from "node:path";
import type { BunFile, FileSink } from "bun";

export const ROOT = join(import.meta.dir, "../..");
export const CLI = join(ROOT, "src/cli.ts");

export type CliResult = {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout's bytes (an encrypted or compressed backup is not text). */
  raw: Uint8Array;
};

export type CliOptions = {
  cwd?: string;
  /** Set over a bare PATH (the user's environment does not leak in); undefined unsets. */
  env?: Record<string, string | undefined>;
  /** Handed to the command as it is: a Blob or bytes arrive like a redirected file, a BunFile is one. */
  stdin?: Blob | BunFile | Uint8Array;
  /** Written into a pipe, as from `cat backup |` (the command may go away before it took everything). */
  pipe?: Uint8Array;
  /** Write the pipe in pieces of this many bytes, each flushed (default: at once). */
  pipeChunk?: number;
  /** The program before the arguments (default: this bun running src/cli.ts). */
  cmd?: string[];
  /** Send `signal` once stderr contains `until` (the command said its work started: no timing guess). */
  until?: string;
  signal?: NodeJS.Signals;
  /** stdout and stderr go to ours (the demo); the result then holds none of them. */
  inherit?: boolean;
};

export async function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const proc = Bun.spawn([...(opts.cmd ?? [process.execPath, CLI]), ...args], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? "", ...opts.env },
    stdin: opts.pipe ? "pipe" : (opts.stdin ?? "ignore"),
    stdout: opts.inherit ? "inherit" : "pipe",
    stderr: opts.inherit ? "inherit" : "pipe",
  });
  if (opts.pipe) void feed(proc.stdin as FileSink, opts.pipe, Math.max(1, opts.pipeChunk ?? opts.pipe.length));
  if (opts.inherit) return { code: await proc.exited, stdout: "", stderr: "", raw: new Uint8Array(0) };
  let stderr = "";
  let signalled = false;
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      stderr += decoder.decode(chunk, { stream: true });
      if (!signalled && opts.until !== undefined && opts.signal && stderr.includes(opts.until)) {
        signalled = true;
        proc.kill(opts.signal);
      }
    }
    stderr += decoder.decode();
  })();
  const [raw, code] = await Promise.all([new Response(proc.stdout as ReadableStream<Uint8Array>).bytes(), proc.exited, reading]);
  return { code, stdout: new TextDecoder().decode(raw), stderr, raw };
}

async function feed(sink: FileSink, bytes: Uint8Array, chunk: number): Promise<void> {
  try {
    for (let i = 0; i < bytes.length; i += chunk) {
      sink.write(bytes.subarray(i, i + chunk));
      await sink.flush();
    }
    await sink.end();
  } catch {
    // The reader failed and went away: what the test is about, not an error of the test.
  }
}
