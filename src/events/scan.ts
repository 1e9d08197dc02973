/**
 * A validating JSON scanner over bytes that finds events without parsing
 * them: it reports where each event's raw bytes are and where its `id`,
 * `ts` and `svc` tokens sit, so events can be kept exactly as served and
 * `ts` (nanoseconds, > 2^53) never becomes a JS number.
 */

import { grown } from "../typed.ts";
import {
  BS, COMMA, LBRACE, LBRACK, Q, RBRACE, RBRACK, ScanError, isIntegerToken, keyEnd, keyIs, memberValue, skipValue, skipWs, ws,
} from "./jsonskip.ts";

export { ScanError };

/** Bits of an event's flags. */
export const EventFlag = {
  /** Carries a non-empty `sig` and `emitter`: the better copy when two differ. */
  signed: 1,
  /** Has no string `id`. */
  noId: 2,
  /** `ts` is missing or not an integer literal. */
  badTs: 4,
  /** Contains a line break between tokens: must be compacted to fit on one JSON line. */
  multiline: 8,
  /** The `id` token contains escapes: decode it before using it as a key. */
  idEscaped: 16,
  /** Has a `svc` string. */
  hasSvc: 32,
} as const;

/** Token positions of one event's top-level fields; -1 when absent. */
export type EventFields = {
  /** Inside the quotes of the `id` string. */
  idStart: number;
  idEnd: number;
  /** The `ts` number token. */
  tsStart: number;
  tsEnd: number;
  /** Inside the quotes of the `svc` string. */
  svcStart: number;
  svcEnd: number;
  flags: number;
};

/**
 * Scans the event object starting at `i` (at its `{`), filling `out`;
 * returns the index after its `}`.
 */
export function scanEventAt(b: Uint8Array, i: number, out: EventFields): number {
  if (b[i] !== LBRACE) throw new ScanError("expected an event object", i);
  out.idStart = out.idEnd = out.tsStart = out.tsEnd = out.svcStart = out.svcEnd = -1;
  let flags = 0;
  let sigNonEmpty = false;
  let emitterNonEmpty = false;
  ws.sawLineBreak = false;
  i = skipWs(b, i + 1);
  if (b[i] === RBRACE) {
    out.flags = EventFlag.noId | EventFlag.badTs;
    return i + 1;
  }
  for (;;) {
    const ks = i;
    const vs = memberValue(b, i);
    const ke = keyEnd;
    const ve = skipValue(b, vs, 1);
    const klen = ke - ks - 2;
    if (klen === 2 && b[ks + 1] === 0x69 && b[ks + 2] === 0x64) {
      // "id"
      if (b[vs] === Q) {
        out.idStart = vs + 1;
        out.idEnd = ve - 1;
        for (let k = vs + 1; k < ve - 1; k++) if (b[k] === BS) flags |= EventFlag.idEscaped;
      }
    } else if (klen === 2 && b[ks + 1] === 0x74 && b[ks + 2] === 0x73) {
      // "ts"
      out.tsStart = vs;
      out.tsEnd = ve;
    } else if (keyIs(b, ks, ke, "svc")) {
      if (b[vs] === Q) {
        out.svcStart = vs + 1;
        out.svcEnd = ve - 1;
      }
    } else if (keyIs(b, ks, ke, "sig")) {
      sigNonEmpty = b[vs] === Q && ve - vs > 2;
    } else if (keyIs(b, ks, ke, "emitter")) {
      emitterNonEmpty = b[vs] === Q && ve - vs > 2;
    }
    i = skipWs(b, ve);
    if (b[i] === COMMA) i = skipWs(b, i + 1);
    else if (b[i] === RBRACE) break;
    else throw new ScanError(b[i] === undefined ? "unexpected end of input" : "expected ',' or '}'", i);
  }
  if (out.idStart < 0) flags |= EventFlag.noId;
  if (out.tsStart < 0 || !isIntegerToken(b, out.tsStart, out.tsEnd)) flags |= EventFlag.badTs;
  if (out.svcStart >= 0) flags |= EventFlag.hasSvc;
  if (sigNonEmpty && emitterNonEmpty) flags |= EventFlag.signed;
  if (ws.sawLineBreak) flags |= EventFlag.multiline;
  out.flags = flags;
  return i + 1;
}

export const newEventFields = (): EventFields => ({
  idStart: -1,
  idEnd: -1,
  tsStart: -1,
  tsEnd: -1,
  svcStart: -1,
  svcEnd: -1,
  flags: 0,
});

/** One JSON Lines line: the event object must be all the line holds (besides whitespace). */
export function scanEventLine(b: Uint8Array, start: number, end: number, out: EventFields): void {
  const s = skipWs(b, start);
  const view = end === b.length ? b : b.subarray(0, end);
  const e = skipWs(view, scanEventAt(view, s, out));
  if (e !== end) throw new ScanError("unexpected data after the event", e);
}

/** What a `/events/sync` response holds, with the events as spans of its bytes. */
export type SyncPage = {
  from?: string;
  /** The decoded `next_cursor`, present only when the page was full. */
  nextCursor?: string;
  /** The `ts` (seconds) token text, for the body signature. */
  tsText?: string;
  sig?: string;
  /** `"events":null` or no events field: the peer has nothing after the cursor. */
  eventsNull: boolean;
  count: number;
  start: Uint32Array;
  end: Uint32Array;
  idStart: Int32Array;
  idEnd: Int32Array;
  tsStart: Int32Array;
  tsEnd: Int32Array;
  flags: Uint8Array;
};

const decoder = new TextDecoder();

/** The per-event arrays of a SyncPage. */
const PAGE_COLUMNS = ["start", "end", "idStart", "idEnd", "tsStart", "tsEnd", "flags"] as const;

function growPage(page: SyncPage, cap: number): void {
  const columns = page as unknown as Record<(typeof PAGE_COLUMNS)[number], Uint32Array>;
  for (const k of PAGE_COLUMNS) columns[k] = grown(columns[k], cap);
}

function stringValue(b: Uint8Array, s: number, e: number): string {
  // Escapes are rare in these fields; JSON.parse handles them exactly.
  const text = decoder.decode(b.subarray(s, e));
  return text.includes("\\") ? (JSON.parse(text) as string) : text.slice(1, -1);
}

/**
 * The events of a sync response's array at `i` (its `[`) into `page`;
 * returns the index after the `]`. Its own function: the page-level scan
 * runs once per page, and keeping this hot loop apart keeps JSC's optimizing
 * compiler from compiling the event scanner twice (inlined and alone).
 */
function scanEventArray(b: Uint8Array, i: number, page: SyncPage): number {
  const ev = newEventFields();
  let j = skipWs(b, i + 1);
  if (b[j] === RBRACK) return j + 1;
  for (;;) {
    const n = page.count;
    if (n === page.start.length) growPage(page, n * 2);
    page.start[n] = j;
    j = scanEventAt(b, j, ev);
    page.end[n] = j;
    page.idStart[n] = ev.idStart;
    page.idEnd[n] = ev.idEnd;
    page.tsStart[n] = ev.tsStart;
    page.tsEnd[n] = ev.tsEnd;
    page.flags[n] = ev.flags;
    page.count = n + 1;
    j = skipWs(b, j);
    if (b[j] === COMMA) j = skipWs(b, j + 1);
    else if (b[j] === RBRACK) return j + 1;
    else throw new ScanError(b[j] === undefined ? "unexpected end of input" : "expected ',' or ']'", j);
  }
}

/**
 * Scans a whole `/events/sync` response body. Throws ScanError on anything
 * malformed or truncated. `reuse` (a page this returned before) lends its
 * arrays: the result then replaces it.
 */
export function scanSyncPage(b: Uint8Array, reuse?: SyncPage): SyncPage {
  const cap = reuse?.start.length ?? 1024;
  const page: SyncPage = {
    eventsNull: true,
    count: 0,
    start: reuse?.start ?? new Uint32Array(cap),
    end: reuse?.end ?? new Uint32Array(cap),
    idStart: reuse?.idStart ?? new Int32Array(cap),
    idEnd: reuse?.idEnd ?? new Int32Array(cap),
    tsStart: reuse?.tsStart ?? new Int32Array(cap),
    tsEnd: reuse?.tsEnd ?? new Int32Array(cap),
    flags: reuse?.flags ?? new Uint8Array(cap),
  };
  let i = skipWs(b, 0);
  if (b[i] !== LBRACE) throw new ScanError("response is not a JSON object", i);
  i = skipWs(b, i + 1);
  if (b[i] === RBRACE) return page;
  for (;;) {
    const ks = i;
    const vs = memberValue(b, i);
    const ke = keyEnd;
    let ve: number;
    if (keyIs(b, ks, ke, "events") && b[vs] === LBRACK) {
      page.eventsNull = false;
      ve = scanEventArray(b, vs, page);
    } else {
      ve = skipValue(b, vs, 1);
      if (keyIs(b, ks, ke, "next_cursor") && b[vs] === Q) page.nextCursor = stringValue(b, vs, ve);
      else if (keyIs(b, ks, ke, "from") && b[vs] === Q) page.from = stringValue(b, vs, ve);
      else if (keyIs(b, ks, ke, "sig") && b[vs] === Q) page.sig = stringValue(b, vs, ve);
      else if (keyIs(b, ks, ke, "ts")) page.tsText = decoder.decode(b.subarray(vs, ve));
    }
    i = skipWs(b, ve);
    if (b[i] === COMMA) i = skipWs(b, i + 1);
    else if (b[i] === RBRACE) break;
    else throw new ScanError(b[i] === undefined ? "unexpected end of input (truncated body?)" : "expected ',' or '}'", i);
  }
  i = skipWs(b, i + 1);
  if (i !== b.length) throw new ScanError("unexpected data after the response", i);
  return page;
}

/** The text of bytes [s, e) that are known to be ASCII (ids, ts tokens). */
export function asciiText(b: Uint8Array, s: number, e: number): string {
  let out = "";
  for (let k = s; k < e; k++) out += String.fromCharCode(b[k]!);
  return out;
}

/**
 * The dedup key of an event's id: the decoded id, or, when decoding yields
 * characters that could collide with the plain form, its JSON spelling
 * (plain keys never contain a quote, JSON spellings always start with one).
 */
export function idKey(b: Uint8Array, s: number, e: number, escaped: boolean): string {
  if (!escaped) {
    let ascii = true;
    for (let k = s; k < e; k++) if (b[k]! >= 0x80) ascii = false;
    if (ascii) return asciiText(b, s, e);
  }
  const decoded = JSON.parse(`"${decoder.decode(b.subarray(s, e))}"`) as string;
  // eslint-disable-next-line no-control-regex
  return /[\u0000-\u001f"]/.test(decoded) ? JSON.stringify(decoded) : decoded;
}

/**
 * Splits an integer `ts` token into two doubles, both exact: the last nine
 * digits and the rest, signed alike, so (hi, lo) sorts like the integer.
 */
export function splitTsInto(b: Uint8Array, s: number, e: number, his: Float64Array, los: Float64Array, at: number): void {
  let neg = false;
  if (b[s] === 0x2d) {
    neg = true;
    s++;
  }
  const mid = Math.max(s, e - 9);
  let hi = 0;
  for (let k = s; k < mid; k++) hi = hi * 10 + (b[k]! - 0x30);
  let lo = 0;
  for (let k = mid; k < e; k++) lo = lo * 10 + (b[k]! - 0x30);
  his[at] = neg ? -hi : hi;
  los[at] = neg ? -lo : lo;
}

/** Removes whitespace outside strings: the only change made to an event, and only when it spans lines. */
export function compactJson(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length);
  let n = 0;
  let inString = false;
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (inString) {
      out[n++] = c;
      if (c === BS) out[n++] = b[++i]!;
      else if (c === Q) inString = false;
    } else if (c === Q) {
      inString = true;
      out[n++] = c;
    } else if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) out[n++] = c;
  }
  return out.subarray(0, n);
}
