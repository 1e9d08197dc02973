/**
 * The baseline the benchmark compares against: what a straightforward port
 * of the Go tool looks like in one JS thread. JSON.parse every page, follow
 * next_cursor as given, keep objects in a Map, sort by the (rounded) number
 * ts, JSON.stringify each event. It is wrong on purpose in the ways
 * PROTOCOL.md warns about (ts loses its last digits, boundary events are
 * skipped, bytes are re-encoded); it exists to be timed, never used.
 */
import type { Identity } from "../src/identity/soul.ts";
import { signRequest } from "../src/mesh/auth.ts";

type SyncEvent = { id: string; ts: number; [k: string]: unknown };

export async function naiveDump(
  peers: { name: string; url: string }[],
  identity: Identity,
  outPath: string,
  pageSize = 5000,
  /** Peers fetched at once (the Go tool runs 5 workers); default all. */
  workers = peers.length,
): Promise<{ written: number }> {
  const all = new Map<string, SyncEvent>();
  const queue = [...peers];
  await Promise.all(
    Array.from({ length: Math.max(1, workers) }, async () => {
      for (let peer = queue.shift(); peer; peer = queue.shift()) {
        let cursor = "";
        for (;;) {
          const headers = { ...signRequest(identity, "POST", "/events/sync"), "Content-Type": "application/json" };
          const res = await fetch(`${peer.url}/events/sync`, {
            method: "POST",
            headers,
            body: JSON.stringify({ from: identity.name, mode: "page", page_size: pageSize, cursor }),
          });
          const page = (await res.json()) as { events: SyncEvent[] | null; next_cursor?: string };
          for (const e of page.events ?? []) all.set(e.id, e);
          if (!page.next_cursor) break;
          cursor = page.next_cursor;
        }
      }
    }),
  );
  const events = [...all.values()].sort((a, b) => a.ts - b.ts);
  const sink = Bun.file(outPath).writer();
  for (const e of events) sink.write(`${JSON.stringify(e)}\n`);
  await sink.end();
  return { written: events.length };
}
