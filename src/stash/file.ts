/**
 * Reading a stash backup: plain or encrypted (recognised by its first bytes,
 * src/io/input.ts), one record, refused beyond MAX_STASH_BYTES before it is
 * all in memory.
 */
import { statSync } from "node:fs";
import { ExitCode, NaraError } from "../errors.ts";
import type { SeedSource } from "../io/encrypt.ts";
import { openInput } from "../io/input.ts";
import { MAX_STASH_BYTES, readAllCapped } from "./http.ts";
import { parseRecord, type StashRecord } from "./record.ts";

export type ReadStash = { record: StashRecord; encrypted: boolean; bytes: number };

const tooLarge = (name: string) =>
  new NaraError(`${name} is larger than ${MAX_STASH_BYTES >> 20} MiB: not a stash backup`, {
    hint: "a stash backup is one record written by dump-stash",
    exitCode: ExitCode.usage,
  });

export async function readStashFile(path: string, opts: { soul?: SeedSource; soulHint?: string } = {}): Promise<ReadStash> {
  const name = path === "-" ? "stdin" : path;
  if (path !== "-") {
    try {
      // Encryption adds a header and 16 bytes per MiB chunk: a little slack over the plaintext cap.
      const st = statSync(path);
      if (st.isFile() && st.size > MAX_STASH_BYTES + 65536) throw tooLarge(name);
    } catch (err) {
      if (err instanceof NaraError) throw err;
      // openInput says what is wrong with the path.
    }
  }
  const input = await openInput(path, { soul: opts.soul, soulHint: opts.soulHint });
  const bytes = await readAllCapped(input.stream, MAX_STASH_BYTES);
  if (!bytes) throw tooLarge(name);
  const text = Buffer.from(bytes).toString("utf8");
  if (!text.trim()) throw new NaraError(`${name} is empty`, { hint: "give a file written by dump-stash", exitCode: ExitCode.usage });
  return { record: parseRecord(text, name), encrypted: input.kind.encrypted, bytes: bytes.length };
}
