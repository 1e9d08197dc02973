/**
 * Encrypted backups (docs/ENCRYPTION.md): the Encryptor and Decryptor that
 * turn a stream of pieces into the format of encrypt-format.ts and back.
 */
import {
  EncryptedInputError,
  HEADER_LENGTH,
  makeHeader,
  openChunk,
  openHeader,
  parseHeader,
  sealChunk,
  TAG_LENGTH,
  type EncryptErrorKind,
  type Header,
} from "./encrypt-format.ts";

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
