/**
 * Pass 1 on two cores. Nothing is sent before every line is checked, so
 * while pass 1 runs the nara is idle and the client has the machine: a
 * worker (workers/restore-check.ts) checks the second half of a large
 * plain file while the main thread checks the first. The worker's results
 * come back in order, in chunks of compact records (IDs joined in one
 * string, flags, CRCs), and are taken in only after the first half, so the
 * ID index sees every line in file order exactly as from one reader. The
 * worker stops after WINDOW unacknowledged chunks: memory stays bounded
 * whatever the file size (a huge file is checked in parallel for its first
 * WINDOW chunks of the second half, then at the main thread's pace).
 */
import { DEFAULT_MAX_LINE_BYTES, forEachLine, longLineReason } from "../events/lines.ts";
import type { FilterFields } from "../events/validate.ts";
import { lineCrc } from "../events/linecheck.ts";
import { validateLine } from "../events/validate.ts";

/** Records per chunk, and chunks the worker may be ahead by. */
export const CHUNK_RECORDS = 16384;
export const WINDOW = 8;

export type CheckJob = { type: "start"; path: string; start: number; end: number; withTs: boolean; maxLineBytes?: number };
export type ToChecker = CheckJob | { type: "ack" };

/** Valid lines of one chunk, and the invalid ones among them. Lines are relative to the range (1 = its first line). */
export type CheckChunk = {
  type: "chunk";
  count: number;
  line: Uint32Array;
  /** bit 0 signed, bit 1 plain */
  flags: Uint8Array;
  crc: Uint32Array;
  /** The IDs back to back; record k is [idEnd[k-1], idEnd[k]). */
  ids: string;
  idEnd: Uint32Array;
  svc: Uint8Array;
  svcNames: string[];
  /** ts texts, only when asked for (a time filter). */
  ts: string;
  tsEnd: Uint32Array;
  invalid: { line: number; reason: string }[];
  /** Bytes of the range read so far. */
  bytes: number;
};
export type FromChecker = CheckChunk | { type: "done"; lines: number; bytes: number } | { type: "error"; message: string; code?: string };

/** What pass 1 keeps of a valid line (the --nara filter, which needs more, never splits a file). */
export type CheckedLine = FilterFields & { id: string; signed: boolean; plain: boolean };

const NO_NARAS: readonly string[] = Object.freeze([]);

/** The record k of a chunk. */
export function recordOf(c: CheckChunk, k: number): CheckedLine & { crc: number } {
  const from = k === 0 ? 0 : c.idEnd[k - 1]!;
  const tsFrom = k === 0 ? 0 : c.tsEnd[k - 1]!;
  const f = c.flags[k]!;
  return {
    id: c.ids.slice(from, c.idEnd[k]!),
    svc: c.svcNames[c.svc[k]!]!,
    tsText: c.ts.slice(tsFrom, c.tsEnd[k]!),
    signed: (f & 1) !== 0,
    plain: (f & 2) !== 0,
    crc: c.crc[k]!,
    naras: NO_NARAS,
  };
}

/**
 * The worker's side: checks the lines of path[start, end) and hands out
 * chunks; `post` resolves when the chunk may be followed by another (the
 * window has room).
 */
export async function checkRange(job: CheckJob, post: (m: FromChecker) => Promise<void>): Promise<void> {
  let chunk = newChunk();
  let ids: string[] = [];
  let ts: string[] = [];
  let idLen = 0;
  let tsLen = 0;
  let svcCodes = new Map<string, number>();
  let bytes = 0;
  const emit = async () => {
    chunk.ids = ids.join("");
    chunk.ts = ts.join("");
    chunk.line = chunk.line.slice(0, chunk.count);
    chunk.flags = chunk.flags.slice(0, chunk.count);
    chunk.crc = chunk.crc.slice(0, chunk.count);
    chunk.idEnd = chunk.idEnd.slice(0, chunk.count);
    chunk.tsEnd = chunk.tsEnd.slice(0, chunk.count);
    chunk.svc = chunk.svc.slice(0, chunk.count);
    chunk.bytes = bytes;
    await post(chunk);
    chunk = newChunk();
    ids = [];
    ts = [];
    idLen = tsLen = 0;
    svcCodes = new Map();
  };
  const stream = Bun.file(job.path).slice(job.start, job.end).stream();
  const counted = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(c, ctl) {
        bytes += c.length;
        ctl.enqueue(c);
      },
    }),
  );
  const lines = await forEachLine(counted, async (buf, s, e, line) => {
    const v = validateLine(buf, s, e, { withoutTs: !job.withTs });
    if (!v.ok) chunk.invalid.push({ line, reason: v.reason });
    else {
      let code = svcCodes.get(v.svc);
      if (code === undefined) {
        code = chunk.svcNames.length;
        svcCodes.set(v.svc, code);
        chunk.svcNames.push(v.svc);
      }
      const k = chunk.count++;
      chunk.line[k] = line;
      chunk.flags[k] = (v.signed ? 1 : 0) | (v.plain ? 2 : 0);
      chunk.crc[k] = lineCrc(buf, s, e);
      ids.push(v.id);
      chunk.idEnd[k] = idLen += v.id.length;
      if (job.withTs) {
        ts.push(v.tsText);
        tsLen += v.tsText.length;
      }
      chunk.tsEnd[k] = tsLen;
      chunk.svc[k] = code;
    }
    if (chunk.count >= CHUNK_RECORDS || chunk.invalid.length >= CHUNK_RECORDS || chunk.svcNames.length >= 255) await emit();
  }, {
    maxLineBytes: job.maxLineBytes,
    // Too long to be an event: reported like any invalid line, in its place among the others.
    onLong: (line, bytes) => {
      chunk.invalid.push({ line, reason: longLineReason(bytes, job.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES) });
    },
  });
  if (chunk.count > 0 || chunk.invalid.length > 0) await emit();
  await post({ type: "done", lines, bytes });
}

function newChunk(): CheckChunk {
  return {
    type: "chunk",
    count: 0,
    line: new Uint32Array(CHUNK_RECORDS),
    flags: new Uint8Array(CHUNK_RECORDS),
    crc: new Uint32Array(CHUNK_RECORDS),
    ids: "",
    idEnd: new Uint32Array(CHUNK_RECORDS),
    svc: new Uint8Array(CHUNK_RECORDS),
    svcNames: [],
    ts: "",
    tsEnd: new Uint32Array(CHUNK_RECORDS),
    invalid: [],
    bytes: 0,
  };
}

/** Buffers a chunk's typed arrays are in, to transfer rather than copy. */
export const transfers = (c: CheckChunk): ArrayBuffer[] =>
  [c.line, c.flags, c.crc, c.idEnd, c.svc, c.tsEnd].map((a) => a.buffer as ArrayBuffer);

/**
 * Where a file is split: just after the first newline at or past
 * `fraction` of it, or undefined when none is found within 1 MiB (one huge
 * line).
 */
export async function splitPoint(path: string, size: number, fraction = 0.5): Promise<number | undefined> {
  const mid = Math.floor(size * fraction);
  const probe = await Bun.file(path).slice(mid, Math.min(size, mid + (1 << 20))).bytes();
  const nl = probe.indexOf(0x0a);
  if (nl === -1 || mid + nl + 1 >= size) return undefined;
  return mid + nl + 1;
}

const workerUrl = import.meta.url.includes("$bunfs")
  ? new URL("./workers/restore-check.ts", import.meta.url)
  : new URL("../../workers/restore-check.ts", import.meta.url);

/**
 * Starts a checker on path[start, end). `onChunk` is called for each chunk in
 * order, only once `ready()` was called (the main thread is done with the
 * part before); the promise resolves with the range's line count.
 */
export function startChecker(
  job: Omit<CheckJob, "type">,
  onChunk: (c: CheckChunk) => void,
): { ready: () => Promise<{ lines: number; bytes: number }>; stop: () => void } {
  // smol: a smaller heap for a thread that only scans and posts typed arrays (pass 1 of 180 670 events: ~165 -> ~152 MiB peak RSS, same CPU).
  const worker = new Worker(workerUrl, { smol: true });
  const queue: FromChecker[] = [];
  let wake: (() => void) | undefined;
  let failure: Error | undefined;
  worker.onmessage = (e: MessageEvent<FromChecker>) => {
    queue.push(e.data);
    wake?.();
  };
  worker.onerror = (e) => {
    failure = new Error(`the checking worker failed: ${(e as ErrorEvent).message ?? e}`);
    wake?.();
  };
  worker.postMessage({ type: "start", ...job } satisfies ToChecker);
  const next = async (): Promise<FromChecker> => {
    while (queue.length === 0) {
      if (failure) throw failure;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    return queue.shift()!;
  };
  return {
    async ready() {
      try {
        for (;;) {
          const m = await next();
          if (m.type === "error") throw Object.assign(new Error(m.message), { code: m.code });
          if (m.type === "done") return { lines: m.lines, bytes: m.bytes };
          onChunk(m);
          worker.postMessage({ type: "ack" } satisfies ToChecker);
        }
      } finally {
        worker.terminate();
      }
    },
    stop: () => worker.terminate(),
  };
}
