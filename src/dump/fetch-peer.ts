/**
 * One peer's paging: its streams (dump/streams.ts), each one request at a
 * time (dump/page-request.ts), each page sorted out (dump/triage.ts) and
 * handed on, until every range is done or the peer's time is up.
 */
import { describeError } from "../errors.ts";
import type { Identity } from "../identity/soul.ts";
import { EventFlag, type SyncPage } from "../events/scan.ts";
import { SMALL_BODY_BYTES } from "../io/body.ts";
import type { Backlog } from "./budget.ts";
import { lowerFloor, type TsFloor } from "./floor.ts";
import { Fatal, fetchPage, pingKey, withRetries, type PeerLink } from "./page-request.ts";
import { advance, newStream, pageSizeFor, peerFloor, steal, type Stream } from "./streams.ts";
import { approxNs, approxTsOf, isDecimal, newestOf, sortOut, toBatch } from "./triage.ts";
import {
  DEFAULT_FAR_MS,
  DEFAULT_IDLE_MS,
  DEFAULT_MAX_PAGE_BYTES,
  DEFAULT_STREAMS_PER_PEER,
  type FetchSettings,
  type FromWorker,
  type PeerReport,
  type PeerTarget,
} from "./messages.ts";

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

/** Bytes a page of `pageSize` events is expected to take before any page was seen. */
const FIRST_GUESS_PER_EVENT = 400;

/** Cursor "strictly after ts - 1": re-reads the boundary ts so that no event sharing it is skipped. */
const before = (ts: string): string => (BigInt(ts) - 1n).toString();

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
    const link: PeerLink = { peer, identity, doFetch, signal, publicKey, strict: settings.strict, report, warn };
    const live = new Set<Stream>();
    let firstNs = NaN;
    let malformed = 0;
    /** The newest ts the peer may hold: now, until its answer to the probe below or a page shows where its ledger ends. */
    let top = BigInt(Math.floor(now())) * 1_000_000n;
    /** Ranges are split once the probe has answered (or failed). */
    let topKnown = maxStreams === 1;
    let finished = false;
    /** The ts span a full page is expected to cover (how wide a range one request covers), from the last page's density. */
    let pageSpan = 0n;
    let nsPerEvent = 0;
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

    const skipMalformed = (byteAt: number, flags: number) => {
      malformed++;
      if (malformed <= 5) {
        warn(`page ${report.pages}: event at byte ${byteAt} skipped: ${flags & EventFlag.noId ? "no string id" : "ts is not an integer"}`);
      }
    };
    /** Sorts out a page's new events and hands them on; synchronous, straight after the scan. */
    const takePage = (s: Stream, bytes: Uint8Array, page: SyncPage): PageOutcome => {
      report.pages++;
      report.bytes += bytes.length;
      expectBytes = Math.max(bytes.length, 1024);

      const n = page.count;
      const { kept, ids, pageTsIds, pageMark, firstNs: pageFirstNs } = sortOut(s, bytes, page, skipMalformed);
      if (kept > 0) {
        if (Number.isNaN(firstNs)) firstNs = pageFirstNs;
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
        else if (!lowerFloor(pageMark, s.endMark)) ended = true; // reached the next stream's range
        else advance(s, BigInt(page.nextCursor!), pageMark);
        if (n > 0) {
          nsPerEvent = Math.max(0, approxNs(pageMark.hi, pageMark.lo) - approxTsOf(bytes, page, 0)) / n;
          pageSpan = BigInt(Math.round(nsPerEvent * settings.pageSize));
        }
      }
      if (ended) live.delete(s);
      const floor = peerFloor(live);
      const batch = toBatch(peer.name, report.pages, bytes, page, kept, ids, progress(floor), floor);
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
        const asked = s.firstPageSize ?? pageSizeFor(s, settings.pageSize, nsPerEvent) ?? settings.pageSize;
        s.firstPageSize = undefined;
        const body = JSON.stringify({ from: identity.name, mode: "page", page_size: asked, cursor: s.cursor });
        const page = await withRetries(
          () => fetchPage(link, body, { maxBytes: settings.maxPageBytes ?? DEFAULT_MAX_PAGE_BYTES, idleMs: settings.idleMs ?? DEFAULT_IDLE_MS, backlog: deps.backlog, expectBytes, holdMs: holdMs(), priority: approxNs(s.floor.hi, s.floor.lo), take: (b, p) => takePage(s, b, p), timing }),
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
          if (page.count >= asked) {
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

        if (page.nextCursor === s.boundaryTs && asked < settings.pageSize) {
          // A trimmed page held one ts only: more events share it than that page could hold. Full pages from now on.
          s.untrimmed = true;
          s.sameCursorRounds = 0;
          debug(`stream ${s.n}: a page of ${asked} held ts ${page.nextCursor} only; full pages from here`);
        } else if (page.nextCursor === s.boundaryTs) {
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
      if (!topKnown || finished || signal.aborted || !(waitMs >= farMs)) return;
      // A far peer whose pages wait less than half their transfer is bound by its link: one more cursor fills
      // the link while the other waits for its answer; more would only share it. One that waits longer gets all.
      const linkBound = waitMs < transferMs / 2;
      const most = linkBound ? Math.min(maxStreams, 2) : maxStreams;
      // Memory is not asked here: each stream's requests wait for room like any other (dump/budget.ts).
      while (live.size < most) {
        const taken = steal(live, report.streams + 1, top, linkBound ? pageSpan / 2n : pageSpan, most - live.size);
        if (taken.length === 0) return;
        for (const t of taken) {
          // Two streams sharing a link finish equal pages together and then wait together: a half page first
          // puts one's round trips inside the other's transfers.
          if (linkBound) t.firstPageSize = Math.max(1, Math.floor(settings.pageSize / 2));
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
      fetchPage(link, probe, { maxBytes: SMALL_BODY_BYTES, idleMs: settings.idleMs ?? DEFAULT_IDLE_MS, backlog: deps.backlog, expectBytes: 1024, holdMs: farMs, priority: -Infinity, take: newestOf })
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
