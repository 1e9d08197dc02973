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
import { DEFAULT_MAX_LINE_BYTES, longLineReason } from "../events/lines.ts";
import { asciiText, EventFlag, idKey, newEventFields, scanEventLine, ScanError, splitTsInto } from "../events/scan.ts";
import { KNOWN_SERVICES } from "../events/id.ts";
import { IdIndex } from "../events/idindex.ts";
import { type InputCounts, newCounts, readInputs, type InputsOptions } from "./inputs.ts";
import { type Bucket, rfc3339Nanos, timeline } from "./timeline.ts";
import { SERVICE_ORDER } from "./verify.ts";

export type { Bucket };

/** The inputs (none is stdin), the soul for encrypted ones, the line cap: see inputs.ts. */
export type StatsOptions = InputsOptions & {
  /** Emitters listed (the rest are summed); default 10. */
  top?: number;
  /** Chart bucket; default chosen by the span (hour up to 2 days, day up to 92 days, month beyond). */
  by?: Bucket;
  /** Malformed lines kept in the report (all are counted); default 20. */
  malformedLimit?: number;
};

/** `events` counts repeats too. */
export type StatsFile = InputCounts & { duplicates: number };

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

export async function backupStats(
  opts: StatsOptions,
  /** `rawBytes`: bytes read from the inputs so far (compressed, encrypted). */
  onProgress?: (p: { file: string; rawBytes: number; bytes: number; lines: number }) => void,
): Promise<StatsReport> {
  const started = performance.now();
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

  let f = -1;
  let file: StatsFile;
  const bad = (line: number, reason: string, bytes?: number): void => {
    file.malformed++;
    if (malformedLines.length < malformedLimit) malformedLines.push(bytes === undefined ? { file: file.name, line, reason } : { file: file.name, line, reason, bytes });
  };
  const visit = (b: Uint8Array, s: number, e: number, line: number): void => {
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
  };
  await readInputs(opts, {
    begin(input) {
      f = input.index;
      file = { ...newCounts(input), duplicates: 0 };
      files.push(file);
      return { line: visit, long: (line, bytes) => bad(line, longLineReason(bytes, maxLineBytes), bytes) };
    },
    progressEvery: 50_000,
    progress: onProgress && ((input, p) => onProgress({ file: input.name, ...p })),
    end(_, r) {
      file.lines = r.lines;
      file.bytes = r.bytes;
    },
  });

  const canon = (t: string) => (t === "-0" ? "0" : t);
  const first = events > 0 ? { ts: canon(minText), time: rfc3339Nanos(minText) } : null;
  const last = events > 0 ? { ts: canon(maxText), time: rfc3339Nanos(maxText) } : null;
  const spanNs = first && last ? (BigInt(last.ts) - BigInt(first.ts)).toString() : "0";

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
    timeline: timeline(hours, spanNs, opts.by),
    seconds: (performance.now() - started) / 1000,
  };
}
