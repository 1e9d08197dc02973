/**
 * The simulator's WAN mode: a peer as far away as real naras are (WireGuard
 * over the internet, often through DERP relays). Per peer: a round trip
 * with jitter before each response's first byte, one uplink whose bandwidth
 * its concurrent responses share (a nara's uplink, not a per-connection
 * limit), and a server cost per page that grows with the ledger (a real
 * nara filters and sorts its whole ledger for each page, one page at a
 * time). Waits are timers, never burnt CPU: the simulated naras' machines
 * are not this one.
 */
import { Rng } from "./generate.ts";

export type WanOptions = {
  /** Round trip before a response's first byte, ms. */
  rttMs?: number;
  /** Each response waits 0..jitterMs more (uniform). */
  jitterMs?: number;
  /** The peer's uplink in bytes/s, shared by all its responses in flight; unlimited when unset. */
  bytesPerSec?: number;
  /** Server time per page for each event of the ledger, ns (pages are computed one at a time). */
  costNsPerEvent?: number;
};

/** How often the shared uplink hands out bytes. */
const TICK_MS = 10;

type Transfer = { body: Uint8Array; sent: number; controller: ReadableStreamDefaultController<Uint8Array> };

export class WanLink {
  private readonly rng: Rng;
  /** When the peer's CPU is free for the next page. */
  private busyUntil = 0;
  private readonly active = new Set<Transfer>();
  private timer: Timer | undefined;
  private last = 0;

  constructor(
    readonly options: WanOptions,
    seed: number,
  ) {
    this.rng = new Rng(seed ^ 0x57414e);
  }

  /** `res` as it reaches the client: after the page's server cost (if `ledgerEvents`), the round trip, and through the uplink. */
  async respond(res: Response, ledgerEvents: number): Promise<Response> {
    const { rttMs = 0, jitterMs = 0, bytesPerSec, costNsPerEvent = 0 } = this.options;
    if (ledgerEvents > 0 && costNsPerEvent > 0) {
      const start = Math.max(performance.now(), this.busyUntil);
      this.busyUntil = start + (ledgerEvents * costNsPerEvent) / 1e6;
      await sleep(this.busyUntil - performance.now());
    }
    await sleep(rttMs + this.rng.next() * jitterMs);
    if (!bytesPerSec || res.body === null) return res;
    const body = new Uint8Array(await res.arrayBuffer());
    const headers = new Headers(res.headers);
    headers.delete("Content-Length");
    let transfer: Transfer;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        transfer = { body, sent: 0, controller };
        this.active.add(transfer);
        this.schedule();
      },
      cancel: () => {
        this.active.delete(transfer);
      },
    });
    return new Response(stream, { status: res.status, headers });
  }

  /** Ends every response in flight (the peer stops). */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const t of this.active) {
      try {
        t.controller.error(new Error("peer stopped"));
      } catch {}
    }
    this.active.clear();
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.last = performance.now();
    this.timer = setTimeout(() => this.tick(), TICK_MS);
  }

  /** Shares what the uplink carried since the last tick equally among the responses in flight (what one does not need goes to the others). */
  private tick(): void {
    this.timer = undefined;
    const t = performance.now();
    let budget = Math.floor(((t - this.last) / 1000) * this.options.bytesPerSec!);
    while (budget > 0 && this.active.size > 0) {
      const share = Math.max(1, Math.floor(budget / this.active.size));
      for (const tr of [...this.active]) {
        const n = Math.min(share, tr.body.length - tr.sent, budget);
        if (n <= 0) continue;
        tr.controller.enqueue(tr.body.slice(tr.sent, tr.sent + n));
        tr.sent += n;
        budget -= n;
        if (tr.sent >= tr.body.length) {
          tr.controller.close();
          this.active.delete(tr);
        }
      }
    }
    if (this.active.size > 0) this.schedule();
  }
}

const sleep = (ms: number): Promise<void> => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve());
