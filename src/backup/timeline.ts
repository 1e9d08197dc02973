/**
 * Times of the stats, computed from the decimal text of `ts` (never a
 * JavaScript number): the two printed instants, and the chart of events
 * per hour, day or month.
 */
import { usageError } from "../errors.ts";

export type Bucket = "hour" | "day" | "month";

/** Bars of a chart at most; beyond, hours become days and days months. */
export const MAX_BUCKETS = 5000;

export const NS = 1_000_000_000n;

/** `--by`: hour, day or month. */
export function parseBucket(by: string): Bucket {
  if (by !== "hour" && by !== "day" && by !== "month") throw usageError(`--by: "${by}" is not hour, day or month`);
  return by;
}

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

/**
 * The chart over `spanNs` (decimal text) from events per Unix hour: by `by`, or by the span's
 * bucket, coarser when it would have more than MAX_BUCKETS bars; every bucket from the first to the last.
 */
export function timeline(hours: Map<number, number>, spanNs: string, by?: Bucket): { by: Bucket; buckets: { start: string; events: number }[] } {
  const spanSeconds = Number(BigInt(spanNs) / NS);
  let bucket = by ?? autoBucket(spanSeconds);
  // A chart of more than MAX_BUCKETS bars says nothing: coarser buckets instead.
  while (bucket !== "month" && spanSeconds / (bucket === "hour" ? 3600 : 86400) > MAX_BUCKETS) bucket = bucket === "hour" ? "day" : "month";
  const buckets: { start: string; events: number }[] = [];
  if (hours.size > 0) {
    const sums = new Map<number, number>();
    let firstHour = Infinity;
    let lastHour = -Infinity;
    for (const [hour, n] of hours) {
      const b = bucketStart(hour * 3600, bucket);
      sums.set(b, (sums.get(b) ?? 0) + n);
      if (hour < firstHour) firstHour = hour;
      if (hour > lastHour) lastHour = hour;
    }
    const end = bucketStart(lastHour * 3600, bucket);
    for (let b = bucketStart(firstHour * 3600, bucket); b <= end; b = nextBucket(b, bucket)) {
      buckets.push({ start: new Date(b * 1000).toISOString().replace(".000Z", "Z"), events: sums.get(b) ?? 0 });
    }
  }
  return { by: bucket, buckets };
}
