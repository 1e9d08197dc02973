/**
 * Temporary files (sorted runs, the stdout spool) sealed with AES-256-GCM
 * under a key that exists only in this process's memory: events of an
 * encrypted backup never reach the disk in the clear, and a temporary file
 * left behind by a crash (kill -9, power loss) is unreadable. Native
 * AES-GCM runs at well over 1 GB/s, so this costs a few percent.
 *
 * File: u32 file number, then blocks of: u32 plaintext length, 16-byte tag,
 * ciphertext. Nonce = file number (u32) || block number (u64): unique for
 * the key, which is never reused across processes.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { totalmem } from "node:os";
import { ExitCode, NaraError } from "../errors.ts";
import { noteGarbage } from "./gc.ts";
import { ioError } from "./ioerror.ts";

/** --max-memory's default: 512 MiB, or a quarter of the machine's memory when that is less (at least 64 MiB). */
export const defaultMaxMemory = (): number => Math.min(512 << 20, Math.max(64 << 20, Math.floor(totalmem() / 4)));

/** Plaintext bytes per block. */
export const SEAL_BLOCK = 64 << 10;
const HEADER = 20;

function nonce(file: number, block: number): Buffer {
  const iv = Buffer.alloc(12);
  iv.writeUInt32BE(file, 0);
  iv.writeUInt32BE(Math.floor(block / 2 ** 32), 4);
  iv.writeUInt32BE(block >>> 0, 8);
  return iv;
}

function writeAll(fd: number, data: Uint8Array): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

export class TempSealer {
  readonly #key = randomBytes(32);
  #files = 0;

  /** Creates `path` (0600, must not exist). */
  writer(path: string): SealedWriter {
    return new SealedWriter(path, this.#key, ++this.#files);
  }

  reader(path: string): SealedReader {
    return new SealedReader(path, this.#key);
  }
}

export class SealedWriter {
  private fd: number;
  private block = 0;
  /** Plaintext bytes written. */
  size = 0;

  constructor(
    readonly path: string,
    private readonly key: Buffer,
    private readonly file: number,
  ) {
    try {
      this.fd = openSync(path, "wx", 0o600);
    } catch (err) {
      throw new NaraError(`cannot create a temporary file in ${path.slice(0, path.lastIndexOf("/"))}`, {
        cause: err,
        hint: "set --temp-dir (or TMPDIR) to a writable directory with room for about the size of the inputs",
        exitCode: ExitCode.usage,
      });
    }
    const head = Buffer.alloc(4);
    head.writeUInt32LE(file, 0);
    try {
      writeAll(this.fd, head);
    } catch (err) {
      // A disk that filled up between two runs fails here, at the first write: the same one line as any later write.
      this.close();
      throw ioError(err, `temporary file ${path}`, "cannot write");
    }
  }

  write(data: Uint8Array): void {
    try {
      this.seal(data);
    } catch (err) {
      throw ioError(err, `temporary file ${this.path}`, "cannot write");
    }
  }

  private seal(data: Uint8Array): void {
    for (let at = 0; at < data.length; at += SEAL_BLOCK) {
      const piece = data.subarray(at, Math.min(data.length, at + SEAL_BLOCK));
      const c = createCipheriv("aes-256-gcm", this.key, nonce(this.file, this.block++));
      const sealed = c.update(piece);
      c.final();
      const head = Buffer.allocUnsafe(HEADER);
      head.writeUInt32LE(piece.length, 0);
      c.getAuthTag().copy(head, 4);
      writeAll(this.fd, head);
      writeAll(this.fd, sealed);
      this.size += piece.length;
      noteGarbage(sealed.length);
    }
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}

export class SealedReader {
  private fd: number;
  private file = 0;
  private block = 0;
  private readonly head = Buffer.allocUnsafe(HEADER);
  private sealed = Buffer.allocUnsafe(SEAL_BLOCK);

  constructor(
    readonly path: string,
    private readonly key: Buffer,
  ) {
    this.fd = openSync(path, "r");
    const first = Buffer.alloc(4);
    if (this.readExact(first, 4) !== 4) throw this.damaged();
    this.file = first.readUInt32LE(0);
  }

  private readExact(into: Buffer, n: number): number {
    let got = 0;
    while (got < n) {
      const k = readSync(this.fd, into, got, n - got, null);
      if (k === 0) break;
      got += k;
    }
    return got;
  }

  private damaged(): NaraError {
    return new NaraError(`temporary file ${this.path} was changed or cut short on disk`, { exitCode: ExitCode.internal });
  }

  /** The next block's plaintext (a new buffer), or undefined at the end. */
  next(): Buffer | undefined {
    const got = this.readExact(this.head, HEADER);
    if (got === 0) {
      this.close();
      return undefined;
    }
    if (got !== HEADER) throw this.damaged();
    const len = this.head.readUInt32LE(0);
    if (len > SEAL_BLOCK) throw this.damaged();
    if (this.readExact(this.sealed, len) !== len) throw this.damaged();
    const d = createDecipheriv("aes-256-gcm", this.key, nonce(this.file, this.block++));
    d.setAuthTag(this.head.subarray(4, HEADER));
    try {
      const plain = d.update(this.sealed.subarray(0, len));
      d.final();
      noteGarbage(len);
      return plain;
    } catch {
      throw this.damaged();
    }
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}
