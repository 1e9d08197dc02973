/**
 * What a checking nara does with each imported event besides storing it,
 * for benchmarks that must load the nara as a real one is loaded: the ID is
 * recomputed from ts, svc and payload. Real peers trust the ID they are sent
 * (PROTOCOL.md §5), so a mismatch is only counted, never refused; the
 * emitter signature is checked by peer.ts itself (against the keys learnt
 * from hey-there events).
 */
import { eventId } from "../../src/events/id.ts";
import type { Payload } from "../../src/events/schema.ts";

/** True when `id` is not the ID that ts, svc and payload give. */
export function idMismatch(id: string, ts: string, svc: string, payload: Record<string, unknown>): boolean {
  return eventId(ts, svc, payload as Payload) !== id;
}
