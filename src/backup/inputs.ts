/**
 * The reading loop verify and stats share: the inputs as named (none is
 * stdin), each opened whatever its format (open.ts), its lines split with
 * the line cap and the BOM rule, progress reported now and then.
 */
import { NaraError, usageError } from "../errors.ts";
import { MAX_INPUTS } from "../events/idindex.ts";
import { DEFAULT_MAX_LINE_BYTES, forEachLine } from "../events/lines.ts";
import { bomLength } from "../events/validate.ts";
import { openBackup, tapStream, type InputKind, type OpenedBackup, type OpenOptions } from "./open.ts";

export type InputsOptions = {
  /** Files to read, "-" for stdin; none means stdin. */
  inputs: string[];
  /** For encrypted inputs. */
  soul?: OpenOptions["soul"];
  /** Longer lines are malformed, skipped without being held (default DEFAULT_MAX_LINE_BYTES, 1 MiB). */
  maxLineBytes?: number;
  /** Opens an input (tests); default openBackup. */
  open?: (path: string, opts: OpenOptions) => Promise<OpenedBackup>;
};

/** An input being read: its place on the command line, its name in messages ("stdin" for -), its format. */
export type OpenedInput = { index: number; name: string; kind: InputKind };

/** What verify and stats both count of each input (their reports add their own). */
export type InputCounts = {
  name: string;
  compression: InputKind["compression"];
  encrypted: boolean;
  /** Decompressed bytes read. */
  bytes: number;
  /** Lines, blank ones included. */
  lines: number;
  /** Event lines. */
  events: number;
  malformed: number;
};

/** The counts of an input just opened: its name and format, zeros. */
export const newCounts = (input: OpenedInput): InputCounts => ({
  name: input.name,
  compression: input.kind.compression,
  encrypted: input.kind.encrypted,
  bytes: 0,
  lines: 0,
  events: 0,
  malformed: 0,
});

export type InputProgress = { rawBytes: number; bytes: number; lines: number };

export type InputLines = {
  /** A line (blank ones included, a leading BOM left out): `buf[s, e)` is valid only during the call. */
  line(buf: Uint8Array, s: number, e: number, line: number): void | Promise<void>;
  /** A line over the cap, skipped unread. */
  long(line: number, bytes: number): void;
};

export type InputReader = {
  /** Called as each input is opened; says what to do with its lines. */
  begin(input: OpenedInput): InputLines;
  /** Lines between two progress calls (the first is at line 1). */
  progressEvery: number;
  /** `rawBytes`: bytes read from all inputs so far (compressed, encrypted); `bytes`: this input's decompressed bytes. */
  progress?(input: OpenedInput, p: InputProgress): void;
  /**
   * The data itself is damaged (compressed data cut or garbled, an encrypted chunk changed): called instead of
   * throwing, after the lines before the damage were read. Without it the error is thrown.
   */
  damaged?(input: OpenedInput, err: NaraError, lastLine: number): void;
  /** After the input's last line (the last read, when damaged); `lastByte` -1 when it was empty. */
  end(input: OpenedInput, r: InputProgress & { lastByte: number }): void;
};

/** The inputs as named: none is stdin, read once at most; at most MAX_INPUTS (the ID index counts them). */
export function inputList(inputs: string[]): string[] {
  const list = inputs.length === 0 ? ["-"] : inputs;
  if (list.filter((p) => p === "-").length > 1) throw usageError("stdin (-) can be read only once");
  if (list.length > MAX_INPUTS) throw usageError(`too many inputs (at most ${MAX_INPUTS})`);
  return list;
}

/** Reads every input in turn, line by line, into `reader`. */
export async function readInputs(opts: InputsOptions, reader: InputReader): Promise<void> {
  const inputs = inputList(opts.inputs);
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  let rawBytes = 0;
  for (let index = 0; index < inputs.length; index++) {
    const opened = await (opts.open ?? openBackup)(inputs[index]!, { soul: opts.soul, onRead: (n) => (rawBytes += n) });
    const input: OpenedInput = { index, name: opened.name, kind: opened.kind };
    const handlers = reader.begin(input);
    const tap = tapStream(opened.stream);
    let nextProgress = 0;
    let lastLine = 0;
    let lines: number;
    try {
      lines = await forEachLine(
        tap.chunks,
        (buf, s, e, line) => {
          lastLine = line;
          if (line === 1) s += bomLength(buf, s, e);
          if (line >= nextProgress) {
            nextProgress = line + reader.progressEvery;
            reader.progress?.(input, { rawBytes, bytes: tap.bytes(), lines: line });
          }
          return handlers.line(buf, s, e, line);
        },
        {
          maxLineBytes,
          onLong(line, bytes) {
            lastLine = line;
            handlers.long(line, bytes);
          },
        },
      );
    } catch (err) {
      if (!(err instanceof NaraError) || !reader.damaged) throw err;
      lines = lastLine;
      reader.damaged(input, err, lastLine);
    }
    reader.end(input, { rawBytes, bytes: tap.bytes(), lines, lastByte: tap.lastByte() });
  }
}
