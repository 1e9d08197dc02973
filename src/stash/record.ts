/**
 * A stash backup: one JSON object `{"timestamp":T,"data":{...}}` (T in Unix
 * seconds, as the nara reports it), plain or in the project's encrypted
 * container. `data` is what the nara's status endpoint shows: decoded and
 * re-encoded by Go (keys sorted, numbers as float64), not the exact bytes the
 * owner once stored.
 */
import { ExitCode, NaraError } from "../errors.ts";
import { isObject } from "./http.ts";

export type StashRecord = { timestamp: number; data: Record<string, unknown> };

export const encodeRecord = (r: StashRecord): string => `${JSON.stringify({ timestamp: r.timestamp, data: r.data })}\n`;

/** Parses a stash file's text; `name` is for messages. */
export function parseRecord(text: string, name: string): StashRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const events = text.trimStart().startsWith("{") && text.trim().includes("\n");
    throw new NaraError(`${name} is not a stash backup: not one JSON object`, {
      hint: events ? "this looks like JSON Lines (an event backup?): restore events with restore-events" : "give a file written by dump-stash",
      exitCode: ExitCode.usage,
    });
  }
  if (!isObject(value) || !isObject(value.data) || typeof value.timestamp !== "number" || !Number.isInteger(value.timestamp)) {
    throw new NaraError(`${name} is not a stash backup: it needs an integer "timestamp" and an object "data"`, {
      hint: "give a file written by dump-stash",
      exitCode: ExitCode.usage,
    });
  }
  return { timestamp: value.timestamp, data: value.data };
}

/** JSON with every object's keys sorted: two stashes are the same when their canonical texts are. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (isObject(value)) {
    const keys = Object.keys(value).sort(byUtf8);
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Go sorts map keys by their UTF-8 bytes; UTF-16 order differs above U+FFFF. */
const byUtf8 = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

export const sameStash = (a: unknown, b: unknown): boolean => canonical(a) === canonical(b);

/** What differs at the top level, for a message: "2 keys only in the backup (a, b), 1 changed (c)". */
export function describeDifference(backup: Record<string, unknown>, current: Record<string, unknown>): string {
  const only = (x: Record<string, unknown>, y: Record<string, unknown>) => Object.keys(x).filter((k) => !Object.hasOwn(y, k)).sort(byUtf8);
  const onlyBackup = only(backup, current);
  const onlyNara = only(current, backup);
  const changed = Object.keys(backup)
    .filter((k) => Object.hasOwn(current, k) && canonical(backup[k]) !== canonical(current[k]))
    .sort(byUtf8);
  const list = (keys: string[]) => {
    const shown = keys.slice(0, 5).map((k) => JSON.stringify(k));
    return keys.length > 5 ? `${shown.join(", ")}, … ${keys.length - 5} more` : shown.join(", ");
  };
  const parts: string[] = [];
  if (onlyBackup.length) parts.push(`${plural(onlyBackup.length, "key")} only in the backup (${list(onlyBackup)})`);
  if (onlyNara.length) parts.push(`${plural(onlyNara.length, "key")} only on the nara (${list(onlyNara)})`);
  if (changed.length) parts.push(`${plural(changed.length, "key")} with other values (${list(changed)})`);
  return parts.join("; ") || "the same keys and values in another form";
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
