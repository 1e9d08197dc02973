/**
 * Encrypted backups (docs/ENCRYPTION.md): XChaCha20-Poly1305 in a chunked,
 * STREAM-like construction, keyed from the owner's soul seed.
 *
 *   header (68 bytes) = magic "NARABKE1" (8) || version 1 (1) || log2 chunk size (1)
 *                       || reserved 0 (2) || salt (16) || nonce prefix (16)
 *                       || soul id (8) || key check (16)
 *   okm        = HKDF-SHA256(ikm = seed(32), salt, info = "nara-backup:encrypt:v1", 64)
 *   data key   = okm[0:32], check key = okm[32:64]
 *   soul id    = HKDF-SHA256(ikm = seed, salt = none, info = "nara-backup:soul-id:v1", 8)
 *   key check  = HMAC-SHA256(check key, header[0:52])[0:16]
 *   chunk i    = XChaCha20-Poly1305(data key, nonce = prefix || u64be(i),
 *                                    aad = header || (final ? 0x01 : 0x00)).seal(plaintext i)
 *
 * Every chunk but the last holds exactly `chunkSize` plaintext bytes; the
 * last is flagged final and holds 1..chunkSize bytes (0 only when the whole
 * plaintext is empty): there is always exactly one final chunk. A reader
 * knows a chunk is the last one because nothing follows it. A changed byte,
 * reordered or removed chunks, and a cut (also exactly at a chunk boundary)
 * all fail authentication; the soul id tells "another soul" apart from "a
 * changed header" before any data is read.
 */
import { xchacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ExitCode, NaraError } from "../errors.ts";

/** "NARABKE1": nara backup, encrypted. */
export const MAGIC = new Uint8Array([0x4e, 0x41, 0x52, 0x41, 0x42, 0x4b, 0x45, 0x31]);
export const VERSION = 1;
export const HEADER_LENGTH = 68;
export const TAG_LENGTH = 16;
export const DEFAULT_CHUNK_LOG2 = 20;
/** Chunk sizes a reader accepts (1 KiB .. 16 MiB): bounds the memory a hostile header can ask for. */
export const MIN_CHUNK_LOG2 = 10;
export const MAX_CHUNK_LOG2 = 24;

const INFO_KEY = "nara-backup:encrypt:v1";
const INFO_SOUL_ID = "nara-backup:soul-id:v1";
const enc = new TextEncoder();

export type EncryptErrorKind =
  | "no_soul"
  | "wrong_soul"
  | "header"
  | "version"
  | "truncated"
  | "chunk"
  | "reordered"
  | "trailing";

/** What went wrong with an encrypted input; `chunk` is the 0-based chunk number where it was found. */
export class EncryptedInputError extends NaraError {
  constructor(
    readonly kind: EncryptErrorKind,
    message: string,
    hint: string,
    readonly chunk?: number,
  ) {
    super(message, { hint, exitCode: ExitCode.usage });
    this.name = "EncryptedInputError";
  }
}

export type Header = {
  bytes: Uint8Array;
  version: number;
  chunkLog2: number;
  chunkSize: number;
  salt: Uint8Array;
  noncePrefix: Uint8Array;
  soulId: Uint8Array;
  keyCheck: Uint8Array;
};

export const isEncrypted = (head: Uint8Array): boolean => head.length >= MAGIC.length && MAGIC.every((b, i) => head[i] === b);

/** The 8-byte soul id stored in the header: the same for every backup of one soul, reveals nothing of it. */
export const soulId = (seed: Uint8Array): Uint8Array => hkdf(sha256, checkSeed(seed), undefined, enc.encode(INFO_SOUL_ID), 8);

export function deriveKeys(seed: Uint8Array, salt: Uint8Array): { dataKey: Uint8Array; checkKey: Uint8Array } {
  const okm = hkdf(sha256, checkSeed(seed), salt, enc.encode(INFO_KEY), 64);
  return { dataKey: okm.slice(0, 32), checkKey: okm.slice(32, 64) };
}

export const keyCheck = (checkKey: Uint8Array, headerPrefix: Uint8Array): Uint8Array =>
  hmac(sha256, checkKey, headerPrefix.subarray(0, 52)).slice(0, 16);

function checkSeed(seed: Uint8Array): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new NaraError("an encryption seed has 32 bytes", { exitCode: ExitCode.internal });
  return seed;
}

/** Builds a header; salt and nonce prefix are random unless given (tests and vectors give them). */
export function makeHeader(
  seed: Uint8Array,
  opts: { salt?: Uint8Array; noncePrefix?: Uint8Array; chunkLog2?: number } = {},
): { header: Header; dataKey: Uint8Array } {
  const chunkLog2 = opts.chunkLog2 ?? DEFAULT_CHUNK_LOG2;
  if (!Number.isInteger(chunkLog2) || chunkLog2 < MIN_CHUNK_LOG2 || chunkLog2 > MAX_CHUNK_LOG2) {
    throw new NaraError(`chunk size 2^${chunkLog2} is out of range`, { exitCode: ExitCode.internal });
  }
  const salt = opts.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const noncePrefix = opts.noncePrefix ?? crypto.getRandomValues(new Uint8Array(16));
  if (salt.length !== 16 || noncePrefix.length !== 16) throw new NaraError("salt and nonce prefix have 16 bytes", { exitCode: ExitCode.internal });
  const bytes = new Uint8Array(HEADER_LENGTH);
  bytes.set(MAGIC, 0);
  bytes[8] = VERSION;
  bytes[9] = chunkLog2;
  bytes.set(salt, 12);
  bytes.set(noncePrefix, 28);
  bytes.set(soulId(seed), 44);
  const { dataKey, checkKey } = deriveKeys(seed, salt);
  bytes.set(keyCheck(checkKey, bytes), 52);
  return { header: parseHeader(bytes), dataKey };
}

/** Reads the header's fields; checks only what needs no key (magic, version, sizes). */
export function parseHeader(bytes: Uint8Array, name = "the input"): Header {
  if (bytes.length < HEADER_LENGTH) {
    throw new EncryptedInputError("truncated", `${name} is truncated: it ends inside the encryption header`, "the file was cut short; use an intact copy of the backup");
  }
  if (!isEncrypted(bytes)) throw new EncryptedInputError("header", `${name} is not an encrypted nara backup (no NARABKE1 header)`, "");
  const version = bytes[8]!;
  if (version !== VERSION) {
    throw new EncryptedInputError(
      "version",
      `${name} uses encryption format version ${version}, this nara-backup reads version ${VERSION}`,
      "use a newer nara-backup to read it",
    );
  }
  const chunkLog2 = bytes[9]!;
  if (chunkLog2 < MIN_CHUNK_LOG2 || chunkLog2 > MAX_CHUNK_LOG2 || bytes[10] !== 0 || bytes[11] !== 0) {
    throw new EncryptedInputError("header", `the encryption header of ${name} is damaged (impossible chunk size or flags)`, HEADER_HINT);
  }
  const b = bytes.slice(0, HEADER_LENGTH);
  return {
    bytes: b,
    version,
    chunkLog2,
    chunkSize: 2 ** chunkLog2,
    salt: b.subarray(12, 28),
    noncePrefix: b.subarray(28, 44),
    soulId: b.subarray(44, 52),
    keyCheck: b.subarray(52, 68),
  };
}

const HEADER_HINT = "the file was changed or damaged; use an intact copy of the backup";

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/**
 * Checks the soul against the header and returns the data key. A soul id
 * that differs means another soul; a matching soul id with a failing key
 * check means the header (salt, nonce prefix, sizes) was changed.
 */
export function openHeader(header: Header, seed: Uint8Array, name = "the input", soulHint?: string): Uint8Array {
  if (!equal(soulId(seed), header.soulId)) {
    throw new EncryptedInputError(
      "wrong_soul",
      `${name}: this backup was encrypted with another soul`,
      soulHint ?? "give the soul of the nara that made the backup (NARA_SOUL or --soul-file)",
    );
  }
  const { dataKey, checkKey } = deriveKeys(seed, header.salt);
  if (!equal(keyCheck(checkKey, header.bytes), header.keyCheck)) {
    throw new EncryptedInputError("header", `the encryption header of ${name} was changed (its key check fails for the right soul)`, HEADER_HINT);
  }
  return dataKey;
}

function nonce(header: Header, index: number): Uint8Array {
  const n = new Uint8Array(24);
  n.set(header.noncePrefix, 0);
  new DataView(n.buffer).setBigUint64(16, BigInt(index), false);
  return n;
}

function aad(header: Header, final: boolean): Uint8Array {
  const a = new Uint8Array(HEADER_LENGTH + 1);
  a.set(header.bytes, 0);
  a[HEADER_LENGTH] = final ? 1 : 0;
  return a;
}

/** The sealed chunk (ciphertext and tag); into `output` (plaintext length + TAG_LENGTH bytes) when given. */
export function sealChunk(
  dataKey: Uint8Array,
  header: Header,
  index: number,
  final: boolean,
  plaintext: Uint8Array,
  output?: Uint8Array,
): Uint8Array {
  return xchacha20poly1305(dataKey, nonce(header, index), aad(header, final)).encrypt(plaintext, output);
}

/** The plaintext, or undefined when the chunk does not authenticate as chunk `index` with this final flag. */
export function openChunk(dataKey: Uint8Array, header: Header, index: number, final: boolean, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < TAG_LENGTH) return undefined;
  try {
    return xchacha20poly1305(dataKey, nonce(header, index), aad(header, final)).decrypt(sealed);
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ incremental

/** Encrypts a stream of plaintext pieces; push() and finish() return the bytes to write, header first. */
export class Encryptor {
  readonly header: Header;
  readonly #key: Uint8Array;
  readonly #buf: Uint8Array;
  #fill = 0;
  #index = 0;
  #started = false;
  #finished = false;

  constructor(seed: Uint8Array, opts: { salt?: Uint8Array; noncePrefix?: Uint8Array; chunkLog2?: number } = {}) {
    const { header, dataKey } = makeHeader(seed, opts);
    this.header = header;
    this.#key = dataKey;
    this.#buf = new Uint8Array(header.chunkSize);
  }

  /** The bytes to write for `plain`, each piece a fresh array. */
  push(plain: Uint8Array): Uint8Array[] {
    return [...this.#seal(plain, undefined)];
  }

  finish(): Uint8Array[] {
    return [...this.#sealLast(undefined)];
  }

  /**
   * `push` for a consumer that is done with each piece before it asks for
   * the next (a writer that awaits each write): sealed chunks share one
   * buffer, instead of a fresh 1 MiB array per chunk left to the GC.
   */
  pieces(plain: Uint8Array): Generator<Uint8Array> {
    return this.#seal(plain, this.#reused());
  }

  /** `finish` with the same contract as `pieces`. */
  lastPieces(): Generator<Uint8Array> {
    return this.#sealLast(this.#reused());
  }

  #out: Uint8Array | undefined;
  #reused(): Uint8Array {
    return (this.#out ??= new Uint8Array(this.#buf.length + TAG_LENGTH));
  }

  *#seal(plain: Uint8Array, out: Uint8Array | undefined): Generator<Uint8Array> {
    if (this.#finished) throw new Error("Encryptor: push after finish");
    if (!this.#started) {
      this.#started = true;
      yield this.header.bytes;
    }
    let at = 0;
    while (at < plain.length) {
      // A full buffer is sealed as non-final only once more data is known to follow.
      if (this.#fill === this.#buf.length) {
        yield sealChunk(this.#key, this.header, this.#index++, false, this.#buf, out);
        this.#fill = 0;
      }
      const n = Math.min(plain.length - at, this.#buf.length - this.#fill);
      this.#buf.set(plain.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
    }
  }

  *#sealLast(out: Uint8Array | undefined): Generator<Uint8Array> {
    if (this.#finished) return;
    if (!this.#started) yield this.header.bytes;
    this.#started = this.#finished = true;
    yield sealChunk(this.#key, this.header, this.#index++, true, this.#buf.subarray(0, this.#fill), out?.subarray(0, this.#fill + TAG_LENGTH));
  }
}

/** A FIFO of byte pieces that hands out exact-length slices without quadratic copying. */
class ByteQueue {
  #parts: Uint8Array[] = [];
  length = 0;
  push(b: Uint8Array): void {
    if (b.length === 0) return;
    this.#parts.push(b);
    this.length += b.length;
  }
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const p = this.#parts[0]!;
      const k = Math.min(p.length, n - at);
      out.set(p.subarray(0, k), at);
      at += k;
      if (k === p.length) this.#parts.shift();
      else this.#parts[0] = p.subarray(k);
    }
    this.length -= n;
    return out;
  }
}

export type SeedSource = () => { seed: Uint8Array } | undefined;

export type DecryptOptions = {
  /** Used in messages ("backup.jsonl.zst: ..."). */
  name?: string;
  /** Replaces the advice given with "no soul" and "another soul" (e.g. restore's --backup-soul-file). */
  soulHint?: string;
};

/**
 * Decrypts a stream of ciphertext pieces. The soul is asked for only once
 * the header has arrived. Errors are EncryptedInputError naming what was
 * detected and where.
 */
export class Decryptor {
  readonly #getSeed: SeedSource;
  readonly #name: string;
  readonly #soulHint?: string;
  readonly #queue = new ByteQueue();
  #header?: Header;
  #key?: Uint8Array;
  #index = 0;
  /** Bytes of the input consumed so far (header and chunks). */
  #offset = 0;
  #done = false;

  constructor(getSeed: SeedSource, opts: DecryptOptions = {}) {
    this.#getSeed = getSeed;
    this.#name = opts.name ?? "the input";
    this.#soulHint = opts.soulHint;
  }

  get header(): Header | undefined {
    return this.#header;
  }

  push(bytes: Uint8Array): Uint8Array[] {
    if (this.#done) throw new Error("Decryptor: push after finish");
    this.#queue.push(bytes);
    const out: Uint8Array[] = [];
    if (!this.#header) {
      if (this.#queue.length < HEADER_LENGTH) return out;
      this.#openHeader(this.#queue.take(HEADER_LENGTH));
    }
    const sealedSize = this.#header!.chunkSize + TAG_LENGTH;
    // Strictly more than one chunk: only then is the next one known not to be the last.
    while (this.#queue.length > sealedSize) out.push(this.#openNonFinal(this.#queue.take(sealedSize)));
    return out;
  }

  finish(): Uint8Array[] {
    if (this.#done) return [];
    this.#done = true;
    if (!this.#header) {
      if (this.#queue.length < HEADER_LENGTH) this.#fail("truncated", `${this.#name} is truncated: it ends inside the encryption header`);
      this.#openHeader(this.#queue.take(HEADER_LENGTH));
    }
    const h = this.#header!;
    const key = this.#key!;
    const rest = this.#queue.length;
    if (rest === 0) {
      if (this.#index === 0) this.#fail("truncated", `${this.#name} is truncated: nothing follows its encryption header`);
      // Unreachable: a full chunk is only consumed when more bytes follow it.
      this.#fail("truncated", `${this.#name} is truncated after chunk ${this.#index - 1}: the final chunk is missing`);
    }
    const sealed = this.#queue.take(rest);
    const at = this.#offset;
    if (rest < TAG_LENGTH) {
      this.#fail("truncated", `${this.#name} is truncated: chunk ${this.#index} (at byte ${at}) is only ${rest} byte(s) long`, this.#index);
    }
    const plain = openChunk(key, h, this.#index, true, sealed);
    if (plain) {
      this.#offset += rest;
      this.#index++;
      return plain.length > 0 ? [plain] : [];
    }
    if (openChunk(key, h, this.#index, false, sealed)) {
      this.#fail(
        "truncated",
        `${this.#name} is truncated: it ends after chunk ${this.#index} (at byte ${at + rest}), exactly at a chunk boundary, and its final chunk is missing`,
        this.#index,
      );
    }
    const moved = this.#findElsewhere(sealed);
    if (moved !== undefined) this.#failMoved(moved);
    this.#fail(
      rest < h.chunkSize + TAG_LENGTH ? "truncated" : "chunk",
      `${this.#name}: the last chunk (chunk ${this.#index}, at byte ${at}) fails authentication: the file was cut short or changed`,
      this.#index,
    );
  }

  #openHeader(bytes: Uint8Array): void {
    const h = parseHeader(bytes, this.#name);
    const soul = this.#getSeed();
    if (!soul) {
      this.#fail(
        "no_soul",
        `${this.#name} is encrypted and no soul was given to decrypt it`,
        undefined,
        this.#soulHint ?? "give the soul of the nara that made the backup: NARA_SOUL=… or --soul-file FILE",
      );
    }
    this.#key = openHeader(h, soul.seed, this.#name, this.#soulHint);
    this.#header = h;
    this.#offset = HEADER_LENGTH;
  }

  #openNonFinal(sealed: Uint8Array): Uint8Array {
    const plain = openChunk(this.#key!, this.#header!, this.#index, false, sealed);
    const at = this.#offset;
    if (plain) {
      this.#index++;
      this.#offset += sealed.length;
      return plain;
    }
    if (openChunk(this.#key!, this.#header!, this.#index, true, sealed)) {
      this.#fail(
        "trailing",
        `${this.#name}: data follows the final chunk (chunk ${this.#index}, ending at byte ${at + sealed.length})`,
        this.#index,
        "was something appended to the file (e.g. two encrypted backups joined with >>)? Appending to an encrypted backup is not supported: write separate files and merge them",
      );
    }
    const moved = this.#findElsewhere(sealed);
    if (moved !== undefined) this.#failMoved(moved);
    this.#fail("chunk", `${this.#name}: chunk ${this.#index} (at byte ${at}) fails authentication: it was changed or damaged`, this.#index);
  }

  /** On the error path only: is this chunk one from a nearby position (reordered, removed, repeated)? */
  #findElsewhere(sealed: Uint8Array): { actual: number; final: boolean } | undefined {
    for (let d = 1; d <= 16; d++) {
      for (const j of [this.#index - d, this.#index + d]) {
        if (j < 0) continue;
        for (const final of [false, true]) if (openChunk(this.#key!, this.#header!, j, final, sealed)) return { actual: j, final };
      }
    }
    return undefined;
  }

  #failMoved(m: { actual: number; final: boolean }): never {
    this.#fail(
      "reordered",
      `${this.#name}: chunk ${this.#index} is out of place (it is chunk ${m.actual}${m.final ? ", the final one," : ""} of the original): chunks were reordered, removed or repeated`,
      this.#index,
    );
  }

  #fail(kind: EncryptErrorKind, message: string, chunk?: number, hint?: string): never {
    this.#done = true;
    throw new EncryptedInputError(kind, message, hint ?? (kind === "no_soul" || kind === "wrong_soul" ? (this.#soulHint ?? "") : DAMAGED_HINT), chunk);
  }
}

const DAMAGED_HINT = "the backup is damaged or was tampered with; nothing after the error was used. Use an intact copy";

// ------------------------------------------------------------------ one-shot and streams

export function encryptBytes(seed: Uint8Array, plaintext: Uint8Array, opts?: { salt?: Uint8Array; noncePrefix?: Uint8Array; chunkLog2?: number }): Uint8Array {
  const e = new Encryptor(seed, opts);
  return concat([...e.push(plaintext), ...e.finish()]);
}

export function decryptBytes(seed: Uint8Array, data: Uint8Array, opts?: DecryptOptions): Uint8Array {
  const d = new Decryptor(() => ({ seed }), opts);
  return concat([...d.push(data), ...d.finish()]);
}

export function encryptStream(seed: Uint8Array, opts?: { chunkLog2?: number }): TransformStream<Uint8Array, Uint8Array> {
  const e = new Encryptor(seed, opts);
  return new TransformStream({
    transform(chunk, ctl) {
      for (const out of e.push(chunk)) ctl.enqueue(out);
    },
    flush(ctl) {
      for (const out of e.finish()) ctl.enqueue(out);
    },
  });
}

export function decryptStream(getSeed: SeedSource, opts?: DecryptOptions): TransformStream<Uint8Array, Uint8Array> {
  const d = new Decryptor(getSeed, opts);
  return new TransformStream({
    transform(chunk, ctl) {
      for (const out of d.push(chunk)) ctl.enqueue(out);
    },
    flush(ctl) {
      for (const out of d.finish()) ctl.enqueue(out);
    },
  });
}

export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
