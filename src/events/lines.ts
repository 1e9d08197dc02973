/**
 * Streams JSON Lines as byte ranges, without decoding: memory stays bounded
 * by the longest line, whatever the file size.
 */

export type LineVisitor = (buf: Uint8Array, start: number, end: number, lineNo: number) => void | Promise<void>;

/**
 * Calls `visit` for every non-blank line (the range excludes "\n" and a
 * trailing "\r"). Line numbers start at 1 and count blank lines too. `buf`
 * is only valid during the call: copy what must outlive it.
 */
export async function forEachLine(source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>, visit: LineVisitor): Promise<number> {
  let carry: Uint8Array = new Uint8Array(0);
  let lineNo = 0;
  const emit = (buf: Uint8Array, s: number, e: number): void | Promise<void> => {
    lineNo++;
    if (e > s && buf[e - 1] === 0x0d) e--;
    let k = s;
    while (k < e && (buf[k] === 0x20 || buf[k] === 0x09)) k++;
    return k < e ? visit(buf, s, e, lineNo) : undefined;
  };
  for await (const chunk of source as AsyncIterable<Uint8Array>) {
    const buf = chunk;
    let from = 0;
    if (carry.length > 0) {
      const nl = chunk.indexOf(0x0a);
      if (nl === -1) {
        carry = concat(carry, chunk);
        continue;
      }
      // Only the straddling line is copied, not the whole chunk.
      const joined = concat(carry, chunk.subarray(0, nl));
      const pending = emit(joined, 0, joined.length);
      if (pending) await pending;
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
    if (from < buf.length) carry = buf.slice(from);
  }
  if (carry.length > 0) await emit(carry, 0, carry.length);
  return lineNo;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
