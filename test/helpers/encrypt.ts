/**
 * One-shot and web-stream forms of src/io/encrypt.ts's Encryptor and
 * Decryptor, for tests and benchmarks (the product streams through them).
 */
import { Decryptor, Encryptor, type DecryptOptions, type SeedSource } from "../../src/io/encrypt.ts";

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
