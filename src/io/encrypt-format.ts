/**
 * The encrypted backup format (docs/ENCRYPTION.md): its header, keys and
 * chunk sealing. XChaCha20-Poly1305 in a chunked, STREAM-like construction,
 * keyed from the owner's soul seed; the streams are in encrypt.ts.
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
import type { xchacha20poly1305 as XChaCha } from "@noble/ciphers/chacha.js";
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

/** Loaded on first use: most runs read or write nothing encrypted, and the module is ~5 ms of every start-up. */
let cipher: typeof XChaCha | undefined;
const xchacha20poly1305 = (key: Uint8Array, nonce: Uint8Array, aad: Uint8Array) =>
  (cipher ??= (require("@noble/ciphers/chacha.js") as typeof import("@noble/ciphers/chacha.js")).xchacha20poly1305)(key, nonce, aad);

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
