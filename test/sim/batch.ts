/**
 * Page batches as a fetch worker posts them to the coordinator, built from
 * raw events (every one counted as new to the worker), for feeding the
 * collector directly: test/collect.test.ts and bench/stages.ts.
 */
import { hexWords } from "../../src/events/idtable.ts";
import { STRING_ID, type PageBatch } from "../../src/dump/messages.ts";
import { newEventFields, scanEventAt, splitTsInto } from "../../src/events/scan.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function pageBatch(raws: readonly string[], floor = { hi: -Infinity, lo: 0 }): PageBatch {
  const bytes = encoder.encode(raws.join(","));
  const n = raws.length;
  const b: PageBatch = {
    type: "page",
    peer: "p",
    page: 1,
    bytes,
    served: bytes.length,
    count: n,
    start: new Uint32Array(n),
    end: new Uint32Array(n),
    idWords: new Uint32Array(n * 4),
    ids: "",
    tsHi: new Float64Array(n),
    tsLo: new Float64Array(n),
    flags: new Uint8Array(n),
    progress: 0,
    floorHi: floor.hi,
    floorLo: floor.lo,
  };
  const f = newEventFields();
  const keys: string[] = [];
  let at = 0;
  for (let i = 0; i < n; i++) {
    b.start[i] = at;
    at = scanEventAt(bytes, at, f);
    b.end[i] = at;
    at++; // the comma
    splitTsInto(bytes, f.tsStart, f.tsEnd, b.tsHi, b.tsLo, i);
    b.flags[i] = f.flags;
    if (!hexWords(bytes, f.idStart, f.idEnd, b.idWords, i * 4)) {
      b.flags[i]! |= STRING_ID;
      keys.push(decoder.decode(bytes.subarray(f.idStart, f.idEnd)));
    }
  }
  b.ids = keys.join("\n");
  return b;
}
