import { describeError } from "../errors.ts";
import type { Identity } from "../identity/soul.ts";
import { signRequest, verifyResponse } from "../mesh/auth.ts";
import { EventFlag, ScanError, idKey, scanSyncPage, splitTsInto, type SyncPage } from "../events/scan.ts";
import { hexWords } from "./idtable.ts";
import type { Backlog, ByteBudget } from "./budget.ts";
import { lowerFloor, type TsFloor } from "./collect.ts";
import { grown } from "../typed.ts";
import { STRING_ID, type FetchSettings, type FromWorker, type PageBatch, type PeerReport, type PeerTarget } from "./messages.ts";

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
  /** Shared by the peers of one worker: page bodies in flight at once. */
  budget?: ByteBudget;
  /** Shared by the peers of one worker: pages handed on that the coordinator has not taken in. */
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

  try {
    // Asked for alongside the first page, not before it: the key is needed only to check that page.
    const publicKey = pingKey(peer, doFetch, abort.signal, warn, debug);
    // Never an unhandled rejection if the first page fails first; fetchPage awaits it and sees the error.
    publicKey.catch(() => {});
    let cursor = "";
    /** The ts the current cursor re-reads, and the ids already forwarded at it. */
    let boundaryTs = "";
    let boundaryIds = new Set<string>();
    let sameCursorRounds = 0;
    let firstNs = NaN;
    let malformed = 0;
    let floor: TsFloor = { hi: -Infinity, lo: 0 };

    let expectBytes = settings.pageSize * FIRST_GUESS_PER_EVENT;

    /** Sorts out a page's new events and hands them on; synchronous, straight after the scan. */
    const takePage = (bytes: Uint8Array, page: SyncPage): PageOutcome => {
      report.pages++;
      report.bytes += bytes.length;
      expectBytes = Math.max(bytes.length, 1024);

      // Which events of this page are new to us (the re-read boundary ts repeats some).
      const n = page.count;
      const { keep, idWords, stringIds, tsHi, tsLo } = scratchFor(n);
      let kept = 0;
      const ids = new IdList(1024);
      const pageTs = page.nextCursor ?? "";
      let pageTsIds: Set<string> | undefined = isDecimal(pageTs) ? new Set() : undefined;
      // Compared as numbers (both halves exact): no text comparison per event.
      const boundary = tsMark(boundaryTs);
      const pageMark = tsMark(pageTs);
      if (pageTs === boundaryTs && pageTsIds) pageTsIds = new Set(boundaryIds);
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
        const atBoundary = hi === boundary.hi && lo === boundary.lo;
        const atPageTs = pageTsIds !== undefined && hi === pageMark.hi && lo === pageMark.lo;
        // Keys as strings only where the boundary logic needs them (one ts a page).
        if (atBoundary || atPageTs) {
          const key = idKey(bytes, page.idStart[i]!, page.idEnd[i]!, (flags & EventFlag.idEscaped) !== 0);
          if (atBoundary && boundaryIds.has(key)) continue;
          if (atPageTs) pageTsIds!.add(key);
        }
        if (flags & EventFlag.idEscaped || !hexWords(bytes, page.idStart[i]!, page.idEnd[i]!, idWords, at * 4)) {
          ids.add(bytes, page.idStart[i]!, page.idEnd[i]!, (flags & EventFlag.idEscaped) !== 0);
          stringIds[at] = 1;
        }
        keep[kept++] = i;
      }

      let progress = 1;
      if (kept > 0) {
        const last = kept - 1;
        if (Number.isNaN(firstNs)) firstNs = approxNs(tsHi[0]!, tsLo[0]!);
        const span = now() * 1e6 - firstNs;
        progress = span > 0 ? Math.min(1, Math.max(0, (approxNs(tsHi[last]!, tsLo[last]!) - firstNs) / span)) : 1;
        report.events += kept;
      }
      // The next request re-reads from next_cursor's ts on: nothing older will come. Sent even
      // for a page without new events, so that the coordinator learns how far this peer is.
      const last = page.eventsNull || page.nextCursor === undefined;
      let backwards = false;
      if (last) floor = { hi: Infinity, lo: 0 };
      else if (isDecimal(page.nextCursor!)) {
        // next_cursor's ts, split above. A floor never goes down: the coordinator may have written what lies below it.
        if (lowerFloor(pageMark, floor)) backwards = true;
        else floor = pageMark;
      }
      const batch = toBatch(peer.name, report.pages, bytes, page, kept, scratch, ids.text(), last ? 1 : progress, floor);
      emit(batch, kept > 0 ? deps.backlog?.add(batch.bytes.length) : undefined);
      return { count: n, kept, eventsNull: page.eventsNull, nextCursor: page.nextCursor, pageTsIds, backwards };
    };

    for (;;) {
      const body = JSON.stringify({ from: identity.name, mode: "page", page_size: settings.pageSize, cursor });
      const page = await withRetries(
        () =>
          fetchPage(peer, identity, body, publicKey, settings.strict, doFetch, abort.signal, report, warn, {
            budget: deps.budget,
            backlog: deps.backlog,
            expectBytes,
            take: takePage,
          }),
        settings,
        deadline,
        now,
        abort.signal,
        (err, attempt, delay) => {
          report.retries++;
          debug(`page ${report.pages + 1}: ${describeError(err)}; retry ${attempt} in ${delay} ms`);
        },
      );

      if (page.eventsNull || page.nextCursor === undefined) {
        if (page.count >= settings.pageSize) {
          report.status = "incomplete";
          warn(
            `a full page (${page.count} events) came without next_cursor: this looks like an old peer that ignores paging, and it may hold more than we got`,
          );
        }
        break;
      }
      if (!isDecimal(page.nextCursor)) throw new Fatal(`next_cursor "${page.nextCursor}" is not a decimal timestamp`);
      if (page.backwards) {
        // Following it would page through the same events until the deadline.
        throw new Fatal(
          `next_cursor went back to ${page.nextCursor}, older than the page before: the peer does not page in order`,
          "what it sent before is kept; look at that nara (a ledger reset while we read it?)",
        );
      }

      if (page.nextCursor === boundaryTs) {
        // The whole page re-read one ts: more events share it than a page holds.
        sameCursorRounds++;
        if (page.kept === 0 || sameCursorRounds >= 16) {
          report.status = "incomplete";
          warn(
            `more than ${settings.pageSize} events share ts ${boundaryTs}; got ${boundaryIds.size + page.kept} of them and moved past it (use a larger --page-size, max 5000)`,
          );
          cursor = boundaryTs;
          boundaryTs = "";
          boundaryIds = new Set();
          sameCursorRounds = 0;
          continue;
        }
      } else sameCursorRounds = 0;
      boundaryTs = page.nextCursor;
      boundaryIds = page.pageTsIds ?? new Set();
      cursor = before(boundaryTs);
    }
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
): Promise<string | undefined> {
  try {
    const res = await doFetch(`${peer.url}/ping`, { signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
    if (!res.ok) {
      debug(`/ping answered ${res.status}: response signatures will not be checked`);
      return undefined;
    }
    const ping = (await res.json()) as { from?: unknown; public_key?: unknown };
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

type PageHandling = {
  budget: ByteBudget | undefined;
  backlog: Backlog | undefined;
  /** This peer's last page size (or a guess): what to reserve in the budget. */
  expectBytes: number;
  take: (bytes: Uint8Array, page: SyncPage) => PageOutcome;
};

/**
 * One attempt at one page: request, checks, scan, and (synchronously, while
 * the scan's scratch is valid) `take`. Its bytes stay reserved in the budget
 * until the page has been handed on; the request waits, budget in hand,
 * while the coordinator is behind with earlier pages.
 */
async function fetchPage(
  peer: PeerTarget,
  identity: Identity,
  body: string,
  publicKey: Promise<string | undefined>,
  strict: boolean,
  doFetch: typeof fetch,
  signal: AbortSignal,
  report: PeerReport,
  warn: (m: string) => void,
  handling: PageHandling,
): Promise<PageOutcome> {
  const release = handling.budget ? await handling.budget.take(handling.expectBytes, signal) : undefined;
  try {
    await handling.backlog?.room(signal);
    let res: Response;
    let bytes: Uint8Array;
    try {
      // Signed here, per attempt: peers reject timestamps older than 30 s.
      const headers = { ...signRequest(identity, "POST", "/events/sync"), "Content-Type": "application/json" };
      res = await doFetch(`${peer.url}/events/sync`, { method: "POST", headers, body, signal });
      bytes = new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      if (signal.aborted) throw err;
      throw new Retryable(`connection failed: ${describeError(err)}`);
    }
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
    release?.();
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
      const base = Math.min(settings.maxBackoffMs, settings.backoffMs * 2 ** (n - 1));
      const delay = Math.round(base / 2 + Math.random() * (base / 2));
      if (now() + delay >= deadline) throw new Error(`${err.message} (gave up after ${n} attempt(s): the peer's time is up)`);
      onRetry(err, n, delay);
      await sleep(delay, signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
