/**
 * Page triage: which events of a scanned page are new and this stream's,
 * their ids and split ts gathered into a per-worker scratch, and the batch
 * handed to the coordinator. Synchronous and allocation-light: it runs once
 * per page, straight after the scan.
 */
import { EventFlag, idKey, splitTsInto, type SyncPage } from "../events/scan.ts";
import { hexWords } from "../events/idtable.ts";
import type { TsFloor } from "./floor.ts";
import type { Stream } from "./streams.ts";
import { STRING_ID, type PageBatch } from "./messages.ts";

/**
 * Scratch for the page being handled. A page is sorted out and handed on
 * synchronously (no await between), so one set serves every peer of a
 * worker: ~300 KB of garbage less per page.
 */
const scratch = {
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

export const isDecimal = (s: string): boolean => /^-?\d+$/.test(s);

/** Nanoseconds as a double: precise enough for a progress estimate, never for data. */
export const approxNs = (hi: number, lo: number): number => hi * 1e9 + lo;

/** What sorting out a page found; the kept events wait in the scratch for `toBatch`. */
export type SortedPage = {
  kept: number;
  /** The keys of kept ids that are not plain hex, joined by "\n". */
  ids: string;
  /** Ids forwarded at next_cursor's ts (undefined when next_cursor is not decimal). */
  pageTsIds: Set<string> | undefined;
  /** next_cursor as split halves (NaN when it is not decimal). */
  pageMark: TsFloor;
  /** The first kept event's ts, approximately (NaN when none was kept). */
  firstNs: number;
};

/**
 * Which events of this page are new to us (the re-read boundary ts repeats
 * some) and this stream's (the range's edges). `onMalformed` hears of each
 * event without a string id or an integer ts (skipped), by its offset.
 */
export function sortOut(s: Stream, bytes: Uint8Array, page: SyncPage, onMalformed: (byteAt: number, flags: number) => void): SortedPage {
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
      onMalformed(page.start[i]!, flags);
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
  const firstNs = kept > 0 ? approxNs(tsHi[0]!, tsLo[0]!) : NaN;
  return { kept, ids: ids.text(), pageTsIds, pageMark, firstNs };
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
export function newestOf(bytes: Uint8Array, page: SyncPage): bigint | undefined {
  let max = -Infinity;
  for (let i = 0; i < page.count; i++) if (!(page.flags[i]! & EventFlag.badTs)) max = Math.max(max, approxTsOf(bytes, page, i));
  return Number.isFinite(max) ? BigInt(Math.round(max)) : undefined;
}

/** Event `i`'s ts as a double (for estimates only). */
export function approxTsOf(bytes: Uint8Array, page: SyncPage, i: number): number {
  splitTsInto(bytes, page.tsStart[i]!, page.tsEnd[i]!, markHi, markLo, 0);
  return approxNs(markHi[0]!, markLo[0]!);
}

/** The kept events of the page `sortOut` saw last, as exact-size buffers for the coordinator. */
export function toBatch(
  peer: string,
  pageNo: number,
  bytes: Uint8Array,
  page: SyncPage,
  n: number,
  ids: string,
  progress: number,
  floor: TsFloor,
): PageBatch {
  // Exact-size copies: these buffers are transferred to the coordinator, the scratch stays.
  const start = new Uint32Array(n);
  const end = new Uint32Array(n);
  const flags = new Uint8Array(n);
  const { keep, stringIds, idWords, tsHi, tsLo } = scratch;
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
    idWords: idWords.slice(0, n * 4),
    ids,
    tsHi: tsHi.slice(0, n),
    tsLo: tsLo.slice(0, n),
    flags,
    progress,
    floorHi: floor.hi,
    floorLo: floor.lo,
  };
}
