import type { Collector } from "./collect.ts";
import { AFTER_ALL, BEFORE_ALL, lowerFloor, type TsFloor } from "./floor.ts";
import { DEFAULT_INFLIGHT_BYTES, type FetchSettings, type FromWorker, type PeerReport, type PeerTarget, type ToWorker } from "./messages.ts";

export type DumpPlan = {
  peers: PeerTarget[];
  name: string;
  /** Handed to the workers in memory only, to sign requests. */
  soul: string;
  settings: FetchSettings;
  /** Worker threads. */
  workers: number;
  /** Peers fetched at the same time, across all workers. */
  concurrency: number;
};

export type DumpProgress = {
  peersDone: number;
  peersTotal: number;
  /** 0..1: the mean of each peer's estimated share fetched. */
  fraction: number;
};

export type CoordinatorEvents = {
  onPage?: (page: { peer: string; page: number; events: number; bytes: number }, progress: DumpProgress) => void;
  onLog?: (peer: string, level: "warn" | "debug", message: string) => void;
  onPeerDone?: (report: PeerReport, progress: DumpProgress) => void;
  /** No peer will send anything older than `floor` any more (it only rises). */
  onFloor?: (floor: TsFloor) => void;
};

/** How long past a peer's own deadline the coordinator waits before declaring it lost. */
const GRACE_MS = 5_000;

/**
 * In a `bun build --compile` binary every module reports the entry's URL
 * (file:///$bunfs/root/nara-backup) and workers sit beside it; from source,
 * this file sits two levels down. Both are absolute URLs, never paths
 * relative to the working directory (which a binary would load from disk).
 */
const workerUrl = import.meta.url.includes("$bunfs")
  ? new URL("./workers/fetch-peer.ts", import.meta.url)
  : new URL("../../workers/fetch-peer.ts", import.meta.url);

/**
 * Hands peers to a pool of fetch workers, feeds every page into the
 * collector as it arrives, and resolves with one report per peer. A peer
 * that fails, hangs or takes a worker down is reported; the others go on.
 */
export function runDump(plan: DumpPlan, collector: Collector, events: CoordinatorEvents = {}): Promise<PeerReport[]> {
  const pending = [...plan.peers];
  const reports = new Map<string, PeerReport>();
  const share = new Map<string, number>();
  const received = new Map<string, { pages: number; events: number; bytes: number }>();
  /** Per peer: it sends nothing older than this any more. Peers not started yet could send anything. */
  const floors = new Map<string, TsFloor>(plan.peers.map((p) => [p.name, BEFORE_ALL]));
  let floor = BEFORE_ALL;
  const raiseFloor = (peer: string, to: TsFloor) => {
    floors.set(peer, to);
    let min = AFTER_ALL;
    for (const f of floors.values()) if (lowerFloor(f, min)) min = f;
    if (lowerFloor(floor, min)) {
      floor = min;
      events.onFloor?.(floor);
    }
  };
  const poolSize = Math.max(1, Math.min(plan.workers, plan.peers.length));
  const perWorker = Math.max(1, Math.ceil(plan.concurrency / poolSize));

  type Slot = { worker: Worker; active: Map<string, Timer> };
  const slots: Slot[] = [];

  const progress = (): DumpProgress => {
    let sum = 0;
    for (const p of plan.peers) sum += reports.has(p.name) ? 1 : (share.get(p.name) ?? 0);
    return { peersDone: reports.size, peersTotal: plan.peers.length, fraction: plan.peers.length ? sum / plan.peers.length : 1 };
  };

  return new Promise((resolve, reject) => {
    /** The dump cannot go on (the collector failed: a spill onto a full disk): every worker stops. */
    let failed = false;
    const fail = (err: unknown) => {
      failed = true;
      for (const s of slots) {
        for (const t of s.active.values()) clearTimeout(t);
        s.worker.terminate();
      }
      reject(err);
    };
    const finish = (slot: Slot | undefined, report: PeerReport) => {
      if (failed || reports.has(report.name)) return;
      if (slot) {
        clearTimeout(slot.active.get(report.name));
        slot.active.delete(report.name);
      }
      reports.set(report.name, report);
      events.onPeerDone?.(report, progress());
      raiseFloor(report.name, AFTER_ALL);
      if (slot) dispatch(slot);
      if (reports.size === plan.peers.length) {
        for (const s of slots) s.worker.terminate();
        resolve(plan.peers.map((p) => reports.get(p.name)!));
      }
    };

    const lost = (peer: PeerTarget, status: PeerReport["status"], error: string, hint?: string): PeerReport => ({
      name: peer.name,
      url: peer.url,
      status,
      ...(received.get(peer.name) ?? { pages: 0, events: 0, bytes: 0 }),
      streams: 0,
      retries: 0,
      signatures: "unchecked",
      error,
      hint,
      warnings: [],
      seconds: (plan.settings.timeoutMs + GRACE_MS) / 1000,
    });

    const dispatch = (slot: Slot) => {
      while (slot.active.size < perWorker && pending.length > 0) {
        const peer = pending.shift()!;
        // A backstop for a worker that stops answering: the peer's own deadline lives in the worker.
        const guard = setTimeout(
          () => finish(slot, lost(peer, "timeout", "the fetch worker did not report back in time")),
          plan.settings.timeoutMs + GRACE_MS,
        );
        slot.active.set(peer.name, guard);
        slot.worker.postMessage({ type: "fetch", peer } satisfies ToWorker);
      }
    };

    const spawn = (): Slot => {
      const worker = new Worker(workerUrl);
      const slot: Slot = { worker, active: new Map() };
      worker.onmessage = (e: MessageEvent<FromWorker>) => {
        const m = e.data;
        if (m.type === "page") {
          // Taken in (or dropped): the worker may ask for more. Sent first, as the page is read by then.
          if (m.ack !== undefined) worker.postMessage({ type: "ack", ack: m.ack } satisfies ToWorker);
          if (reports.has(m.peer)) return;
          const size = m.served;
          if (failed) return;
          if (m.count > 0) {
            try {
              collector.add(m);
            } catch (err) {
              return fail(err);
            }
            // The page's bytes are copied out: free its buffer now rather than at the next GC.
            (m.bytes.buffer as ArrayBuffer).transfer(0);
          }
          share.set(m.peer, m.progress);
          const r = received.get(m.peer) ?? { pages: 0, events: 0, bytes: 0 };
          received.set(m.peer, { pages: r.pages + 1, events: r.events + m.count, bytes: r.bytes + size });
          events.onPage?.({ peer: m.peer, page: m.page, events: m.count, bytes: size }, progress());
          raiseFloor(m.peer, { hi: m.floorHi, lo: m.floorLo });
        } else if (m.type === "log") events.onLog?.(m.peer, m.level, m.message);
        else if (m.type === "done") finish(slot, m.report);
      };
      worker.onerror = (e: ErrorEvent) => {
        // Its peers are reported failed with what they gave so far; the rest go to a new worker.
        e.preventDefault();
        const names = [...slot.active.keys()];
        slots.splice(slots.indexOf(slot), 1);
        worker.terminate();
        for (const name of names) {
          const peer = plan.peers.find((p) => p.name === name)!;
          finish(undefined, lost(peer, "failed", `the fetch worker crashed: ${e.message}`));
          clearTimeout(slot.active.get(name));
        }
        if (pending.length > 0) {
          const fresh = spawn();
          dispatch(fresh);
        }
      };
      // Each worker gets its share of the bytes that may be held.
      const inflightBytes = Math.ceil((plan.settings.inflightBytes ?? DEFAULT_INFLIGHT_BYTES) / poolSize);
      worker.postMessage({ type: "init", name: plan.name, soul: plan.soul, settings: { ...plan.settings, inflightBytes } } satisfies ToWorker);
      slots.push(slot);
      return slot;
    };

    if (plan.peers.length === 0) return resolve([]);
    for (let i = 0; i < poolSize; i++) spawn();
    for (const slot of slots) dispatch(slot);
  });
}
