/**
 * Streams JSON Lines as byte ranges, without decoding: memory stays bounded
 * by the line cap (plus a chunk), whatever the file size and whatever its
 * longest line.
 */

export type LineVisitor = (buf: Uint8Array, start: number, end: number, lineNo: number) => void | Promise<void>;

/** A real nara event is a few KB (a checkpoint a few tens); the Go tool's reader stops at 1 MB lines. */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

export type LineOptions = {
  /** Longest line (bytes, without its "\n") given to `visit`; longer ones go to `onLong`. */
  maxLineBytes?: number;
  /** A line longer than the cap, skipped without being held; `bytes` is its whole length. */
  onLong?: (lineNo: number, bytes: number) => void | Promise<void>;
};

/**
 * The chunks of a skipped line are garbage the engine collects late (RSS grew
 * by ~40 MiB over a 150 MB line): a full collection every this many bytes
 * skipped keeps it flat, a few collections for an absurd line, none otherwise.
 */
const GC_EVERY_SKIPPED = 32 << 20;

/** "1 MiB", "512 KiB", "1000 bytes": how a cap is named in messages. */
export function formatLimit(bytes: number): string {
  for (const [unit, size] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** The reason given for an over-long line, the same in every reader. */
export function longLineReason(bytes: number, limit: number): string {
  return `line of ${bytes} bytes, longer than any event (limit ${formatLimit(limit)})`;
}

/**
 * Calls `visit` for every non-blank line (the range excludes "\n" and a
 * trailing "\r"). Line numbers start at 1 and count blank lines too. `buf`
 * is only valid during the call: copy what must outlive it. A line longer
 * than `maxLineBytes` is counted while it streams past and given to
 * `onLong` at its end, never held.
 */
export async function forEachLine(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  visit: LineVisitor,
  opts: LineOptions = {},
): Promise<number> {
  const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const onLong = opts.onLong;
  let carry: Uint8Array = new Uint8Array(0);
  /** Bytes of an over-long line seen so far; -1 when not inside one. */
  let skipped = -1;
  let lineNo = 0;
  let sinceGc = 0;
  const emit = (buf: Uint8Array, s: number, e: number): void | Promise<void> => {
    lineNo++;
    if (e - s > max) return onLong?.(lineNo, e - s);
    if (e > s && buf[e - 1] === 0x0d) e--;
    let k = s;
    while (k < e && (buf[k] === 0x20 || buf[k] === 0x09)) k++;
    return k < e ? visit(buf, s, e, lineNo) : undefined;
  };
  const endLong = (bytes: number): void | Promise<void> => {
    skipped = -1;
    lineNo++;
    return onLong?.(lineNo, bytes);
  };
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    const buf = chunk;
    let from = 0;
    if (skipped >= 0) {
      const nl = chunk.indexOf(0x0a);
      if (nl === -1) {
        skipped += chunk.length;
        if ((sinceGc += chunk.length) >= GC_EVERY_SKIPPED) {
          sinceGc = 0;
          Bun.gc(true);
        }
        continue;
      }
      const pending = endLong(skipped + nl);
      if (pending) await pending;
      from = nl + 1;
    } else if (carry.length > 0) {
      const nl = chunk.indexOf(0x0a);
      if (nl === -1) {
        if (carry.length + chunk.length > max) {
          // Too long to be an event: only its length is kept from here on.
          skipped = carry.length + chunk.length;
          carry = new Uint8Array(0);
        } else carry = concat(carry, chunk);
        continue;
      }
      if (carry.length + nl > max) {
        const pending = endLong(carry.length + nl);
        if (pending) await pending;
      } else {
        // Only the straddling line is copied, not the whole chunk.
        const joined = concat(carry, chunk.subarray(0, nl));
        const pending = emit(joined, 0, joined.length);
        if (pending) await pending;
      }
      carry = new Uint8Array(0);
      from = nl + 1;
    }
    for (;;) {
      const nl = buf.indexOf(0x0a, from);
      if (nl === -1) break;
      const pending = emit(buf, from, nl);
      if (pending) await pending;
      from = nl + 1;
    }
    if (from < buf.length) {
      if (buf.length - from > max) skipped = buf.length - from;
      else carry = buf.slice(from);
    }
  }
  if (skipped >= 0) await endLong(skipped);
  else if (carry.length > 0) await emit(carry, 0, carry.length);
  return lineNo;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
