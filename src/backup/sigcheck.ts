/**
 * Ed25519 signature checks off the main thread. Verifying is what a verify
 * run spends most of its time on (~27k signatures/s per core natively,
 * against ~50 MB/s of parsing), so the main thread parses and hashes while
 * worker threads verify batches of (SHA-256 digest, signature, key number).
 *
 * The worker is a few lines of plain JavaScript that needs only node:crypto,
 * started from a Blob URL: nothing to list as an entrypoint for
 * `bun build --compile`, and nothing to find on disk at run time.
 */
import { edVerifyRaw } from "../identity/crypto.ts";
import type { KeyRing } from "./keys.ts";

const WORKER_SOURCE = `
const { createPublicKey, verify } = require("node:crypto");
const PREFIX = Buffer.from("302a300506032b6570032100", "hex");
const keys = [];
self.onmessage = (e) => {
  const m = e.data;
  if (m.type === "key") {
    try {
      keys[m.index] = createPublicKey({ key: Buffer.concat([PREFIX, Buffer.from(m.raw)]), format: "der", type: "spki" });
    } catch {
      keys[m.index] = null;
    }
    return;
  }
  const { seq, n, hashes, sigs, keyIdx } = m;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = keys[keyIdx[i]];
    if (!k) continue;
    try {
      out[i] = verify(null, hashes.subarray(i * 32, i * 32 + 32), k, sigs.subarray(i * 64, i * 64 + 64)) ? 1 : 0;
    } catch {}
  }
  postMessage({ seq, out, hashes, sigs, keyIdx }, [out.buffer, hashes.buffer, sigs.buffer, keyIdx.buffer]);
};
`;

const BATCH = 512;
const IN_FLIGHT_PER_THREAD = 4;

/**
 * `hash` and `sig` are only valid during the call (views of a reused
 * buffer): copy what must outlive it.
 */
export type SigResult<T> = (meta: T, ok: boolean, keyIndex: number, hash: Uint8Array, sig: Uint8Array) => void;

type Batch<T> = { hashes: Uint8Array; sigs: Uint8Array; keyIdx: Int32Array; meta: T[] };
/** A worker's answer: a verdict per item, and the batch's buffers handed back. */
type Reply = { seq: number; out: Uint8Array; hashes: Uint8Array; sigs: Uint8Array; keyIdx: Int32Array };

let workerUrl: string | undefined;

export class SigChecker<T> {
  readonly threads: number;
  readonly #keys: KeyRing;
  readonly #onResult: SigResult<T>;
  readonly #workers: Worker[] = [];
  #batch: Batch<T>;
  #seq = 0;
  #next = 0;
  readonly #pending = new Map<number, Batch<T>>();
  #waiters: (() => void)[] = [];
  #failure: Error | undefined;
  #checked = 0;

  /** `threads` 0 verifies on the calling thread. */
  constructor(opts: { threads: number; keys: KeyRing; onResult: SigResult<T> }) {
    this.#keys = opts.keys;
    this.#onResult = opts.onResult;
    this.#batch = newBatch();
    let threads = Math.max(0, Math.floor(opts.threads));
    if (threads > 0) {
      try {
        workerUrl ??= URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
        for (let i = 0; i < threads; i++) this.#workers.push(this.#start(workerUrl));
      } catch {
        for (const w of this.#workers) w.terminate();
        this.#workers.length = 0;
        threads = 0;
      }
    }
    this.threads = this.#workers.length;
    if (this.threads > 0) {
      opts.keys.raw.forEach((raw, index) => this.#sendKey(index, raw));
      const previous = opts.keys.onNewKey;
      opts.keys.onNewKey = (index, raw) => {
        previous?.(index, raw);
        this.#sendKey(index, raw);
      };
    }
  }

  /** Signatures checked so far. */
  get checked(): number {
    return this.#checked;
  }

  #start(url: string): Worker {
    const w = new Worker(url);
    w.onmessage = (e: MessageEvent) => this.#done(e.data as Reply);
    w.onerror = (e: ErrorEvent) => {
      this.#failure ??= new Error(`signature thread failed: ${e.message}`);
      this.#wake();
    };
    w.unref();
    return w;
  }

  #sendKey(index: number, raw: Uint8Array): void {
    for (const w of this.#workers) w.postMessage({ type: "key", index, raw: raw.slice() });
  }

  /**
   * Queues one check of `sig` (64 bytes) over `hash` (32 bytes) with key
   * number `keyIndex`. Returns a promise when too much is in flight: await
   * it before adding more.
   */
  add(hash: Uint8Array, sig: Uint8Array, keyIndex: number, meta: T): void | Promise<void> {
    if (this.threads === 0) {
      this.#checked++;
      this.#onResult(meta, edVerifyRaw(sig, hash, this.#keys.object(keyIndex)), keyIndex, hash, sig);
      return;
    }
    const b = this.#batch;
    const n = b.meta.length;
    b.hashes.set(hash, n * 32);
    b.sigs.set(sig, n * 64);
    b.keyIdx[n] = keyIndex;
    b.meta.push(meta);
    if (b.meta.length === BATCH) {
      this.#post();
      if (this.#pending.size >= this.threads * IN_FLIGHT_PER_THREAD) return this.#room();
    }
  }

  #post(): void {
    const b = this.#batch;
    if (b.meta.length === 0) return;
    this.#batch = newBatch();
    const seq = ++this.#seq;
    this.#pending.set(seq, b);
    const w = this.#workers[this.#next++ % this.#workers.length]!;
    w.postMessage({ seq, n: b.meta.length, hashes: b.hashes, sigs: b.sigs, keyIdx: b.keyIdx }, [b.hashes.buffer, b.sigs.buffer, b.keyIdx.buffer]);
  }

  #done(msg: Reply): void {
    const b = this.#pending.get(msg.seq);
    if (!b) return;
    this.#pending.delete(msg.seq);
    const keyIdx = msg.keyIdx;
    try {
      for (let i = 0; i < b.meta.length; i++) {
        this.#checked++;
        this.#onResult(b.meta[i]!, msg.out[i] === 1, keyIdx[i]!, msg.hashes.subarray(i * 32, i * 32 + 32), msg.sigs.subarray(i * 64, i * 64 + 64));
      }
    } catch (err) {
      this.#failure ??= err as Error;
    }
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  async #room(): Promise<void> {
    while (this.#pending.size >= this.threads * IN_FLIGHT_PER_THREAD && !this.#failure) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#failure) throw this.#failure;
  }

  /** Sends what is queued and waits for every result. */
  async flush(): Promise<void> {
    if (this.threads === 0) return;
    this.#post();
    while (this.#pending.size > 0 && !this.#failure) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.#failure) throw this.#failure;
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers.length = 0;
  }
}

function newBatch<T>(): Batch<T> {
  return { hashes: new Uint8Array(BATCH * 32), sigs: new Uint8Array(BATCH * 64), keyIdx: new Int32Array(BATCH), meta: [] };
}
