/**
 * What a backup holds, fast: events, bytes, time span, events per service,
 * per emitter and over time. Nothing is parsed: the byte scanner
 * (src/events/scan.ts) checks each line's JSON grammar and gives the
 * positions of `id`, `ts` and `svc`; the emitter is found next to `svc`
 * (where Go writes it) or by a walk of the top-level keys. `ts` never becomes
 * a JavaScript number: times are computed from its text (seconds and
 * nanoseconds apart, or BigInt for the two printed instants).
 *
 * Events are counted once per ID: several inputs (or an appended file) that
 * hold the same event count it once, and the repeats are reported as
 * duplicates.
 */
import { DEFAULT_MAX_LINE_BYTES, forEachLine, longLineReason } from "../events/lines.ts";
import { asciiText, EventFlag, idKey, newEventFields, scanEventLine, ScanError, splitTsInto } from "../events/scan.ts";
import { KNOWN_SERVICES } from "../events/id.ts";
import { usageError } from "../errors.ts";
import { IdIndex, MAX_INPUTS } from "../events/idindex.ts";
import { bomLength } from "../events/validate.ts";
import { openBackup, tapStream, type InputKind, type OpenOptions } from "./open.ts";
import { SERVICE_ORDER } from "./verify.ts";

export type Bucket = "hour" | "day" | "month";

export type StatsOptions = {
  inputs: string[];
  /** Emitters listed (the rest are summed); default 10. */
  top?: number;
  /** Chart bucket; default chosen by the span (hour up to 2 days, day up to 92 days, month beyond). */
  by?: Bucket;
  soul?: OpenOptions["soul"];
  /** Malformed lines kept in the report (all are counted); default 20. */
  malformedLimit?: number;
  /** Longer lines are malformed, skipped without being held (default DEFAULT_MAX_LINE_BYTES, 1 MiB). */
  maxLineBytes?: number;
  open?: (path: string, opts: OpenOptions) => Promise<{ stream: ReadableStream<Uint8Array>; kind: InputKind; name: string }>;
};

export type StatsFile = {
  name: string;
  compression: InputKind["compression"];
  encrypted: boolean;
  bytes: number;
  lines: number;
  /** Event lines (repeats included). */
  events: number;
  malformed: number;
  duplicates: number;
};

export type Instant = {
  /** Unix nanoseconds, exact decimal text. */
  ts: string;
  /** RFC 3339, UTC, nanoseconds. */
  time: string;
};

export type StatsReport = {
  files: StatsFile[];
  /** Distinct events (by ID). */
  events: number;
  /** Event lines whose ID came earlier. */
  duplicates: number;
  malformed: number;
  /** `bytes` is set for a line over the cap (its reason then says so whole). */
  malformedLines: { file: string; line: number; reason: string; bytes?: number }[];
  /** Decompressed JSON Lines bytes. */
  bytes: number;
  /** Events with a non-empty emitter and sig. */
  signed: number;
  first: Instant | null;
  last: Instant | null;
  /** last - first in nanoseconds (decimal text), "0" when fewer than two events. */
  spanNs: string;
  /** svc -> events, known services first (in PROTOCOL order, zeros included), then others by count. */
  services: Record<string, number>;
  unknownServices: string[];
  emitters: {
    /** Distinct emitter names. */
    distinct: number;
    /** Events without an emitter. */
    none: number;
    top: { name: string; events: number }[];
    /** Events of emitters not in `top`. */
    others: number;
  };
  timeline: { by: Bucket; buckets: { start: string; events: number }[] };
  seconds: number;
};

const decoder = new TextDecoder();
/** Bars of a chart at most; beyond, hours become days and days months. */
export const MAX_BUCKETS = 5000;
const EMITTER_AFTER_SVC = new TextEncoder().encode(',"emitter":"');
const EMITTER_KEY = new TextEncoder().encode('"emitter"');

/** Index after the JSON string starting at the quote `i` (the line is known to be valid JSON). */
function endOfString(b: Uint8Array, i: number): number {
  i++;
  for (;;) {
    const c = b[i];
    if (c === 0x22) return i + 1;
    i += c === 0x5c ? 2 : 1;
  }
}

/** Index after the JSON value at `i` (valid JSON, no leading whitespace). */
function endOfValue(b: Uint8Array, i: number, end: number): number {
  const c = b[i];
  if (c === 0x22) return endOfString(b, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (;;) {
      const d = b[i];
      if (d === 0x22) {
        i = endOfString(b, i);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if ((d === 0x7d || d === 0x5d) && --depth === 0) return i + 1;
      i++;
    }
  }
  while (i < end) {
    const d = b[i];
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
    i++;
  }
  return i;
}

const isWs = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * Span [start, end) inside the quotes of the top-level `emitter` string of
 * the valid event line b[s, e), or null. `svcEnd` is the end of the `svc`
 * string's text (-1 when absent): Go writes `,"emitter":"` right after it.
 */
export function findEmitter(b: Uint8Array, s: number, e: number, svcEnd: number): [number, number] | null {
  if (svcEnd >= 0) {
    let k = 0;
    const at = svcEnd + 1;
    while (k < EMITTER_AFTER_SVC.length && b[at + k] === EMITTER_AFTER_SVC[k]) k++;
    if (k === EMITTER_AFTER_SVC.length) {
      const vs = at + k - 1;
      return [vs + 1, endOfString(b, vs) - 1];
    }
  }
  // Not where Go puts it: absent (the usual case for unsigned events), or elsewhere.
  const line = b.subarray(s, e);
  if (indexOf(line, EMITTER_KEY) === -1) return null;
  let i = s;
  while (isWs(b[i])) i++;
  i++; // {
  for (;;) {
    while (isWs(b[i])) i++;
    if (b[i] !== 0x22) return null; // }
    const ks = i;
    const ke = endOfString(b, i);
    i = ke;
    while (isWs(b[i])) i++;
    i++; // :
    while (isWs(b[i])) i++;
    const vs = i;
    const ve = endOfValue(b, vs, e);
    if (ke - ks === 9 && b[vs] === 0x22 && sameBytes(b, ks, EMITTER_KEY)) return [vs + 1, ve - 1];
    i = ve;
    while (isWs(b[i])) i++;
    if (b[i] !== 0x2c) return null;
    i++;
  }
}

function sameBytes(b: Uint8Array, at: number, word: Uint8Array): boolean {
  for (let k = 0; k < word.length; k++) if (b[at + k] !== word[k]) return false;
  return true;
}

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  let i = hay.indexOf(first);
  while (i !== -1 && i + needle.length <= hay.length) {
    if (sameBytes(hay, i, needle)) return i;
    i = hay.indexOf(first, i + 1);
  }
  return -1;
}

/** The text of a JSON string's inside b[s, e): plain ASCII as is, otherwise decoded. */
function stringText(b: Uint8Array, s: number, e: number): string {
  for (let k = s; k < e; k++) {
    if (b[k] === 0x5c || b[k]! >= 0x80) {
      const raw = decoder.decode(b.subarray(s, e));
      return b.subarray(s, e).includes(0x5c) ? (JSON.parse(`"${raw}"`) as string) : raw;
    }
  }
  return asciiText(b, s, e);
}

const NS = 1_000_000_000n;

/** RFC 3339 in UTC with nine fraction digits, computed exactly from the decimal text of Unix nanoseconds. */
export function rfc3339Nanos(tsText: string): string {
  const ns = BigInt(tsText);
  let sec = ns / NS;
  let frac = ns % NS;
  if (frac < 0n) {
    frac += NS;
    sec -= 1n;
  }
  const iso = new Date(Number(sec) * 1000).toISOString(); // seconds fit a double exactly
  return `${iso.slice(0, -5)}.${frac.toString().padStart(9, "0")}Z`;
}

/** "3d 04h 05m 06s", "1h 02m 03s", "4.5s", "0s": a span of nanoseconds (decimal text) for people (under a minute: to the millisecond). */
export function formatSpan(nsText: string): string {
  const ns = BigInt(nsText);
  if (ns < 60_000_000_000n) return `${(Number(ns) / 1e9).toFixed(3).replace(/\.?0+$/, "")}s`;
  const total = Number(ns / NS);
  const d = Math.floor(total / 86400);
  const h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const p = (n: number) => String(n).padStart(2, "0");
  if (d > 0) return `${d}d ${p(h)}h ${p(m)}m ${p(s)}s`;
  if (h > 0) return `${h}h ${p(m)}m ${p(s)}s`;
  if (m > 0) return `${m}m ${p(s)}s`;
  return `${s}s`;
}

/** The bucket chosen for a span of `seconds`. */
export function autoBucket(seconds: number): Bucket {
  if (seconds <= 2 * 86400) return "hour";
  if (seconds <= 92 * 86400) return "day";
  return "month";
}

/** Start (Unix seconds) of the bucket holding `sec`, and of the next one. */
function bucketStart(sec: number, by: Bucket): number {
  if (by === "hour") return Math.floor(sec / 3600) * 3600;
  if (by === "day") return Math.floor(sec / 86400) * 86400;
  const d = new Date(sec * 1000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) / 1000;
}
function nextBucket(start: number, by: Bucket): number {
  if (by === "hour") return start + 3600;
  if (by === "day") return start + 86400;
  const d = new Date(start * 1000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000;
}

export async function backupStats(
  opts: StatsOptions,
  /** `rawBytes`: bytes read from the inputs so far (compressed, encrypted). */
  onProgress?: (p: { file: string; rawBytes: number; bytes: number; lines: number }) => void,
): Promise<StatsReport> {
  const started = performance.now();
  const inputs = opts.inputs.length === 0 ? ["-"] : opts.inputs;
  if (inputs.filter((p) => p === "-").length > 1) throw usageError("stdin (-) can be read only once");
  if (inputs.length > MAX_INPUTS) throw usageError(`too many inputs (at most ${MAX_INPUTS})`);
  const top = opts.top ?? 10;
  const malformedLimit = opts.malformedLimit ?? 20;

  const files: StatsFile[] = [];
  const malformedLines: StatsReport["malformedLines"] = [];
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const svcCounts = new Map<string, number>();
  for (const s of SERVICE_ORDER) svcCounts.set(s, 0);
  const emitters = new Map<string, number>();
  /** Unix hour -> events: every chart is summed from it. */
  const hours = new Map<number, number>();
  const ids = new IdIndex();
  const fields = newEventFields();
  const his = new Float64Array(1);
  const los = new Float64Array(1);
  let events = 0;
  let rawBytes = 0;
  let duplicates = 0;
  let signed = 0;
  let noEmitter = 0;
  let minHi = Infinity;
  let minLo = Infinity;
  let maxHi = -Infinity;
  let maxLo = -Infinity;
  let minText = "";
  let maxText = "";
  /** svc strings by (length, first two bytes): a handful of names repeated on every line. */
  const svcCache = new Map<number, string[]>();

  const svcText = (b: Uint8Array, s: number, e: number): string => {
    // Known service names are short ASCII: keyed by length and first two bytes, confirmed byte by byte.
    const key = (e - s) * 65536 + (b[s]! << 8) + (b[s + 1] ?? 0);
    const list = svcCache.get(key);
    if (list) {
      outer: for (const cand of list) {
        for (let k = 0; k < cand.length; k++) if (cand.charCodeAt(k) !== b[s + k]) continue outer;
        return cand;
      }
    }
    const text = stringText(b, s, e);
    let plain = text.length === e - s;
    for (let k = 0; plain && k < text.length; k++) plain = text.charCodeAt(k) < 0x80;
    if (plain) {
      if (list) list.push(text);
      else svcCache.set(key, [text]);
    }
    return text;
  };

  for (let f = 0; f < inputs.length; f++) {
    const opened = await (opts.open ?? openBackup)(inputs[f]!, { soul: opts.soul, onRead: (n) => (rawBytes += n) });
    const file: StatsFile = {
      name: opened.name,
      compression: opened.kind.compression,
      encrypted: opened.kind.encrypted,
      bytes: 0,
      lines: 0,
      events: 0,
      malformed: 0,
      duplicates: 0,
    };
    files.push(file);
    const bad = (line: number, reason: string, bytes?: number): void => {
      file.malformed++;
      if (malformedLines.length < malformedLimit) malformedLines.push(bytes === undefined ? { file: opened.name, line, reason } : { file: opened.name, line, reason, bytes });
    };
    const tap = tapStream(opened.stream);
    let nextProgress = 0;
    file.lines = await forEachLine(tap.chunks, (b, s, e, line) => {
      if (line === 1) s += bomLength(b, s, e);
      if (line >= nextProgress && onProgress) {
        nextProgress = line + 50_000;
        onProgress({ file: opened.name, rawBytes, bytes: tap.bytes(), lines: line });
      }
      try {
        scanEventLine(b, s, e, fields);
      } catch (err) {
        if (err instanceof ScanError) {
          bad(line, err.reason);
          return;
        }
        throw err;
      }
      const fl = fields.flags;
      if (fl & (EventFlag.noId | EventFlag.badTs) || !(fl & EventFlag.hasSvc) || fields.svcEnd === fields.svcStart) {
        bad(line, fl & EventFlag.noId ? 'no "id" string' : fl & EventFlag.badTs ? '"ts" missing or not an integer' : 'no "svc" string');
        return;
      }
      file.events++;
      const key = idKey(b, fields.idStart, fields.idEnd, (fl & EventFlag.idEscaped) !== 0);
      if (ids.get(key) !== undefined) {
        file.duplicates++;
        duplicates++;
        return;
      }
      ids.set(key, { input: f, line, signed: false, selected: false });
      events++;
      const svc = svcText(b, fields.svcStart, fields.svcEnd);
      svcCounts.set(svc, (svcCounts.get(svc) ?? 0) + 1);
      if (fl & EventFlag.signed) signed++;
      const em = findEmitter(b, s, e, fields.svcEnd);
      if (em === null || em[1] === em[0]) noEmitter++;
      else {
        const name = stringText(b, em[0], em[1]);
        emitters.set(name, (emitters.get(name) ?? 0) + 1);
      }
      splitTsInto(b, fields.tsStart, fields.tsEnd, his, los, 0);
      const hi = his[0]!;
      const lo = los[0]!;
      if (hi < minHi || (hi === minHi && lo < minLo)) {
        minHi = hi;
        minLo = lo;
        minText = asciiText(b, fields.tsStart, fields.tsEnd);
      }
      if (hi > maxHi || (hi === maxHi && lo > maxLo)) {
        maxHi = hi;
        maxLo = lo;
        maxText = asciiText(b, fields.tsStart, fields.tsEnd);
      }
      // hi = ts / 1e9 truncated toward zero (seconds); lo the nanoseconds, same sign.
      const hour = Math.floor((lo < 0 ? hi - 1 : hi) / 3600);
      hours.set(hour, (hours.get(hour) ?? 0) + 1);
    }, { maxLineBytes, onLong: (line, bytes) => bad(line, longLineReason(bytes, maxLineBytes), bytes) });
    file.bytes = tap.bytes();
  }

  const canon = (t: string) => (t === "-0" ? "0" : t);
  const first = events > 0 ? { ts: canon(minText), time: rfc3339Nanos(minText) } : null;
  const last = events > 0 ? { ts: canon(maxText), time: rfc3339Nanos(maxText) } : null;
  const spanNs = first && last ? (BigInt(last.ts) - BigInt(first.ts)).toString() : "0";

  const spanSeconds = Number(BigInt(spanNs) / NS);
  let by = opts.by ?? autoBucket(spanSeconds);
  // A chart of more than MAX_BUCKETS bars says nothing: coarser buckets instead.
  while (by !== "month" && spanSeconds / (by === "hour" ? 3600 : 86400) > MAX_BUCKETS) by = by === "hour" ? "day" : "month";
  const buckets: { start: string; events: number }[] = [];
  if (events > 0) {
    const sums = new Map<number, number>();
    let firstHour = Infinity;
    let lastHour = -Infinity;
    for (const [hour, n] of hours) {
      const b = bucketStart(hour * 3600, by);
      sums.set(b, (sums.get(b) ?? 0) + n);
      if (hour < firstHour) firstHour = hour;
      if (hour > lastHour) lastHour = hour;
    }
    const end = bucketStart(lastHour * 3600, by);
    for (let b = bucketStart(firstHour * 3600, by); b <= end; b = nextBucket(b, by)) {
      buckets.push({ start: new Date(b * 1000).toISOString().replace(".000Z", "Z"), events: sums.get(b) ?? 0 });
    }
  }

  const sortedEmitters = [...emitters].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const shown = sortedEmitters.slice(0, Math.max(0, top));
  const others = sortedEmitters.slice(shown.length).reduce((n, [, c]) => n + c, 0);
  const unknownServices = [...svcCounts.keys()].filter((s) => !KNOWN_SERVICES.has(s));
  const services: Record<string, number> = {};
  for (const s of SERVICE_ORDER) services[s] = svcCounts.get(s)!;
  for (const s of unknownServices.sort((a, b) => svcCounts.get(b)! - svcCounts.get(a)! || (a < b ? -1 : 1))) services[s] = svcCounts.get(s)!;

  return {
    files,
    events,
    duplicates,
    malformed: files.reduce((n, x) => n + x.malformed, 0),
    malformedLines,
    bytes: files.reduce((n, x) => n + x.bytes, 0),
    signed,
    first,
    last,
    spanNs,
    services,
    unknownServices,
    emitters: { distinct: emitters.size, none: noEmitter, top: shown.map(([name, n]) => ({ name, events: n })), others },
    timeline: { by, buckets },
    seconds: (performance.now() - started) / 1000,
  };
}
