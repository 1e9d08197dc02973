/**
 * Reads a backup whatever its form: plain JSON Lines, zstd, gzip, encrypted
 * (src/io/encrypt.ts) or encrypted-then-compressed-inside, recognised by
 * its first bytes, never by its name. Everything is a stream: memory stays
 * bounded by a chunk or two, whatever the size of the input.
 */
import { statSync, type Stats } from "node:fs";
import { ExitCode, NaraError, usageError, unreadableFile } from "../errors.ts";
import { Decryptor, type SeedSource } from "./encrypt.ts";
import { isEncrypted, MAGIC } from "./encrypt-format.ts";

export type InputKind = { compression: "none" | "gzip" | "zstd"; encrypted: boolean };

export type InputOptions = {
  /** Asked for (once) only when the input is encrypted; undefined means no soul is available. */
  soul?: SeedSource;
  /** Name used in messages (default: the path, or "stdin"). */
  name?: string;
  /** Advice for "no soul" / "another soul" errors (default: NARA_SOUL / --soul-file). */
  soulHint?: string;
  /** Called with the number of raw (still compressed/encrypted) bytes read, as they are read. */
  onRead?: (bytes: number) => void;
};

export type Input = { stream: ReadableStream<Uint8Array>; kind: InputKind; name: string };

/** First bytes of the formats recognised (and of two that are refused with advice). */
export function sniff(head: Uint8Array): "encrypted" | "zstd" | "gzip" | "xz" | "bzip2" | "none" {
  if (isEncrypted(head)) return "encrypted";
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return "zstd";
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head[0] === 0xfd && head[1] === 0x37 && head[2] === 0x7a && head[3] === 0x58 && head[4] === 0x5a && head[5] === 0x00) return "xz";
  if (head[0] === 0x42 && head[1] === 0x5a && head[2] === 0x68) return "bzip2";
  return "none";
}

/** Stats a backup named on the command line: it must be there, readable, and not a directory. */
export function statBackup(path: string, name = path): Stats {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (err) {
    throw unreadableFile(name, err);
  }
  if (st.isDirectory()) throw usageError(`${name} is a directory, not a backup file`);
  return st;
}

/**
 * Opens `path` ("-" = stdin) and returns its decoded content as a stream.
 * An encrypted input is decrypted with `opts.soul()` (its header and first
 * chunk are checked here, so a missing or wrong soul fails at once); later
 * damage (a changed, missing or moved chunk, a cut) errors the stream with
 * an EncryptedInputError. Compressed data that is damaged or cut errors the
 * stream with a NaraError saying so.
 */
export async function openInput(path: string, opts: InputOptions = {}): Promise<Input> {
  const name = opts.name ?? (path === "-" ? "stdin" : path);
  let raw: ReadableStream<Uint8Array>;
  if (path === "-") raw = Bun.stdin.stream();
  else {
    const st = statBackup(path, name);
    // A socket (e.g. /dev/stdin when stdin is one) cannot be opened by path; "-" reads it.
    if (st.isSocket()) throw usageError(`cannot read ${name}: it is a socket`, 'use "-" to read standard input');
    raw = Bun.file(path).stream();
  }
  if (opts.onRead) raw = counted(raw, opts.onRead);

  let stream = wrapErrors(raw, name, "read");
  let [head, rest] = await peek(stream, 8, name);
  let format = sniff(head);
  const kind: InputKind = { compression: "none", encrypted: false };

  if (format === "encrypted") {
    kind.encrypted = true;
    const dec = new Decryptor(opts.soul ?? (() => undefined), { name, soulHint: opts.soulHint });
    stream = through(rest, dec);
    // Reads the header and the first chunk now: no soul, another soul or a changed header fail here.
    [head, rest] = await peek(stream, 8, name);
    format = sniff(head);
    if (format === "encrypted") {
      await rest.cancel().catch(() => {});
      throw usageError(`${name} is encrypted twice`, "decrypt the outer layer with the soul it was made for first");
    }
  }
  if (format === "xz" || format === "bzip2") {
    await rest.cancel().catch(() => {});
    const tool = format === "xz" ? "xzcat" : "bzcat";
    throw usageError(`${name} is ${format}-compressed, which nara-backup does not read`, `decompress it first (${tool} ${path === "-" ? "FILE" : path} > backup.jsonl), or recompress with zstd or gzip`);
  }
  if (format === "zstd" || format === "gzip") {
    kind.compression = format;
    stream = wrapErrors(rest.pipeThrough(new DecompressionStream(format as "gzip" /* "zstd" too: Bun supports it, the DOM types lag */) as unknown as TransformStream<Uint8Array, Uint8Array>), name, format);
  } else stream = rest;
  return { stream, kind, name };
}

/** A stream whose errors are NaraErrors that say what happened (damaged or cut compressed data). */
function wrapErrors(src: ReadableStream<Uint8Array>, name: string, stage: "read" | "zstd" | "gzip"): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        try {
          const r = await reader.read();
          if (r.done) ctl.close();
          else ctl.enqueue(r.value);
        } catch (err) {
          ctl.error(describeStreamError(err, name, stage));
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

function describeStreamError(err: unknown, name: string, stage: "read" | "zstd" | "gzip"): unknown {
  if (err instanceof NaraError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (stage === "read") {
    const code = (err as { code?: string }).code;
    return new NaraError(`cannot read ${name}: ${code ?? message}`, { cause: err, exitCode: ExitCode.usage });
  }
  const hint = "the backup is damaged or incomplete; use an intact copy";
  if (/unexpected end|end of file|truncated/i.test(message)) {
    return new NaraError(`${name} is truncated: the ${stage} data ends in the middle of a block`, { cause: err, hint, exitCode: ExitCode.usage });
  }
  if (/trailing|junk/i.test(message)) {
    return new NaraError(`${name}: data that is not ${stage} follows the end of the compressed data`, { cause: err, hint, exitCode: ExitCode.usage });
  }
  return new NaraError(`${name}: the ${stage} data is damaged (${message})`, { cause: err, hint, exitCode: ExitCode.usage });
}

/** Reads until `n` bytes (or the end) are there; returns them and a stream that replays them before the rest. */
async function peek(src: ReadableStream<Uint8Array>, n: number, name: string): Promise<[Uint8Array, ReadableStream<Uint8Array>]> {
  const reader = src.getReader();
  const got: Uint8Array[] = [];
  let have = 0;
  let ended = false;
  while (have < n) {
    let r;
    try {
      r = await reader.read();
    } catch (err) {
      throw describeStreamError(err, name, "read");
    }
    if (r.done) {
      ended = true;
      break;
    }
    if (r.value.length === 0) continue;
    got.push(r.value);
    have += r.value.length;
  }
  const head = new Uint8Array(Math.min(have, n));
  let at = 0;
  for (const g of got) {
    if (at >= head.length) break;
    const k = Math.min(g.length, head.length - at);
    head.set(g.subarray(0, k), at);
    at += k;
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        if (got.length > 0) {
          ctl.enqueue(got.shift()!);
          return;
        }
        if (ended) {
          ctl.close();
          return;
        }
        const r = await reader.read();
        if (r.done) ctl.close();
        else ctl.enqueue(r.value);
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
  return [head, stream];
}

/** Runs the decryptor over a stream, pulling one piece at a time (backpressure kept). */
function through(src: ReadableStream<Uint8Array>, dec: Decryptor): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  let finished = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        try {
          for (;;) {
            if (finished) {
              ctl.close();
              return;
            }
            const r = await reader.read();
            const out = r.done ? dec.finish() : dec.push(r.value);
            if (r.done) finished = true;
            let any = false;
            for (const o of out) {
              if (o.length === 0) continue;
              ctl.enqueue(o);
              any = true;
            }
            if (any) return;
          }
        } catch (err) {
          void reader.cancel().catch(() => {});
          ctl.error(err);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

function counted(src: ReadableStream<Uint8Array>, onRead: (n: number) => void): ReadableStream<Uint8Array> {
  const reader = src.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(ctl) {
        const r = await reader.read();
        if (r.done) ctl.close();
        else {
          onRead(r.value.length);
          ctl.enqueue(r.value);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
