/**
 * A JSON skimmer: the raw text of each element of a body's `events` array,
 * so the simulator can store (and tests can compare) events byte for byte
 * instead of re-encoding what JSON.parse gave.
 */

function skipWs(s: string, i: number): number {
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
    else return i;
  }
}

/** `i` at the opening quote of a string: index after the closing quote. */
function skipString(s: string, i: number): number {
  i++;
  for (;;) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c === 0x5c) i += 2;
    else if (Number.isNaN(c)) throw new SyntaxError("unterminated string");
    else i++;
  }
}

/** Index after the JSON value starting at `i` (the text is known to be valid JSON). */
function skipValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 0x22) return skipString(s, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (;;) {
      const d = s.charCodeAt(i);
      if (d === 0x22) {
        i = skipString(s, i);
        continue;
      }
      if (d === 0x7b || d === 0x5b) depth++;
      else if (d === 0x7d || d === 0x5d) {
        depth--;
        if (depth === 0) return i + 1;
      } else if (Number.isNaN(d)) throw new SyntaxError("unterminated value");
      i++;
    }
  }
  while (i < s.length) {
    const d = s.charCodeAt(i);
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) break;
    i++;
  }
  return i;
}

/**
 * The raw text of each element of the top-level `events` array of a JSON
 * object text (already validated by JSON.parse). Keys match Go-style
 * (case-insensitively, the last one wins). null when `events` is null/absent.
 */
export function rawEventsOf(body: string): string[] | null {
  let i = skipWs(body, 0);
  if (body.charCodeAt(i) !== 0x7b) return null;
  i = skipWs(body, i + 1);
  let found: [number, number] | null = null;
  while (body.charCodeAt(i) !== 0x7d) {
    const keyEnd = skipString(body, i);
    const key = JSON.parse(body.slice(i, keyEnd)) as string;
    i = skipWs(body, keyEnd);
    i = skipWs(body, i + 1); // ':'
    const end = skipValue(body, i);
    if (key.toLowerCase() === "events") found = [i, end];
    i = skipWs(body, end);
    if (body.charCodeAt(i) === 0x2c) i = skipWs(body, i + 1);
  }
  if (!found || body.charCodeAt(found[0]) !== 0x5b) return null;
  const out: string[] = [];
  let j = skipWs(body, found[0] + 1);
  while (body.charCodeAt(j) !== 0x5d) {
    const end = skipValue(body, j);
    out.push(body.slice(j, end));
    j = skipWs(body, end);
    if (body.charCodeAt(j) === 0x2c) j = skipWs(body, j + 1);
  }
  return out;
}
