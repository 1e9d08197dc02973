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
export class LineSpans {
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
