/**
 * An input held in memory from pass 1 to the send passes: a plain file that
 * fits the budget is read once, checked in place, and its batches are cut
 * out of the same bytes. They are then the bytes pass 1 validated, so no
 * CRC and no second or third read is needed. Anything else (compressed,
 * encrypted, over the budget) is read again per pass (sources.ts) and
 * trusted by CRC.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { forEachLineIn } from "../events/lines.ts";
import { grown } from "../typed.ts";
import { sniff } from "../io/input.ts";

/**
 * A plain input's bytes, or undefined when it is not plain, is bigger than
 * `budget` (also if it grew while being read) or cannot be read (the
 * ordinary reader then says why).
 */
export function holdInput(path: string, budget: number): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > budget || st.size === 0) return undefined;
    // One byte more than its size: a file that grew shows by filling it.
    const room = st.size + 1;
    const buf = Buffer.allocUnsafeSlow(room);
    let n = 0;
    while (n < room) {
      const k = readSync(fd, buf, n, room - n, n);
      if (k === 0) break;
      n += k;
    }
    if (n === room) return undefined;
    const bytes = buf.subarray(0, n);
    return sniff(bytes.subarray(0, 8)) === "none" ? bytes : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Lines per slice of a held input before the event loop gets a turn (Ctrl-C, progress). */
const SLICE_BYTES = 4 << 20;

/**
 * The lines of held bytes buf[from, to), in slices with a turn of the event
 * loop between them; stops early (returns what it counted) once `stop()`.
 */
export async function forEachHeldLine(
  buf: Uint8Array,
  from: number,
  to: number,
  visit: (buf: Uint8Array, start: number, end: number, lineNo: number) => void,
  opts: { maxLineBytes?: number; onLong?: (lineNo: number, bytes: number) => void; stop?: () => boolean },
): Promise<number> {
  let lines = 0;
  let s = from;
  while (s < to) {
    if (opts.stop?.()) break;
    let cut = s + SLICE_BYTES >= to ? to : buf.indexOf(0x0a, s + SLICE_BYTES) + 1;
    if (cut === 0) cut = to;
    lines += forEachLineIn(buf, s, cut, visit, { ...opts, firstLine: lines + 1 });
    s = cut;
    Bun.gc(false);
    if (s < to) await new Promise<void>((r) => setImmediate(r));
  }
  return lines;
}

/**
 * Where each kept line of a held input is: [start, end) per line number,
 * and, when pass 1 found them, where its ID's bytes are and its service
 * (the send passes then parse nothing).
 */
export class LineSpans implements LinesInMemory {
  #start = new Uint32Array(1024);
  #end = new Uint32Array(1024);
  /** (ID offset in the line, 8 bits) | (ID length, 16 bits) << 8 | (service code, 8 bits) << 24; 0: not known. */
  #id = new Uint32Array(1024);
  #codes = new Map<string, number>();
  #names: string[] = [""];

  /** Line `line` is buf[start, end); its ID buf[idS, idE) when idS >= 0. */
  set(line: number, start: number, end: number, idS: number, idE: number, svc: string): void {
    if (line >= this.#start.length) {
      let size = this.#start.length * 2;
      while (size <= line) size *= 2;
      this.#start = grown(this.#start, size);
      this.#end = grown(this.#end, size);
      this.#id = grown(this.#id, size);
    }
    this.#start[line] = start;
    this.#end[line] = end;
    this.#id[line] = idS >= start && idS - start < 256 && idE - idS < 65536 ? packId(idS - start, idE - idS, this.#code(svc)) : 0;
  }

  #code(svc: string): number {
    let code = this.#codes.get(svc);
    if (code === undefined) {
      if (this.#names.length >= 256) return 0;
      code = this.#names.length;
      this.#names.push(svc);
      this.#codes.set(svc, code);
    }
    return code;
  }

  start(line: number): number {
    return this.#start[line]!;
  }

  end(line: number): number {
    return this.#end[line]!;
  }

  /** Where the line's ID starts, or -1 when not known (validate the line again). */
  idStart(line: number): number {
    const w = this.#id[line]!;
    return w >>> 24 === 0 ? -1 : this.#start[line]! + (w & 0xff);
  }

  idEnd(line: number): number {
    const w = this.#id[line]!;
    return this.#start[line]! + (w & 0xff) + ((w >>> 8) & 0xffff);
  }

  /** The line's service, when its ID is known. */
  svc(line: number): string {
    return this.#names[this.#id[line]! >>> 24]!;
  }
}

const packId = (offset: number, length: number, code: number): number => code === 0 ? 0 : (offset | (length << 8) | (code << 24)) >>> 0;

/** Where the send passes find a line already in memory, in `bytes`: LineSpans over a held input, KeptInput over copies. */
export interface LinesInMemory {
  start(line: number): number;
  end(line: number): number;
  /** Where the line's ID starts, or -1 when not known (validate the line again). */
  idStart(line: number): number;
  idEnd(line: number): number;
  svc(line: number): string;
}

/**
 * The hey-there lines of compressed or encrypted inputs, copied in pass 1 so
 * that pass 2 (hey-there events first) reads no file: they are few (a few per
 * cent of a ledger), while a pass over such a file costs a whole
 * decompression or decryption. Copies are the bytes pass 1 checked, so they
 * need no CRC. Within `budget` bytes for all inputs together; an input whose
 * lines do not fit (or whose lines were checked by another thread, without
 * their bytes here) keeps none, and pass 2 reads it again as before.
 */
export class KeptLines {
  readonly #inputs: (KeptInput | undefined)[];
  #left: number;

  /** `svc`: the service of every line kept (hey-there). */
  constructor(inputs: number, budget: number, svc: string) {
    this.#inputs = Array.from({ length: inputs }, () => new KeptInput(svc));
    this.#left = budget;
  }

  /** Copies input i's line buf[s, e) (its ID at [idS, idE) of buf, or idS -1), unless the input keeps none. */
  add(i: number, line: number, buf: Uint8Array | undefined, s: number, e: number, idS: number, idE: number): void {
    const k = this.#inputs[i];
    if (k === undefined) return;
    if (buf === undefined || e - s > this.#left) return this.drop(i);
    this.#left -= e - s;
    k.add(line, buf, s, e, idS, idE);
  }

  /** The line is not sent after all (a signed copy of its ID came later); its bytes stay counted. */
  remove(i: number, line: number): void {
    this.#inputs[i]?.remove(line);
  }

  /** Input i keeps none: pass 2 reads it. */
  drop(i: number): void {
    this.#left += this.#inputs[i]?.length ?? 0;
    this.#inputs[i] = undefined;
  }

  /** Input i's kept lines, or undefined when it keeps none. */
  of(i: number): (LinesInMemory & { bytes: Uint8Array }) | undefined {
    return this.#inputs[i];
  }
}

/** One input's kept lines back to back in one buffer (small copies kept among pass 1's garbage would pin its pages). */
class KeptInput implements LinesInMemory {
  bytes = new Uint8Array(0);
  length = 0;
  /** Line number -> n, where spans[4n..4n+3] are its start, end, ID start (-1: unknown) and ID end. */
  readonly #at = new Map<number, number>();
  #spans = new Int32Array(0);

  constructor(private readonly service: string) {}

  add(line: number, buf: Uint8Array, s: number, e: number, idS: number, idE: number): void {
    const at = this.length;
    if (at + (e - s) > this.bytes.length) this.bytes = grown(this.bytes, Math.max(64 << 10, 2 * (at + (e - s))));
    this.bytes.set(buf.subarray(s, e), at);
    const n = this.#at.size;
    if (4 * n + 4 > this.#spans.length) this.#spans = grown(this.#spans, Math.max(1024, 2 * this.#spans.length));
    this.#spans.set([at, at + (e - s), idS < 0 ? -1 : at + (idS - s), idS < 0 ? -1 : at + (idE - s)], 4 * n);
    this.#at.set(line, n);
    this.length += e - s;
  }

  remove(line: number): void {
    this.#at.delete(line);
  }

  start(line: number): number {
    return this.#spans[4 * this.#at.get(line)!]!;
  }

  end(line: number): number {
    return this.#spans[4 * this.#at.get(line)! + 1]!;
  }

  idStart(line: number): number {
    return this.#spans[4 * this.#at.get(line)! + 2]!;
  }

  idEnd(line: number): number {
    return this.#spans[4 * this.#at.get(line)! + 3]!;
  }

  svc(): string {
    return this.service;
  }
}
