/**
 * Opens one backup for reading, whatever it is: plain JSON Lines, gzip,
 * zstd, or encrypted. src/io/input.ts (openInput) recognises the format by
 * its first bytes, decompresses and decrypts as a stream; this module is
 * the one place verify and stats call it (through inputs.ts), so both accept
 * the same inputs. The soul for encrypted ones is loaded here too (merge's as well).
 */
import { statSync } from "node:fs";
import { usageError } from "../errors.ts";
import { openInput, type InputKind } from "../io/input.ts";
import { loadRestoreIdentity } from "../identity/signer.ts";

export type { InputKind };

export type OpenedBackup = {
  /** The decompressed, decrypted JSON Lines bytes. */
  stream: ReadableStream<Uint8Array>;
  kind: InputKind;
  /** How to name it in messages: the path, or "stdin". */
  name: string;
};

export type OpenOptions = {
  /** The soul's seed, asked for only when an input is encrypted; undefined when none was given. */
  soul?: () => { seed: Uint8Array } | undefined;
  /** Raw (still compressed or encrypted) bytes read so far, for progress. */
  onRead?: (bytes: number) => void;
};

/** `path` "-" is stdin. Throws NaraError (with a hint) when the input cannot be read. */
export async function openBackup(path: string, opts: OpenOptions = {}): Promise<OpenedBackup> {
  const opened = await openInput(path, { soul: opts.soul, onRead: opts.onRead });
  return { stream: opened.stream, kind: opened.kind, name: opened.name };
}

/** Reading stdin when it is a terminal would wait for typing: say what to do instead. */
export function checkStdin(inputs: string[], command: string, isTTY = Boolean(process.stdin.isTTY)): void {
  if ((inputs.length === 0 || inputs.includes("-")) && isTTY) {
    throw usageError("no input: stdin is a terminal", `give backup files as arguments, or redirect one: nara-backup ${command} < backup.jsonl`);
  }
}

/** Total size of the inputs that are files (stdin counts 0): the denominator of a progress fraction. */
export function inputSizes(inputs: string[]): number {
  let total = 0;
  for (const p of inputs.length === 0 ? ["-"] : inputs) {
    if (p === "-") continue;
    try {
      total += statSync(p).size;
    } catch {
      // reported when the input is opened
    }
  }
  return total;
}

/**
 * Passes the chunks of `stream` through, counting bytes and remembering the
 * last one, so that a reader can tell whether the input ended with a newline
 * (a broken last line without one means a truncated file).
 */
export function tapStream(stream: ReadableStream<Uint8Array>): { chunks: AsyncIterable<Uint8Array>; lastByte(): number; bytes(): number } {
  let last = -1;
  let total = 0;
  async function* chunks(): AsyncIterable<Uint8Array> {
    for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
      if (chunk.length > 0) {
        last = chunk[chunk.length - 1]!;
        total += chunk.length;
      }
      yield chunk;
    }
  }
  return { chunks: chunks(), lastByte: () => last, bytes: () => total };
}

type Notices = { warn(message: string): void; info(message: string): void; debug(message: string): void };

/** The seed for encrypted inputs when a soul was given (undefined otherwise); `required()` when one must be. */
export type SoulLoader = {
  (): { seed: Uint8Array } | undefined;
  /** The seed, a soul or not: without one, loadRestoreIdentity's error says how to give it (--encrypt). */
  required(): Uint8Array;
};

/**
 * The seed from --soul / NARA_SOUL / --soul-file (with --name the bond is
 * checked too). Loaded on first use only, so plain backups never need a
 * soul; undefined when none was given (openInput then says how to give one).
 */
export function soulFromArgs(
  args: { name?: string; soul?: string; "soul-file"?: string },
  log: Notices,
  env: Record<string, string | undefined> = process.env,
): SoulLoader {
  let loaded: { seed: Uint8Array } | undefined;
  const required = (): Uint8Array => (loaded ??= { seed: loadRestoreIdentity(args, log, env).identity.seedBytes() }).seed;
  const soul = (): { seed: Uint8Array } | undefined => {
    if (loaded) return loaded;
    if (args.soul === undefined && args["soul-file"] === undefined && !env.NARA_SOUL?.trim()) return undefined;
    required();
    return loaded;
  };
  return Object.assign(soul, { required });
}
