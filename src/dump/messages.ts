/** What crosses between the coordinator and the fetch workers. */

export type PeerTarget = { name: string; url: string };

export type FetchSettings = {
  /** The whole budget for one peer: its ping and all its pages, retries included. */
  timeoutMs: number;
  pageSize: number;
  /** Drop a peer whose response signatures fail, instead of warning. */
  strict: boolean;
  /** First retry delay; doubles up to `maxBackoffMs`. */
  backoffMs: number;
  maxBackoffMs: number;
  /** Page bytes held in memory before requests wait, for all workers together (see dump/budget.ts); default DEFAULT_INFLIGHT_BYTES. */
  inflightBytes?: number;
  /** A sync page's body is cut off past this (see io/body.ts); default DEFAULT_MAX_PAGE_BYTES. */
  maxPageBytes?: number;
  /** A response silent this long is abandoned and retried; default DEFAULT_IDLE_MS, 0 = never. */
  idleMs?: number;
  /** Requests to one peer at once, each paging its own ts range (see dump/streams.ts); default DEFAULT_STREAMS_PER_PEER. */
  streamsPerPeer?: number;
  /**
   * A peer's range is split only while its pages wait at least this long for
   * their first byte: a far peer (a near one means the client is the
   * bottleneck, and more cursors would only add pages). One whose pages wait
   * less than half their transfer is bound by its link and gets two cursors
   * at most. Default DEFAULT_FAR_MS; tests set 0.
   */
  farMs?: number;
  /** Every peer request goes through this HTTP proxy (the joined mesh's tailscaled, or --proxy); set explicitly, so HTTP_PROXY cannot redirect it. */
  proxy?: string;
};

export const DEFAULT_MAX_PAGE_BYTES = 64 << 20;
export const DEFAULT_IDLE_MS = 30_000;

export const DEFAULT_INFLIGHT_BYTES = 8 << 20;
/** Every page costs a nara a filter and sort of its whole ledger, and naras are small machines. */
export const DEFAULT_STREAMS_PER_PEER = 3;
/** Real meshes answer in 50–300 ms; loopback and a LAN in a few. */
export const DEFAULT_FAR_MS = 40;

export type ToWorker =
  | { type: "init"; name: string; soul: string; settings: FetchSettings }
  | { type: "fetch"; peer: PeerTarget }
  /** The page the worker numbered `ack` has been taken in (see PageBatch.ack). */
  | { type: "ack"; ack: number }
  | { type: "stop" };

/**
 * One page's new events as compact data: the page bytes (transferred, not
 * copied) and parallel arrays describing each event forwarded from it.
 */
export type PageBatch = {
  type: "page";
  peer: string;
  /** 1 for the peer's first page. */
  page: number;
  /** The page's body; empty when no event of it is new (then nothing of it is needed). */
  bytes: Uint8Array;
  /** Size of the body as served. */
  served: number;
  count: number;
  start: Uint32Array;
  end: Uint32Array;
  /** Ids of 32 lowercase hex characters as four words each (see dump/idtable.ts); zero for the others. */
  idWords: Uint32Array;
  /** Keys of the other ids (flag STRING_ID), in event order, joined by "\n" (keys never hold a raw line break). */
  ids: string;
  tsHi: Float64Array;
  tsLo: Float64Array;
  flags: Uint8Array;
  /** Estimated share of the peer's ledger fetched so far, 0..1 (for the ETA). */
  progress: number;
  /**
   * From now on this peer sends only events with ts >= floor (the lowest ts
   * its streams' next cursors re-read), as the exact halves of splitTsInto. Once every peer is
   * past a ts, what is older can be written.
   */
  floorHi: number;
  floorLo: number;
  /** When set, the worker waits for { type: "ack", ack } before it counts the page's bytes out of flight. */
  ack?: number;
};

export type PeerStatus = "ok" | "incomplete" | "failed" | "timeout";

export type PeerReport = {
  name: string;
  url: string;
  status: PeerStatus;
  pages: number;
  /** Cursors that paged it (ranges of its history fetched side by side). */
  streams: number;
  /** Events forwarded from this peer (after its own page overlaps were removed). */
  events: number;
  bytes: number;
  retries: number;
  /** Response signatures: checked against the /ping key, or not checked. */
  signatures: "verified" | "failed" | "unchecked";
  error?: string;
  hint?: string;
  warnings: string[];
  seconds: number;
};

export type FromWorker =
  | PageBatch
  | { type: "log"; peer: string; level: "warn" | "debug"; message: string }
  | { type: "done"; report: PeerReport };

/** Batch flag (beside the scanner's EventFlag bits): this event's key is in `ids`, not `idWords`. */
export const STRING_ID = 128;

/** The buffers a page batch hands over to the receiver. */
export const transferList = (m: PageBatch): ArrayBuffer[] =>
  [m.bytes, m.start, m.end, m.idWords, m.tsHi, m.tsLo, m.flags].map((a) => a.buffer as ArrayBuffer);
