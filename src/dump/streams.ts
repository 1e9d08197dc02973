/**
 * Range-split paging: a peer's history is paged by several cursors at once.
 * `cursor` means "events strictly after this ts", so a stream can start at
 * any ts; the stream below it stops once its pages reach that ts. The
 * streams' ranges [from, end) tile the ts axis; an event at a split edge
 * belongs to the stream above it only, so a group of same-ts events at an
 * edge is fetched by exactly one stream (which re-reads from edge − 1).
 *
 * Pure bookkeeping; the requests are fetch-peer.ts's.
 */
import { splitTsInto } from "../events/scan.ts";
import { AFTER_ALL, BEFORE_ALL, lowerFloor, type TsFloor } from "./floor.ts";

export type Stream = {
  /** 1 for the stream that starts at the beginning; logs name streams by it. */
  n: number;
  /** The next request's cursor ("" = from the beginning). */
  cursor: string;
  /** The ts the cursor re-reads and the ids already forwarded at it (the boundary trap). */
  boundaryTs: string;
  boundaryIds: Set<string>;
  sameCursorRounds: number;
  /** The oldest ts this stream may still send (undefined: from the beginning). Only rises. */
  from: bigint | undefined;
  /** `from` as split halves: the stream's floor for the write window. */
  floor: TsFloor;
  /** Events older than this are another stream's (only a peer that ignores cursors sends them). */
  startMark: TsFloor;
  /** Exclusive: events at or after `end` are the next stream's. Undefined: no end. */
  end: bigint | undefined;
  endMark: TsFloor;
  /** Set once a trimmed page (see `pageSizeFor`) held one ts only: the rest is asked for in full pages. */
  untrimmed?: boolean;
  /** The first request's page size, when it is not the full one (see fetch-peer.ts's `split`). */
  firstPageSize?: number;
};

const hi = new Float64Array(1);
const lo = new Float64Array(1);
const encoder = new TextEncoder();

/** A ts as the (hi, lo) halves events are split into. */
export function markOf(ts: bigint): TsFloor {
  const text = ts.toString();
  splitTsInto(encoder.encode(text), 0, text.length, hi, lo, 0);
  return { hi: hi[0]!, lo: lo[0]! };
}

/** A stream for [from, end); the first one has neither. */
export function newStream(n: number, from?: bigint, end?: bigint): Stream {
  const start = from === undefined ? BEFORE_ALL : markOf(from);
  return {
    n,
    // "Strictly after from − 1": from itself is re-read, nothing sharing it is skipped.
    cursor: from === undefined ? "" : (from - 1n).toString(),
    boundaryTs: "",
    boundaryIds: new Set(),
    sameCursorRounds: 0,
    from,
    floor: start,
    startMark: start,
    end,
    endMark: end === undefined ? AFTER_ALL : markOf(end),
  };
}

/** The smallest page asked for near a range's end: below it a round trip costs more than the bytes it saves. */
export const MIN_TRIMMED_PAGE = 100;

/**
 * The next page's size for a stream whose range ends: the events its range
 * has left, estimated from the last page's density, and a margin, when
 * that is less than a full page. The page that crosses into the next
 * stream's range is then not a full page of events that stream fetches
 * too: on a slow link those bytes cost as much as the round trip a second
 * cursor saves. Too few is one more small page; the stream stays correct
 * either way (it stops at its end, whatever the page size).
 */
export function pageSizeFor(s: Stream, full: number, nsPerEvent: number): number | undefined {
  if (s.untrimmed || s.end === undefined || s.from === undefined || !(nsPerEvent > 0)) return undefined;
  const size = Math.ceil((Number(s.end - s.from) / nsPerEvent) * 1.15) + 16;
  return size >= full ? undefined : Math.max(MIN_TRIMMED_PAGE, size);
}

/** The stream's next request re-reads `ts` (split as `mark`) on. */
export function advance(s: Stream, ts: bigint, mark: TsFloor): void {
  s.from = ts;
  s.floor = mark;
}

/** The lowest floor of live streams: the peer's floor (AFTER_ALL once none is left). */
export function peerFloor(streams: Iterable<Stream>): TsFloor {
  let min = AFTER_ALL;
  for (const s of streams) if (lowerFloor(s.floor, min)) min = s.floor;
  return min;
}

/**
 * Work stealing: the live stream with the widest remaining range gives the
 * upper part of it to up to `free` new streams, cut in equal widths (so that
 * a first split into three does not leave one stream half of the history).
 * `minWidth` is the ts span one page is expected to cover: no piece is
 * narrower than one of them (each page costs a nara a filter and sort of its
 * whole ledger). An open range counts up to `top` (events newer than that
 * stay the last piece's). `n` numbers the first new stream.
 */
export function steal(streams: Iterable<Stream>, n: number, top: bigint, minWidth: bigint, free = 1): Stream[] {
  let victim: Stream | undefined;
  let widest = 0n;
  for (const s of streams) {
    if (s.from === undefined) continue;
    const width = (s.end ?? top) - s.from;
    if (width > widest) {
      widest = width;
      victim = s;
    }
  }
  if (!victim || free < 1) return [];
  const perPiece = minWidth > 1n ? minWidth : 1n;
  let parts = BigInt(free) + 1n;
  if (widest / parts < perPiece) parts = widest / perPiece;
  if (parts < 2n) return [];
  const from = victim.from!;
  const taken: Stream[] = [];
  for (let k = parts - 1n; k >= 1n; k--) {
    const at = from + (widest * k) / parts;
    taken.unshift(newStream(0, at, taken[0]?.from ?? victim.end));
  }
  taken.forEach((t, i) => (t.n = n + i));
  victim.end = taken[0]!.from;
  victim.endMark = taken[0]!.startMark;
  return taken;
}
