/**
 * Buffers that node:crypto and streams hand out fresh (a decrypted block, a
 * decompressed chunk) are collected late by the engine: reading 100 MB that
 * way grew RSS by ~35 MiB. A full collection every GC_EVERY bytes of such
 * garbage keeps it flat for a few percent of time (measured: 32M sort of
 * 100 MB, peak RSS 150 -> 115 MiB, 0.86 -> 0.92 s).
 */
const GC_EVERY = 16 << 20;
let since = 0;

/** Counts bytes of buffers that became garbage; collects once enough piled up. */
export function noteGarbage(bytes: number): void {
  since += bytes;
  if (since >= GC_EVERY) {
    since = 0;
    Bun.gc(true);
  }
}
