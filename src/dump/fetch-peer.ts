import { abortableSleep, backoffDelay } from "../io/retry.ts";
import { describeError } from "../errors.ts";
import type { Identity } from "../identity/soul.ts";
import { signRequest, verifyResponse } from "../mesh/auth.ts";
import { EventFlag, ScanError, idKey, scanSyncPage, splitTsInto, type SyncPage } from "../events/scan.ts";
import { hexWords } from "../events/idtable.ts";
import type { Backlog } from "./budget.ts";
import { lowerFloor, type TsFloor } from "./collect.ts";
import { advance, newStream, peerFloor, steal, type Stream } from "./streams.ts";
import { grown } from "../typed.ts";
import { BodyIdle, BodyTooLarge, formatCap, readBody, readText, SMALL_BODY_BYTES, type BodyLimits } from "../io/body.ts";
import {
  DEFAULT_FAR_MS,
  DEFAULT_IDLE_MS,
  DEFAULT_MAX_PAGE_BYTES,
  DEFAULT_STREAMS_PER_PEER,
  STRING_ID,
  type FetchSettings,
  type FromWorker,
  type PageBatch,
  type PeerReport,
  type PeerTarget,
} from "./messages.ts";

/** A failure worth another attempt (5xx, dropped connection, truncated body). */
class Retryable extends Error {}
/** A failure that another attempt will not fix (401, 400, strict signature check). */
class Fatal extends Error {
  constructor(
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

export type FetchPeerDeps = {
  fetch?: typeof fetch;
  now?: () => number;
  /** Shared by the peers of one worker: bodies arrived and not yet handed on, and pages the coordinator has not taken in. */
  backlog?: Backlog;
};

/** What a page left for the paging logic once its events were handed on. */
type PageOutcome = {
  count: number;
  kept: number;
  eventsNull: boolean;
  nextCursor: string | undefined;
  /** Ids forwarded at next_cursor's ts (undefined when next_cursor is not decimal). */
  pageTsIds: Set<string> | undefined;
  /** next_cursor is older than the previous page's: the peer does not page in order. */
  backwards: boolean;
  /** The stream reached the end of its range. */
  ended: boolean;
};

/**
 * Scratch for the page being handled. A page is scanned and handed on
 * synchronously (no await between), so one set serves every peer of a
 * worker: ~300 KB of garbage less per page.
 */
const scratch = {
  page: undefined as SyncPage | undefined,
  keep: new Uint32Array(1024),
  idWords: new Uint32Array(4 * 1024),
  stringIds: new Uint8Array(1024),
  tsHi: new Float64Array(1024),
  tsLo: new Float64Array(1024),
};

function scratchFor(n: number): typeof scratch {
  if (scratch.keep.length < n) {
    const size = Math.max(n, scratch.keep.length * 2);
    scratch.keep = new Uint32Array(size);
    scratch.idWords = new Uint32Array(size * 4);
    scratch.stringIds = new Uint8Array(size);
    scratch.tsHi = new Float64Array(size);
    scratch.tsLo = new Float64Array(size);
  }
  scratch.stringIds.fill(0, 0, n);
  return scratch;
}

/** Bytes a page of `pageSize` events is expected to take before any page was seen. */
const FIRST_GUESS_PER_EVENT = 400;

/** Cursor "strictly after ts - 1": re-reads the boundary ts so that no event sharing it is skipped. */
const before = (ts: string): string => (BigInt(ts) - 1n).toString();

const isDecimal = (s: string): boolean => /^-?\d+$/.test(s);

/** Nanoseconds as a double: precise enough for a progress estimate, never for data. */
const approxNs = (hi: number, lo: number): number => hi * 1e9 + lo;

/**
 * Fetches one peer's whole ledger, page by page, under one deadline that
 * covers every page and retry. Each page's new events are handed to `emit`
 * as soon as they arrive, so a peer that fails later keeps what it gave.
 */
export async function fetchPeer(
  peer: PeerTarget,
  identity: Identity,
  settings: FetchSettings,
  /** `takenIn`, given with a page, is to be called once the coordinator has the page. */
  emit: (m: FromWorker, takenIn?: () => void) => void,
  deps: FetchPeerDeps = {},
): Promise<PeerReport> {
  const proxy = settings.proxy;
  const doFetch = deps.fetch ?? (proxy ? (((url, init) => fetch(url, { ...init, proxy })) as typeof fetch) : fetch);
  const now = deps.now ?? Date.now;
  const started = now();
  const deadline = started + settings.timeoutMs;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error("peer timeout")), settings.timeoutMs);
  const report: PeerReport = {
    name: peer.name,
    url: peer.url,
    status: "ok",
    pages: 0,
    events: 0,
    bytes: 0,
    streams: 0,
    retries: 0,
    signatures: "unchecked",
    warnings: [],
    seconds: 0,
  };
  const warn = (message: string) => {
    report.warnings.push(message);
    emit({ type: "log", peer: peer.name, level: "warn", message });
  };
  const debug = (message: string) => emit({ type: "log", peer: peer.name, level: "debug", message });

  // One stream failing fails the peer: the others stop (what they gave is kept). Its end stops the probe.
  const stop = new AbortController();
  try {
    // Asked for alongside the first page, not before it: the key is needed only to check that page.
    const publicKey = pingKey(peer, doFetch, abort.signal, warn, debug, settings.idleMs ?? DEFAULT_IDLE_MS);
    // Never an unhandled rejection if the first page fails first; fetchPage awaits it and sees the error.
    publicKey.catch(() => {});
    const maxStreams = Math.max(1, settings.streamsPerPeer ?? DEFAULT_STREAMS_PER_PEER);
    const farMs = settings.farMs ?? DEFAULT_FAR_MS;
    const signal = AbortSignal.any([abort.signal, stop.signal]);
    const live = new Set<Stream>();
    let firstNs = NaN;
    let malformed = 0;
    /** The newest ts the peer may hold: now, until its answer to the probe below or a page shows where its ledger ends. */
    let top = BigInt(Math.floor(now())) * 1_000_000n;
    /** Ranges are split once the probe has answered (or failed). */
    let topKnown = maxStreams === 1;
    let finished = false;
    /** The ts span of the last full page: how wide a range one request covers. */
    let pageSpan = 0n;
    /** The last page's wait for its first byte and its transfer, ms: more cursors help only a peer that is far, not one whose link is full. */
    let waitMs = 0;
    let expectBytes = settings.pageSize * FIRST_GUESS_PER_EVENT;
    let transferMs = 0;
    let answered = false;
    /**
     * How long a request's expected body counts as held before it lands: a near peer's lands at once, so
     * until it does (at most a second, as a hanging peer must not stall the others); a far one's after farMs.
     */
    const holdMs = () => (!answered ? 4 * farMs : waitMs < farMs ? 1_000 : farMs);
    const timing = (wait: number, transfer: number) => {
      answered = true;
      waitMs = wait;
      transferMs = transfer;
    };

    /** Sorts out a page's new events and hands them on; synchronous, straight after the scan. */
    const takePage = (s: Stream, bytes: Uint8Array, page: SyncPage): PageOutcome => {
      report.pages++;
      report.bytes += bytes.length;
      expectBytes = Math.max(bytes.length, 1024);

      // Which events of this page are new to us (the re-read boundary ts repeats some) and this stream's (the range's edges).
      const n = page.count;
      const { keep, idWords, stringIds, tsHi, tsLo } = scratchFor(n);
      let kept = 0;
      const ids = new IdList(1024);
      const pageTs = page.nextCursor ?? "";
      let pageTsIds: Set<string> | undefined = isDecimal(pageTs) ? new Set() : undefined;
      // Compared as numbers (both halves exact): no text comparison per event.
      const boundary = tsMark(s.boundaryTs);
      const pageMark = tsMark(pageTs);
      const { startMark, endMark } = s;
      if (pageTs === s.boundaryTs && pageTsIds) pageTsIds = new Set(s.boundaryIds);
      for (let i = 0; i < n; i++) {
        const flags = page.flags[i]!;
        if (flags & (EventFlag.noId | EventFlag.badTs)) {
          malformed++;
          if (malformed <= 5) {
            warn(
              `page ${report.pages}: event at byte ${page.start[i]} skipped: ${flags & EventFlag.noId ? "no string id" : "ts is not an integer"}`,
            );
          }
          continue;
        }
        const at = kept;
        splitTsInto(bytes, page.tsStart[i]!, page.tsEnd[i]!, tsHi, tsLo, at);
        const hi = tsHi[at]!;
        const lo = tsLo[at]!;
        // Another stream's: at or past this range's end, or (from a peer that ignores cursors) before its start.
        if (hi > endMark.hi || (hi === endMark.hi && lo >= endMark.lo) || hi < startMark.hi || (hi === startMark.hi && lo < startMark.lo)) continue;
        const atBoundary = hi === boundary.hi && lo === boundary.lo;
        const atPageTs = pageTsIds !== undefined && hi === pageMark.hi && lo === pageMark.lo;
        // Keys as strings only where the boundary logic needs them (one ts a page).
        if (atBoundary || atPageTs) {
          const key = idKey(bytes, page.idStart[i]!, page.idEnd[i]!, (flags & EventFlag.idEscaped) !== 0);
          if (atBoundary && s.boundaryIds.has(key)) continue;
          if (atPageTs) pageTsIds!.add(key);
        }
        if (flags & EventFlag.idEscaped || !hexWords(bytes, page.idStart[i]!, page.idEnd[i]!, idWords, at * 4)) {
          ids.add(bytes, page.idStart[i]!, page.idEnd[i]!, (flags & EventFlag.idEscaped) !== 0);
          stringIds[at] = 1;
        }
        keep[kept++] = i;
      }
      if (kept > 0) {
        if (Number.isNaN(firstNs)) firstNs = approxNs(tsHi[0]!, tsLo[0]!);
        report.events += kept;
      }

      // The next request re-reads from next_cursor's ts on: nothing older will come from this stream.
      const last = page.eventsNull || page.nextCursor === undefined;
      let backwards = false;
      let ended = last;
      if (last) {
        // The ledger ends here: nothing newer than this page anywhere, so no range above is worth splitting.
        const newest = n > 0 ? BigInt(Math.round(approxTsOf(bytes, page, n - 1))) + 1_000n : (s.from ?? top);
        if (newest < top) top = newest;
      } else if (isDecimal(page.nextCursor!)) {
        // A floor never goes down: the coordinator may have written what lies below it.
        if (lowerFloor(pageMark, s.floor)) backwards = true;
        else if (!lowerFloor(pageMark, endMark)) ended = true; // reached the next stream's range
        else advance(s, BigInt(page.nextCursor!), pageMark);
        if (n > 0) pageSpan = BigInt(Math.max(0, Math.round(approxNs(pageMark.hi, pageMark.lo) - approxTsOf(bytes, page, 0))));
      }
      if (ended) live.delete(s);
      const floor = peerFloor(live);
      const batch = toBatch(peer.name, report.pages, bytes, page, kept, scratch, ids.text(), progress(floor), floor);
      emit(batch, kept > 0 ? deps.backlog?.add(batch.bytes.length) : undefined);
      return { count: n, kept, eventsNull: page.eventsNull, nextCursor: page.nextCursor, pageTsIds, backwards, ended };
    };

    /** Estimated share fetched: what the live streams have still to cover, against the whole span. */
    const progress = (floor: TsFloor): number => {
      if (floor.hi === Infinity) return 1;
      const topNs = Number(top);
      const span = topNs - firstNs;
      if (!(span > 0)) return 0;
      let left = 0;
      for (const s of live) {
        const from = s.from === undefined ? firstNs : Number(s.from);
        left += Math.max(0, Math.min(s.end === undefined ? topNs : Number(s.end), topNs) - from);
      }
      return Math.min(1, Math.max(0, 1 - left / span));
    };

    /** One stream's pages, one request at a time, until its range is done. */
    const run = async (s: Stream): Promise<void> => {
      for (;;) {
        const body = JSON.stringify({ from: identity.name, mode: "page", page_size: settings.pageSize, cursor: s.cursor });
        const page = await withRetries(
          () => fetchPage(peer, identity, body, publicKey, settings.strict, doFetch, signal, report, warn, { maxBytes: settings.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES, idleMs: settings.idleMs ?? DEFAULT_IDLE_MS, backlog: deps.backlog, expectBytes, holdMs: holdMs(), take: (b, p) => takePage(s, b, p), timing }),
          settings,
          deadline,
          now,
          signal,
          (err, attempt, delay) => {
            report.retries++;
            debug(`page ${report.pages + 1}${s.n > 1 ? ` (stream ${s.n})` : ""}: ${describeError(err)}; retry ${attempt} in ${delay} ms`);
          },
        );

        if (page.eventsNull || page.nextCursor === undefined) {
          if (page.count >= settings.pageSize) {
            report.status = "incomplete";
            warn(
              `a full page (${page.count} events) came without next_cursor: this looks like an old peer that ignores paging, and it may hold more than we got`,
            );
          }
          return;
        }
        if (!isDecimal(page.nextCursor)) throw new Fatal(`next_cursor "${page.nextCursor}" is not a decimal timestamp`);
        if (page.backwards) {
          // Following it would page through the same events until the deadline.
          throw new Fatal(
            `next_cursor went back to ${page.nextCursor}, older than the page before: the peer does not page in order`,
            "what it sent before is kept; look at that nara (a ledger reset while we read it?)",
          );
        }
        if (page.ended) return;
        split();

        if (page.nextCursor === s.boundaryTs) {
          // The whole page re-read one ts: more events share it than a page holds.
          s.sameCursorRounds++;
          if (page.kept === 0 || s.sameCursorRounds >= 16) {
            report.status = "incomplete";
            warn(
              `more than ${settings.pageSize} events share ts ${s.boundaryTs}; got ${s.boundaryIds.size + page.kept} of them and moved past it (use a larger --page-size, max 5000)`,
            );
            s.cursor = s.boundaryTs;
            s.boundaryTs = "";
            s.boundaryIds = new Set();
            s.sameCursorRounds = 0;
            continue;
          }
        } else s.sameCursorRounds = 0;
        s.boundaryTs = page.nextCursor;
        s.boundaryIds = page.pageTsIds ?? new Set();
        s.cursor = before(s.boundaryTs);
      }
    };

    const runs: Promise<void>[] = [];
    let failure: { err: unknown } | undefined;
    const start = (s: Stream) => {
      live.add(s);
      report.streams++;
      runs.push(
        run(s).catch((err) => {
          failure ??= { err };
          stop.abort(err);
        }),
      );
    };
    /** Work stealing: the widest range left gives its upper part to new streams. */
    const split = () => {
      if (!topKnown || finished || signal.aborted || !(waitMs >= farMs && waitMs >= transferMs / 2)) return;
      // Memory is not asked here: each stream's requests wait for room like any other (dump/budget.ts).
      while (live.size < maxStreams) {
        const taken = steal(live, report.streams + 1, top, pageSpan, maxStreams - live.size);
        if (taken.length === 0) return;
        for (const t of taken) {
          debug(`stream ${t.n} takes ts ${t.from} to ${t.end ?? "the end"}`);
          start(t);
        }
      }
    };

    start(newStream(1));
    if (!topKnown) {
      // Beside the first page: the newest event (mode "recent", one event), so that ranges are split where the
      // events are, not up to now (a ledger whose newest event is a month old would cost log2 empty requests).
      const probe = JSON.stringify({ from: identity.name, mode: "recent", page_size: 1, max_events: 1 });
      fetchPage(peer, identity, probe, publicKey, settings.strict, doFetch, signal, report, warn, { maxBytes: SMALL_BODY_BYTES, idleMs: settings.idleMs ?? DEFAULT_IDLE_MS, backlog: deps.backlog, expectBytes: 1024, holdMs: farMs, take: newestOf })
        .then((newest) => {
          if (newest !== undefined && newest + 1n < top) top = newest + 1n;
        })
        .catch((err) => {
          if (!signal.aborted) debug(`the probe for the newest event failed (${describeError(err)}): ranges are split up to now`);
        })
        .finally(() => {
          topKnown = true;
          split();
        });
    }
    // Streams start while others run: wait until none is left. The first failure is the cause (the others were stopped by it).
    for (let i = 0; i < runs.length; i++) await runs[i];
    finished = true;
    if (failure) throw failure.err;
    if (malformed > 0) {
      report.status = "incomplete";
      report.error = `${malformed} malformed event(s) skipped`;
    }
  } catch (err) {
    if (abort.signal.aborted) {
      report.status = "timeout";
      report.error = `no complete answer within ${Math.round(settings.timeoutMs / 1000)} s (${report.pages} page(s), ${report.events} event(s) kept)`;
      report.hint = "the peer is slow or hanging: raise --timeout, or look at that nara";
    } else {
      report.status = "failed";
      report.error = describeError(err);
      if (err instanceof Fatal) report.hint = err.hint;
    }
  } finally {
    clearTimeout(timer);
    stop.abort(new Error("the peer is done"));
    report.seconds = (now() - started) / 1000;
  }
  return report;
}

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** The keys of ids that are not plain hex, joined by "\n", gathered as bytes and decoded once per page. */
class IdList {
  private buf: Uint8Array;
  private used = 0;
  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity + 16);
  }
  add(page: Uint8Array, s: number, e: number, escaped: boolean): void {
    if (escaped) return this.addKey(idKey(page, s, e, escaped));
    this.ensure(e - s + 1);
    const buf = this.buf;
    let at = this.used;
    for (let k = s; k < e; k++) {
      const c = page[k]!;
      // Non-ASCII ids take the exact path (it decides the key's spelling); they are rare.
      if (c >= 0x80) return this.addKey(idKey(page, s, e, escaped));
      buf[at++] = c;
    }
    buf[at++] = 0x0a;
    this.used = at;
  }
  addKey(key: string): void {
    const encoded = utf8Encoder.encode(key);
    this.ensure(encoded.length + 1);
    this.buf.set(encoded, this.used);
    this.used += encoded.length;
    this.buf[this.used++] = 0x0a;
  }
  private ensure(extra: number): void {
    if (this.used + extra <= this.buf.length) return;
    const next = new Uint8Array((this.used + extra) * 2);
    next.set(this.buf.subarray(0, this.used));
    this.buf = next;
  }
  text(): string {
    return utf8Decoder.decode(this.buf.subarray(0, Math.max(0, this.used - 1)));
  }
}

const markHi = new Float64Array(1);
const markLo = new Float64Array(1);

/** A decimal ts as the (hi, lo) halves events are split into; NaN halves (never equal) when it is not decimal. */
function tsMark(text: string): TsFloor {
  if (!isDecimal(text)) return { hi: NaN, lo: NaN };
  splitTsInto(utf8Encoder.encode(text), 0, text.length, markHi, markLo, 0);
  return { hi: markHi[0]!, lo: markLo[0]! };
}

/** The newest ts of a page (any order), approximately; undefined for a page without a valid ts. */
function newestOf(bytes: Uint8Array, page: SyncPage): bigint | undefined {
  let max = -Infinity;
  for (let i = 0; i < page.count; i++) if (!(page.flags[i]! & EventFlag.badTs)) max = Math.max(max, approxTsOf(bytes, page, i));
  return Number.isFinite(max) ? BigInt(Math.round(max)) : undefined;
}

/** Event `i`'s ts as a double (for estimates only). */
function approxTsOf(bytes: Uint8Array, page: SyncPage, i: number): number {
  splitTsInto(bytes, page.tsStart[i]!, page.tsEnd[i]!, markHi, markLo, 0);
  return approxNs(markHi[0]!, markLo[0]!);
}

function toBatch(
  peer: string,
  pageNo: number,
  bytes: Uint8Array,
  page: SyncPage,
  n: number,
  from: typeof scratch,
  ids: string,
  progress: number,
  floor: TsFloor,
): PageBatch {
  // Exact-size copies: these buffers are transferred to the coordinator, the scratch stays.
  const start = new Uint32Array(n);
  const end = new Uint32Array(n);
  const flags = new Uint8Array(n);
  const { keep, stringIds } = from;
  for (let k = 0; k < n; k++) {
    const i = keep[k]!;
    start[k] = page.start[i]!;
    end[k] = page.end[i]!;
    flags[k] = page.flags[i]! | (stringIds[k] ? STRING_ID : 0);
  }
  return {
    type: "page",
    peer,
    page: pageNo,
    // A page without new events hands over nothing of its bytes.
    bytes: n > 0 ? bytes : new Uint8Array(0),
    served: bytes.length,
    count: n,
    start,
    end,
    idWords: from.idWords.slice(0, n * 4),
    ids,
    tsHi: from.tsHi.slice(0, n),
    tsLo: from.tsLo.slice(0, n),
    flags,
    progress,
    floorHi: floor.hi,
    floorLo: floor.lo,
  };
}

/** The peer's public key from /ping, to check response signatures; undefined when it cannot be had. */
async function pingKey(
  peer: PeerTarget,
  doFetch: typeof fetch,
  signal: AbortSignal,
  warn: (m: string) => void,
  debug: (m: string) => void,
  idleMs: number,
): Promise<string | undefined> {
  try {
    const own = new AbortController();
    const res = await doFetch(`${peer.url}/ping`, { signal: AbortSignal.any([signal, own.signal, AbortSignal.timeout(10_000)]) });
    const text = await readText(res, { maxBytes: SMALL_BODY_BYTES, idleMs, abort: () => own.abort() });
    if (!res.ok) {
      debug(`/ping answered ${res.status}: response signatures will not be checked`);
      return undefined;
    }
    const ping = JSON.parse(text) as { from?: unknown; public_key?: unknown };
    if (typeof ping.from === "string" && ping.from !== peer.name) {
      warn(`/ping says this peer is "${ping.from}", not "${peer.name}"`);
    }
    return typeof ping.public_key === "string" && ping.public_key ? ping.public_key : undefined;
  } catch (err) {
    if (signal.aborted) throw err;
    debug(`/ping failed (${describeError(err)}): response signatures will not be checked`);
    return undefined;
  }
}

type PageHandling<T> = {
  /** Cap on the page's body (--max-page-bytes), and the longest silence (--idle-timeout). */
  maxBytes: number;
  idleMs: number;
  backlog: Backlog | undefined;
  /** This peer's last page size (or a guess), counted as held until the answer lands or `holdMs` pass without it. */
  expectBytes: number;
  holdMs: number;
  take: (bytes: Uint8Array, page: SyncPage) => T;
  /** How long the answer took to start (ms), and then to arrive whole. */
  timing?: (waitMs: number, transferMs: number) => void;
};

/**
 * One attempt at one page: request, checks, scan, and (synchronously, while
 * the scan's scratch is valid) `take`. It is asked for only while the worker
 * holds little (see dump/budget.ts); once the body has arrived, its bytes
 * count as held until the page has been handed on.
 */
async function fetchPage<T>(
  peer: PeerTarget,
  identity: Identity,
  body: string,
  publicKey: Promise<string | undefined>,
  strict: boolean,
  doFetch: typeof fetch,
  signal: AbortSignal,
  report: PeerReport,
  warn: (m: string) => void,
  handling: PageHandling<T>,
): Promise<T> {
  let release: (() => void) | undefined;
  let expected: (() => void) | undefined;
  try {
    expected = await handling.backlog?.admit(handling.expectBytes, handling.holdMs, signal);
    let res: Response;
    let bytes: Uint8Array;
    // This attempt's own abort: a body past the cap or gone silent closes its connection, not the peer's.
    const attempt = new AbortController();
    const { idleMs } = handling;
    // Silence before the headers counts as much as silence in the body.
    const waiting = idleMs > 0 ? setTimeout(() => attempt.abort(new BodyIdle(idleMs, 0)), idleMs) : undefined;
    try {
      // Signed here, per attempt: peers reject timestamps older than 30 s.
      const headers = { ...signRequest(identity, "POST", "/events/sync"), "Content-Type": "application/json" };
      const sent = performance.now();
      res = await doFetch(`${peer.url}/events/sync`, { method: "POST", headers, body, signal: AbortSignal.any([signal, attempt.signal]) });
      clearTimeout(waiting);
      const answered = performance.now();
      const limits = { maxBytes: handling.maxBytes, idleMs, abort: () => attempt.abort() };
      // Error bodies are only ever shown as a snippet: 1 MiB is plenty, and past it the status says enough.
      bytes = res.status === 200 ? await readBody(res, limits) : await errorBody(res, { ...limits, maxBytes: SMALL_BODY_BYTES });
      handling.timing?.(answered - sent, performance.now() - answered);
    } catch (err) {
      clearTimeout(waiting);
      if (signal.aborted) throw err;
      if (err instanceof BodyTooLarge) {
        // Another attempt would read the same page again: the peer fails, what it gave before is kept.
        throw new Fatal(
          `page larger than ${formatCap(err.limit)}${err.announced !== undefined ? ` (the peer announced ${err.announced} bytes): not read` : ": cut off"}`,
          "a real 5000-event page is 1–10 MB: look at that nara, or raise --max-page-bytes if it really serves larger pages (its earlier pages are kept)",
        );
      }
      const idle = err instanceof BodyIdle ? err : attempt.signal.reason instanceof BodyIdle ? attempt.signal.reason : undefined;
      if (idle) throw new Retryable(`the peer went silent: ${idle.message}`);
      throw new Retryable(`connection failed: ${describeError(err)}`);
    }
    // Arrived: held in memory until handed on.
    expected?.();
    release = handling.backlog?.add(bytes.length);
    if (res.status === 401) {
      throw new Fatal(
        `the peer refused our request signature (401: ${snippet(bytes)})`,
        `either this machine's clock is more than 30 s off (check NTP), or the peer does not know ${identity.name}'s public key yet (is this the right name and soul, and has ${identity.name} been online on the mesh?)`,
      );
    }
    if (res.status >= 500) throw new Retryable(`HTTP ${res.status}: ${snippet(bytes)}`);
    if (res.status !== 200) throw new Fatal(`HTTP ${res.status}: ${snippet(bytes)}`);

    const key = await publicKey;
    if (key) {
      const check = verifyResponse(res.headers, bytes, key);
      if (!check.ok) {
        const what = check.reason === "missing-headers" ? "carries no signature headers" : "signature does not match the key from /ping";
        if (strict) {
          throw new Fatal(`response ${what}`, "--strict drops peers whose responses cannot be proven; drop --strict to keep them with a warning");
        }
        if (report.signatures !== "failed") warn(`response ${what}; events kept (use --strict to drop such peers)`);
        report.signatures = "failed";
      } else if (report.signatures === "unchecked") report.signatures = "verified";
    }

    let page: SyncPage;
    try {
      page = scratch.page = scanSyncPage(bytes, scratch.page);
    } catch (err) {
      if (err instanceof ScanError) throw new Retryable(`malformed response body (${err.message}; ${bytes.length} bytes)`);
      throw err;
    }
    return handling.take(bytes, page);
  } finally {
    expected?.();
    release?.();
  }
}

/** An error answer's body for its snippet; one past the cap becomes a note (the status decides what happens). */
async function errorBody(res: Response, limits: BodyLimits): Promise<Uint8Array> {
  try {
    return await readBody(res, limits);
  } catch (err) {
    if (err instanceof BodyTooLarge) return utf8Encoder.encode(`(an error body larger than ${formatCap(err.limit)})`);
    throw err;
  }
}

const snippet = (bytes: Uint8Array): string => {
  const text = new TextDecoder().decode(bytes.subarray(0, 200)).trim();
  return text.length > 0 ? text : "empty body";
};

async function withRetries<T>(
  attempt: () => Promise<T>,
  settings: FetchSettings,
  deadline: number,
  now: () => number,
  signal: AbortSignal,
  onRetry: (err: unknown, attempt: number, delayMs: number) => void,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof Retryable) || signal.aborted) throw err;
      const delay = backoffDelay(n, settings.backoffMs, settings.maxBackoffMs);
      if (now() + delay >= deadline) throw new Error(`${err.message} (gave up after ${n} attempt(s): the peer's time is up)`);
      onRetry(err, n, delay);
      await abortableSleep(delay, signal);
      if (signal.aborted) throw signal.reason;
    }
  }
}
