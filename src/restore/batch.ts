/**
 * Import request bodies, built from the events' raw bytes (never
 * re-encoded: ts stays exact, escapes and field order stay as the peer wrote
 * them), and signed with the target's soul just before sending.
 */
import type { Identity } from "../identity/soul.ts";
import { signImportJoined } from "../mesh/auth.ts";

const enc = new TextEncoder();
const HEAD = enc.encode('{"events":[');

/**
 * One batch being filled: the raw events joined by commas, and their IDs in
 * order, as the UTF-8 bytes the batch signature covers (no string per ID).
 */
export class Batch {
  #buf: Uint8Array;
  #len: number;
  #count = 0;
  /** The IDs back to back, and where each ends. */
  #idBytes = new Uint8Array(64 * 1024);
  #idLen = 0;
  #idEnds: number[] = [];
  /** Per service, for dry-run reports and progress. */
  readonly services = new Map<string, number>();

  constructor(initialBytes = 64 * 1024) {
    this.#buf = new Uint8Array(Math.max(initialBytes, 64));
    this.#buf.set(HEAD);
    this.#len = HEAD.length;
  }

  get count(): number {
    return this.#count;
  }

  /** Bytes of the events part so far. */
  get eventBytes(): number {
    return this.#len - HEAD.length;
  }

  /** Appends one event's raw JSON bytes (copied: `buf` may be reused by the reader) and its ID. */
  add(buf: Uint8Array, start: number, end: number, id: string, svc: string): void {
    const bytes = enc.encode(id);
    this.#event(buf, start, end, svc);
    this.#id(bytes, 0, bytes.length);
  }

  /** `add` for an event whose ID is the plain ASCII buf[idS, idE) of its own line. */
  addLine(buf: Uint8Array, start: number, end: number, idS: number, idE: number, svc: string): void {
    this.#event(buf, start, end, svc);
    this.#id(buf, idS, idE);
  }

  #event(buf: Uint8Array, start: number, end: number, svc: string): void {
    this.#reserve(end - start + 1);
    if (this.#count > 0) this.#buf[this.#len++] = 0x2c; // ,
    // Buffer's copy takes the range itself: no view made per event.
    if (Buffer.isBuffer(buf)) buf.copy(this.#buf, this.#len, start, end);
    else this.#buf.set(buf.subarray(start, end), this.#len);
    this.#len += end - start;
    this.#count++;
    this.services.set(svc, (this.services.get(svc) ?? 0) + 1);
  }

  #id(buf: Uint8Array, s: number, e: number): void {
    const need = this.#idLen + e - s;
    if (need > this.#idBytes.length) {
      const next = new Uint8Array(Math.max(need, this.#idBytes.length * 2));
      next.set(this.#idBytes.subarray(0, this.#idLen));
      this.#idBytes = next;
    }
    const out = this.#idBytes;
    let n = this.#idLen;
    for (let k = s; k < e; k++) out[n++] = buf[k]!;
    this.#idLen = n;
    this.#idEnds.push(n);
  }

  /** The IDs joined, as the import signature covers them (a view, valid until the next add or reset). */
  get joinedIds(): Uint8Array {
    return this.#idBytes.subarray(0, this.#idLen);
  }

  /**
   * The exact request body for this batch, `{"events":[...],"ts":N,"sig":"..."}`:
   * the tail is written after the events in the batch's own buffer, so the
   * body is a view, valid until the next body(), add() or reset().
   */
  body(tsSeconds: number, sig: string): Uint8Array {
    if (this.#count === 0) return buildBody(new Uint8Array(0), 0, tsSeconds, sig);
    if (!Number.isSafeInteger(tsSeconds)) throw new RangeError(`import ts must be an integer, got ${tsSeconds}`);
    const tail = enc.encode(`],"ts":${tsSeconds},"sig":"${sig}"}`);
    this.#reserve(tail.length);
    this.#buf.set(tail, this.#len);
    return this.#buf.subarray(0, this.#len + tail.length);
  }

  /** Empties the batch, keeping its buffer for the next one. */
  reset(): void {
    this.#len = HEAD.length;
    this.#count = 0;
    this.#idLen = 0;
    this.#idEnds.length = 0;
    this.services.clear();
  }

  #reserve(extra: number): void {
    const need = this.#len + extra;
    if (need <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < need + 256) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }
}

/**
 * `{"events":[<events>],"ts":N,"sig":"S"}` around already-joined raw events.
 * An empty batch is written `"events":null`, as Go encodes a nil slice.
 */
export function buildBody(joinedEvents: Uint8Array, count: number, tsSeconds: number, sig: string): Uint8Array {
  if (!Number.isSafeInteger(tsSeconds)) throw new RangeError(`import ts must be an integer, got ${tsSeconds}`);
  const tail = enc.encode(`${count === 0 ? "" : "]"},"ts":${tsSeconds},"sig":"${sig}"}`);
  const head = count === 0 ? enc.encode('{"events":null') : HEAD;
  const out = new Uint8Array(head.length + joinedEvents.length + tail.length);
  out.set(head);
  out.set(joinedEvents, head.length);
  out.set(tail, head.length + joinedEvents.length);
  return out;
}

/** Joins raw event texts (tests, small tools). */
export function joinEvents(raws: readonly (string | Uint8Array)[]): Uint8Array {
  const parts = raws.map((r) => (typeof r === "string" ? enc.encode(r) : r));
  const total = parts.reduce((n, p) => n + p.length, 0) + Math.max(0, parts.length - 1);
  const out = new Uint8Array(total);
  let at = 0;
  parts.forEach((p, i) => {
    if (i > 0) out[at++] = 0x2c;
    out.set(p, at);
    at += p.length;
  });
  return out;
}

export type SignedBody = { body: Uint8Array; ts: number; sig: string };

/**
 * Signs the batch now: ts = the current Unix second (of `nowMs`), sig over
 * `ts + ":" + concat(ids)` (mesh/auth.ts). Call it once per attempt, right before sending.
 */
export function signBatch(batch: Batch, identity: Identity, nowMs: number = Date.now()): SignedBody {
  const ts = Math.floor(nowMs / 1000);
  const sig = signImportJoined(identity, ts, batch.joinedIds);
  return { body: batch.body(ts, sig), ts, sig };
}
