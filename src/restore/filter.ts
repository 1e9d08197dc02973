/**
 * Selective restore: --service, --since/--until and --nara as one predicate
 * over what validation extracted from an event. Timestamps are compared as
 * BigInt on their exact decimal text: ts is above 2^53.
 */
import { usageError } from "../errors.ts";
import type { FilterFields } from "../events/validate.ts";

export type EventFilter = {
  services?: ReadonlySet<string>;
  /** Inclusive lower bound, Unix nanoseconds. */
  since?: bigint;
  /** Exclusive upper bound, Unix nanoseconds. */
  until?: bigint;
  naras?: ReadonlySet<string>;
};

export type FilterArgs = { service?: string; since?: string; until?: string; nara?: string };

/** True when no filter is set: every valid event is sent. */
export const isEmptyFilter = (f: EventFilter): boolean =>
  f.services === undefined && f.since === undefined && f.until === undefined && f.naras === undefined;

export function matches(f: EventFilter, e: FilterFields): boolean {
  if (f.services !== undefined && !f.services.has(e.svc)) return false;
  if (f.since !== undefined || f.until !== undefined) {
    const ts = BigInt(e.tsText);
    if (f.since !== undefined && ts < f.since) return false;
    if (f.until !== undefined && ts >= f.until) return false;
  }
  if (f.naras !== undefined) {
    let hit = false;
    for (const n of e.naras) {
      if (f.naras.has(n)) {
        hit = true;
        break;
      }
    }
    if (!hit) return false;
  }
  return true;
}

/** "a, b,,c" -> ["a","b","c"]; an empty list is a usage error (it would filter out everything). */
function list(value: string, flag: string): string[] {
  const items = value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (items.length === 0) throw usageError(`${flag} is empty`, `give a comma-separated list, e.g. ${flag} a,b`);
  return items;
}

/**
 * Parses the filter flags. `knownServices` only feeds a warning: newer peers
 * may have services this tool does not know, so an unknown name is allowed.
 */
export function parseFilter(args: FilterArgs, knownServices: readonly string[] = [], warn?: (m: string) => void): EventFilter {
  const f: EventFilter = {};
  if (args.service !== undefined) {
    const names = list(args.service, "--service");
    for (const n of names) {
      if (knownServices.length > 0 && !knownServices.includes(n)) {
        const alt = n.replace(/_/g, "-");
        const suggestion = knownServices.includes(alt) ? ` (did you mean ${alt}?)` : "";
        warn?.(`--service: "${n}" is not a service this tool knows${suggestion}; known: ${knownServices.join(", ")}`);
      }
    }
    f.services = new Set(names);
  }
  if (args.since !== undefined) f.since = parseTime(args.since, "--since");
  if (args.until !== undefined) f.until = parseTime(args.until, "--until");
  if (f.since !== undefined && f.until !== undefined && f.since >= f.until) {
    throw usageError("--since is not before --until: nothing would be restored", "--since is inclusive, --until exclusive");
  }
  if (args.nara !== undefined) f.naras = new Set(list(args.nara, "--nara"));
  return f;
}

const NS_PER_S = 1_000_000_000n;
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * A point in time as Unix nanoseconds (bigint, exact):
 * - RFC 3339: 2026-01-01T12:00:00Z, …T12:00:00.123456789+02:00, or a bare date (UTC midnight);
 * - Unix seconds (up to 11 digits, optionally with a fraction: 1767225600.5);
 * - Unix nanoseconds (17 digits or more, as in an event's ts).
 * Anything in between (milliseconds, microseconds) is refused as ambiguous.
 */
export function parseTime(value: string, flag: string): bigint {
  const text = value.trim();
  const bad = (why: string) =>
    usageError(
      `${flag}: "${value}" ${why}`,
      "use RFC 3339 (2026-01-01T00:00:00Z), Unix seconds (1767225600) or Unix nanoseconds (1767225600000000000)",
    );
  const m = RFC3339.exec(text);
  if (m) {
    const [, y, mo, d, h = "00", mi = "00", s = "00", frac = "", zone = "Z"] = m;
    const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
    const check = new Date(ms);
    if (
      check.getUTCFullYear() !== Number(y) ||
      check.getUTCMonth() !== Number(mo) - 1 ||
      check.getUTCDate() !== Number(d) ||
      check.getUTCHours() !== Number(h) ||
      check.getUTCMinutes() !== Number(mi) ||
      check.getUTCSeconds() !== Number(s)
    ) {
      throw bad("is not a valid date and time");
    }
    let offsetS = 0;
    if (zone !== "Z" && zone !== "z") {
      const sign = zone[0] === "-" ? -1 : 1;
      const oh = Number(zone.slice(1, 3));
      const om = Number(zone.slice(4, 6));
      if (oh > 23 || om > 59) throw bad("has an invalid UTC offset");
      offsetS = sign * (oh * 3600 + om * 60);
    }
    const seconds = BigInt(ms / 1000 - offsetS);
    return seconds * NS_PER_S + BigInt(frac.padEnd(9, "0") || "0");
  }
  const num = /^(-?)(\d+)(?:\.(\d{1,9}))?$/.exec(text);
  if (!num) throw bad("is not a time");
  const [, sign, whole, frac] = num;
  const digits = whole!.replace(/^0+(?=\d)/, "");
  if (frac === undefined && digits.length >= 17) return BigInt(`${sign}${digits}`);
  if (digits.length <= 11) {
    const ns = BigInt(digits) * NS_PER_S + BigInt((frac ?? "").padEnd(9, "0") || "0");
    return sign === "-" ? -ns : ns;
  }
  throw bad(
    `is ambiguous: ${digits.length} digits are neither Unix seconds (up to 11) nor nanoseconds (17 or more)${frac === undefined ? "" : " with a fraction"}`,
  );
}

/** Unix nanoseconds as RFC 3339 UTC with nanoseconds, for messages. */
export function formatNs(ns: bigint): string {
  const s = ns / NS_PER_S;
  let rem = ns % NS_PER_S;
  let secs = s;
  if (rem < 0n) {
    rem += NS_PER_S;
    secs -= 1n;
  }
  const iso = new Date(Number(secs) * 1000).toISOString().replace(/\.\d{3}Z$/, "");
  return rem === 0n ? `${iso}Z` : `${iso}.${rem.toString().padStart(9, "0").replace(/0+$/, "")}Z`;
}
