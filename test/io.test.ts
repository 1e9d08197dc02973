/**
 * src/io: compressed and encrypted backups. openOutput -> openInput round
 * trips, the encryption format against vectors computed by an independent
 * implementation (test/vectors/encryption.py), the standard tools, tampering,
 * and a dump -> restore round trip through the command line.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode, NaraError } from "../src/errors.ts";
import { Decryptor, Encryptor } from "../src/io/encrypt.ts";
import { EncryptedInputError, HEADER_LENGTH, TAG_LENGTH, deriveKeys, makeHeader, soulId } from "../src/io/encrypt-format.ts";
import { decryptBytes, decryptStream, encryptBytes, encryptStream } from "./helpers/encrypt.ts";
import { openInput, type InputKind } from "../src/io/input.ts";
import { BLOCK_SIZE, compressionForPath, openOutput, type Compression } from "../src/io/output.ts";
import { loadDecryptSoul } from "../src/io/seed.ts";
import { sha256 } from "../src/identity/crypto.ts";
import { Rng, makeNara } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { startPeer, type SimPeer } from "./sim/peer.ts";

const dir = mkdtempSync(join(tmpdir(), "nara-io-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "hex"));
const sha = (b: Uint8Array): string => hex(sha256(b));

type SoulVector = { name: string; seed_hex: string; soul: string };
const souls = (JSON.parse(readFileSync(join(import.meta.dir, "../../shared/vectors/souls.json"), "utf8")) as { valid: SoulVector[] }).valid;
const alice = souls.find((s) => s.name === "alice")!;
const bob = souls.find((s) => s.name === "bob")!;
const aliceSeed = unhex(alice.seed_hex);
const bobSeed = unhex(bob.seed_hex);
const aliceSoul = () => ({ seed: aliceSeed });

/** JSON Lines that look like events, with random content: compresses like real backups, not to nothing. */
function eventLines(bytes: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  const parts: string[] = [];
  let n = 0;
  let ts = 1767225600000000000n;
  while (n < bytes) {
    ts += BigInt(rng.int(1_000_000_000));
    const id = hex(rng.bytes(16));
    const line = `{"id":"${id}","ts":${ts},"svc":"ping","emitter":"nara-${rng.int(50)}","ping":{"observer":"nara-${rng.int(50)}","target":"nara-${rng.int(50)}","rtt":${rng.int(100000) / 1000}},"sig":"${Buffer.from(rng.bytes(64)).toString("base64")}"}\n`;
    parts.push(line);
    n += line.length;
  }
  return new TextEncoder().encode(parts.join("")).subarray(0, bytes);
}

/** Writes `data` through openOutput in uneven pieces. */
async function writeThrough(path: string, data: Uint8Array, opts: Parameters<typeof openOutput>[1] = {}): Promise<void> {
  const out = openOutput(path, opts);
  const rng = new Rng(data.length);
  for (let at = 0; at < data.length; ) {
    const n = 1 + rng.int(300_000);
    await out.write(data.subarray(at, at + n));
    at += n;
  }
  await out.commit();
}

/** Reads a whole input; also returns the pieces' sizes (to show that it streams). */
async function readAll(path: string, opts: Parameters<typeof openInput>[1] = {}): Promise<{ data: Uint8Array; kind: InputKind; pieces: number; largest: number }> {
  const { stream, kind } = await openInput(path, opts);
  const parts: Uint8Array[] = [];
  let largest = 0;
  for await (const c of stream) {
    parts.push(c);
    largest = Math.max(largest, c.length);
  }
  return { data: new Uint8Array(Buffer.concat(parts)), kind, pieces: parts.length, largest };
}

/** Reads until the stream fails; returns what came before the error and the error. */
async function readUntilError(path: string, opts: Parameters<typeof openInput>[1] = {}): Promise<{ got: Uint8Array; error: unknown }> {
  const parts: Uint8Array[] = [];
  try {
    const { stream } = await openInput(path, opts);
    for await (const c of stream) parts.push(c);
  } catch (error) {
    return { got: new Uint8Array(Buffer.concat(parts)), error };
  }
  throw new Error(`${path} was read without an error`);
}

const isPrefix = (part: Uint8Array, whole: Uint8Array): boolean => part.length <= whole.length && Buffer.from(whole.subarray(0, part.length)).equals(part);

// ------------------------------------------------------------------ format vectors

type EncVector = {
  soul: string;
  seed: string;
  salt: string;
  nonce_prefix: string;
  chunk_log2: number;
  soul_id: string;
  data_key: string;
  check_key: string;
  key_check: string;
  header: string;
  chunks: number;
  plaintext: string;
  plaintext_hex: string | null;
  ciphertext_hex: string | null;
  ciphertext_length: number;
  ciphertext_sha256: string;
};
const encVectors = (JSON.parse(readFileSync(join(import.meta.dir, "vectors", "encryption.json"), "utf8")) as { vectors: EncVector[] }).vectors;

function vectorPlaintext(v: EncVector): Uint8Array {
  if (v.plaintext_hex !== null) return unhex(v.plaintext_hex);
  if (v.plaintext.startsWith("2500 bytes")) return Uint8Array.from({ length: 2500 }, (_, i) => (i * 7) % 251);
  if (v.plaintext.startsWith("2048 bytes")) return Uint8Array.from({ length: 2048 }, (_, i) => i % 256);
  throw new Error(`unknown vector plaintext ${v.plaintext}`);
}

describe("encryption format (vectors from an independent implementation)", () => {
  test("there are vectors for empty, short, multi-chunk and exactly-two-chunk plaintexts", () => {
    expect(encVectors.map((v) => v.chunks)).toEqual([1, 1, 3, 2]);
  });

  for (const v of encVectors) {
    test(`${v.soul}, ${v.plaintext}: soul id, keys, key check, header and every ciphertext byte`, () => {
      const seed = unhex(v.seed);
      const salt = unhex(v.salt);
      expect(hex(soulId(seed))).toBe(v.soul_id);
      const keys = deriveKeys(seed, salt);
      expect(hex(keys.dataKey)).toBe(v.data_key);
      expect(hex(keys.checkKey)).toBe(v.check_key);
      const { header } = makeHeader(seed, { salt, noncePrefix: unhex(v.nonce_prefix), chunkLog2: v.chunk_log2 });
      expect(hex(header.bytes)).toBe(v.header);
      expect(hex(header.keyCheck)).toBe(v.key_check);

      const plain = vectorPlaintext(v);
      const ct = encryptBytes(seed, plain, { salt, noncePrefix: unhex(v.nonce_prefix), chunkLog2: v.chunk_log2 });
      expect(ct.length).toBe(v.ciphertext_length);
      expect(sha(ct)).toBe(v.ciphertext_sha256);
      if (v.ciphertext_hex !== null) expect(hex(ct)).toBe(v.ciphertext_hex);
      expect(hex(decryptBytes(seed, ct))).toBe(hex(plain));
    });
  }

  test("the vector souls are the ones in shared/vectors (alice's seed gives the header's soul id)", () => {
    expect(encVectors[0]!.seed).toBe(alice.seed_hex);
    expect(hex(soulId(aliceSeed))).not.toBe(hex(soulId(bobSeed)));
  });

  test("a fresh header has a random salt and nonce prefix: two encryptions of the same data differ", () => {
    const a = encryptBytes(aliceSeed, new Uint8Array(100));
    const b = encryptBytes(aliceSeed, new Uint8Array(100));
    expect(hex(a.subarray(12, 44))).not.toBe(hex(b.subarray(12, 44)));
    expect(hex(decryptBytes(aliceSeed, a))).toBe(hex(decryptBytes(aliceSeed, b)));
  });

  test("pieces of any size give the same ciphertext and plaintext (1-byte, odd, chunk-sized pieces)", () => {
    const v = encVectors[2]!;
    const plain = vectorPlaintext(v);
    const opts = { salt: unhex(v.salt), noncePrefix: unhex(v.nonce_prefix), chunkLog2: v.chunk_log2 };
    for (const step of [1, 7, 1024, 1025, 5000]) {
      const e = new Encryptor(unhex(v.seed), opts);
      const out: Uint8Array[] = [];
      for (let i = 0; i < plain.length; i += step) out.push(...e.push(plain.subarray(i, i + step)));
      out.push(...e.finish());
      const ct = Buffer.concat(out);
      expect(sha(ct)).toBe(v.ciphertext_sha256);
      const d = new Decryptor(() => ({ seed: unhex(v.seed) }));
      const back: Uint8Array[] = [];
      for (let i = 0; i < ct.length; i += step) back.push(...d.push(ct.subarray(i, i + step)));
      back.push(...d.finish());
      expect(hex(Buffer.concat(back))).toBe(hex(plain));
    }
  });

  test("TransformStreams both ways", async () => {
    const plain = eventLines(3 << 20, 7);
    const enc = new Blob([plain as Uint8Array<ArrayBuffer>]).stream().pipeThrough(encryptStream(aliceSeed, { chunkLog2: 16 }));
    const dec = enc.pipeThrough(decryptStream(aliceSoul));
    const back = new Uint8Array(await new Response(dec).arrayBuffer());
    expect(back.length).toBe(plain.length);
    expect(sha(back)).toBe(sha(plain));
  });
});

// ------------------------------------------------------------------ tampering (small chunks: many of them)

describe("a damaged encrypted backup is an error naming what was detected, never garbage", () => {
  const plain = eventLines(10 * 1024 + 300, 3); // 11 chunks of 1 KiB, the last one short
  const S = 1024 + TAG_LENGTH;
  const good = encryptBytes(aliceSeed, plain, { chunkLog2: 10 });
  const chunkAt = (i: number) => HEADER_LENGTH + i * S;
  let n = 0;

  /** `soul: null` means no soul at all. */
  async function damaged(bytes: Uint8Array, soul: (() => { seed: Uint8Array } | undefined) | null = aliceSoul) {
    const path = join(dir, `damaged-${++n}.jsonl`);
    writeFileSync(path, bytes);
    const { got, error } = await readUntilError(path, soul === null ? {} : { soul });
    expect(isPrefix(got, plain)).toBe(true); // what was delivered before the error is genuine
    expect(error).toBeInstanceOf(EncryptedInputError);
    expect((error as NaraError).exitCode).toBe(ExitCode.usage);
    expect((error as NaraError).hint).toBeTruthy();
    return error as EncryptedInputError;
  }

  test("the intact file reads back whole", async () => {
    const path = join(dir, "intact.enc");
    writeFileSync(path, good);
    const r = await readAll(path, { soul: aliceSoul });
    expect(r.kind).toEqual({ compression: "none", encrypted: true });
    expect(sha(r.data)).toBe(sha(plain));
  });

  test("one changed byte in a chunk: that chunk fails authentication", async () => {
    const bad = good.slice();
    bad[chunkAt(4) + 100] ^= 0x01;
    const e = await damaged(bad);
    expect(e.kind).toBe("chunk");
    expect(e.chunk).toBe(4);
    expect(e.message).toContain("chunk 4");
    expect(e.message).toContain("fails authentication");
  });

  test("one changed byte in the last (short) chunk's tag", async () => {
    const bad = good.slice();
    bad[bad.length - 1] ^= 0x80;
    const e = await damaged(bad);
    expect(e.chunk).toBe(10);
    expect(e.message).toMatch(/last chunk \(chunk 10/);
  });

  test("cut in the middle of a chunk", async () => {
    const e = await damaged(good.subarray(0, chunkAt(6) + 500));
    expect(e.kind).toBe("truncated");
    expect(e.chunk).toBe(6);
    expect(e.message).toMatch(/cut short/);
  });

  test("cut exactly at a chunk boundary (the final chunk dropped whole)", async () => {
    const e = await damaged(good.subarray(0, chunkAt(10)));
    expect(e.kind).toBe("truncated");
    expect(e.message).toMatch(/exactly at a chunk boundary.*final chunk is missing/);
  });

  test("cut inside the last chunk's tag, inside the header, right after the header", async () => {
    expect((await damaged(good.subarray(0, good.length - 1))).kind).toBe("truncated");
    expect((await damaged(good.subarray(0, chunkAt(10) + 5))).message).toMatch(/only 5 byte/);
    expect((await damaged(good.subarray(0, 40))).message).toMatch(/inside the encryption header/);
    expect((await damaged(good.subarray(0, HEADER_LENGTH))).message).toMatch(/nothing follows its encryption header/);
  });

  test("two chunks swapped", async () => {
    const bad = good.slice();
    bad.set(good.subarray(chunkAt(3), chunkAt(4)), chunkAt(2));
    bad.set(good.subarray(chunkAt(2), chunkAt(3)), chunkAt(3));
    const e = await damaged(bad);
    expect(e.kind).toBe("reordered");
    expect(e.chunk).toBe(2);
    expect(e.message).toMatch(/chunk 2 is out of place \(it is chunk 3/);
  });

  test("a chunk removed from the middle", async () => {
    const bad = Buffer.concat([good.subarray(0, chunkAt(5)), good.subarray(chunkAt(6))]);
    const e = await damaged(bad);
    expect(e.kind).toBe("reordered");
    expect(e.message).toMatch(/chunk 5 is out of place \(it is chunk 6/);
  });

  test("data appended after the final chunk", async () => {
    const short = encryptBytes(aliceSeed, plain.subarray(0, 2048), { chunkLog2: 10 }); // final chunk is full-size
    const e = await damaged(Buffer.concat([short, good.subarray(HEADER_LENGTH, chunkAt(1))]));
    expect(e.kind).toBe("trailing");
    expect(e.hint).toMatch(/>>/);
  });

  test("the header's salt changed: the header is reported, not the soul", async () => {
    const bad = good.slice();
    bad[20] ^= 0x01;
    const e = await damaged(bad);
    expect(e.kind).toBe("header");
    expect(e.message).toMatch(/header .* was changed/);
  });

  test("the header's nonce prefix or chunk size changed", async () => {
    const bad = good.slice();
    bad[30] ^= 0x01;
    expect((await damaged(bad)).kind).toBe("header");
    const big = good.slice();
    big[9] = 30; // 1 GiB chunks: refused before anything is allocated
    expect((await damaged(big)).message).toMatch(/impossible chunk size/);
    const v2 = good.slice();
    v2[8] = 2;
    expect((await damaged(v2)).kind).toBe("version");
  });

  test("a wrong soul (bob's for alice's backup): 'encrypted with another soul', at once", async () => {
    const e = await damaged(good, () => ({ seed: bobSeed }));
    expect(e.kind).toBe("wrong_soul");
    expect(e.message).toContain("this backup was encrypted with another soul");
  });

  test("no soul: exit 2, says it is encrypted and how to give the soul", async () => {
    const e = await damaged(good, null);
    expect(e.kind).toBe("no_soul");
    expect(e.message).toMatch(/is encrypted/);
    expect(e.hint).toMatch(/NARA_SOUL/);
    expect(e.hint).toMatch(/--soul-file/);
    const other = await damaged(good, () => undefined);
    expect(other.kind).toBe("no_soul");
  });

  test("the wrong-soul advice can be replaced (restore names --backup-soul-file)", async () => {
    const path = join(dir, "hint.enc");
    writeFileSync(path, good);
    const { error } = await readUntilError(path, { soul: () => ({ seed: bobSeed }), soulHint: "use --backup-soul-file" });
    expect((error as NaraError).hint).toBe("use --backup-soul-file");
  });
});

// ------------------------------------------------------------------ openOutput -> openInput

describe("openOutput -> openInput round trips", () => {
  // Several compression blocks and encryption chunks.
  const data = eventLines(9 * 1024 * 1024 + 12345, 11);

  const cases: { ext: string; compression: Compression }[] = [
    { ext: "jsonl", compression: "none" },
    { ext: "jsonl.zst", compression: "zstd" },
    { ext: "jsonl.gz", compression: "gzip" },
  ];
  for (const { ext, compression } of cases) {
    for (const encrypted of [false, true]) {
      test(`${ext}${encrypted ? " encrypted" : ""}: byte-identical, read as a stream`, async () => {
        const path = join(dir, `rt-${encrypted ? "enc-" : ""}backup.${ext}`);
        await writeThrough(path, data, encrypted ? { encryptSeed: aliceSeed } : {});
        const raw = readFileSync(path);
        const magic = hex(raw.subarray(0, 4));
        if (encrypted) expect(raw.subarray(0, 8).toString("latin1")).toBe("NARABKE1");
        else if (compression === "zstd") expect(magic).toBe("28b52ffd");
        else if (compression === "gzip") expect(magic.slice(0, 4)).toBe("1f8b");
        else expect(raw.equals(data)).toBe(true);
        if (compression !== "none") expect(raw.length).toBeLessThan(data.length * 0.7);
        const r = await readAll(path, { soul: aliceSoul });
        expect(r.kind).toEqual({ compression, encrypted });
        expect(r.data.length).toBe(data.length);
        expect(sha(r.data)).toBe(sha(data));
        // A stream, not one buffer: many pieces, none near the size of the whole.
        expect(r.pieces).toBeGreaterThan(4);
        expect(r.largest).toBeLessThanOrEqual(BLOCK_SIZE);
        expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
      });
    }
  }

  test("the format is found by its first bytes, not by the name", async () => {
    const zstdNamedPlain = join(dir, "looks-plain.jsonl");
    await writeThrough(zstdNamedPlain, data.subarray(0, 100_000), { compress: "zstd" });
    expect((await readAll(zstdNamedPlain)).kind.compression).toBe("zstd");
    const plainNamedGz = join(dir, "looks-compressed.gz");
    await writeThrough(plainNamedGz, data.subarray(0, 100_000), { compress: "none" });
    const r = await readAll(plainNamedGz);
    expect(r.kind).toEqual({ compression: "none", encrypted: false });
    expect(sha(r.data)).toBe(sha(data.subarray(0, 100_000)));
  });

  test("compression by extension (looking through .enc), overridden by compress", () => {
    expect(compressionForPath("b.jsonl.zst")).toBe("zstd");
    expect(compressionForPath("b.jsonl.ZSTD")).toBe("zstd");
    expect(compressionForPath("b.jsonl.gz")).toBe("gzip");
    expect(compressionForPath("b.jsonl.zst.enc")).toBe("zstd");
    expect(compressionForPath("b.jsonl")).toBe("none");
    expect(compressionForPath("b.enc")).toBe("none");
    const o = openOutput(join(dir, "override.jsonl.zst"), { compress: "gzip" });
    expect(o.compression).toBe("gzip");
    o.abort();
  });

  test("an empty output is still a valid file of its kind", async () => {
    for (const [ext, opts] of [["zst", {}], ["gz", {}], ["enc", { encryptSeed: aliceSeed }], ["zst.enc", { encryptSeed: aliceSeed }]] as const) {
      const path = join(dir, `empty.jsonl.${ext}`);
      const o = openOutput(path, opts);
      await o.commit();
      const r = await readAll(path, { soul: aliceSoul });
      expect(r.data.length).toBe(0);
      expect(r.kind.encrypted).toBe(ext.endsWith("enc"));
    }
  });

  test("abort removes the temporary file at once; nothing appears under the final name", async () => {
    const path = join(dir, "aborted.jsonl.zst");
    const o = openOutput(path, { encryptSeed: aliceSeed });
    await o.write(data.subarray(0, 5 * 1024 * 1024));
    expect(readdirSync(dir).some((f) => f.startsWith(".aborted.jsonl.zst."))).toBe(true);
    o.abort();
    expect(readdirSync(dir).some((f) => f.startsWith(".aborted.jsonl.zst."))).toBe(false);
    expect(existsSync(path)).toBe(false);
    await expect(o.write(data.subarray(0, 10))).rejects.toThrow(/aborted/);
  });

  test("levels are checked", () => {
    expect(() => openOutput(join(dir, "lvl.jsonl.zst"), { level: 40 })).toThrow(/out of range/);
    expect(readdirSync(dir).filter((f) => f.startsWith(".lvl."))).toEqual([]);
  });

  test("a missing file, a directory, xz: usage errors with advice", async () => {
    await expect(openInput(join(dir, "nope.jsonl"))).rejects.toThrow(/no such file/);
    await expect(openInput(dir)).rejects.toThrow(/is a directory/);
    const xz = join(dir, "b.jsonl.xz");
    writeFileSync(xz, new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0, 4, 0xe6]));
    const err = await openInput(xz).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NaraError);
    expect((err as NaraError).exitCode).toBe(ExitCode.usage);
    expect((err as NaraError).hint).toMatch(/xzcat/);
  });

  test("an empty or tiny plain input is plain", async () => {
    const empty = join(dir, "empty.jsonl");
    writeFileSync(empty, "");
    expect((await readAll(empty)).data.length).toBe(0);
    const tiny = join(dir, "tiny.jsonl");
    writeFileSync(tiny, "{}");
    expect(new TextDecoder().decode((await readAll(tiny)).data)).toBe("{}");
  });

  test("onRead counts the raw bytes", async () => {
    const path = join(dir, "rt-enc-backup.jsonl.zst");
    let raw = 0;
    await readAll(path, { soul: aliceSoul, onRead: (n) => (raw += n) });
    expect(raw).toBe(readFileSync(path).length);
  });
});

describe("damaged compressed backups", () => {
  const data = eventLines(6 * 1024 * 1024, 5);
  const zst = join(dir, "dmg.jsonl.zst");
  const gz = join(dir, "dmg.jsonl.gz");
  const enczst = join(dir, "dmg-enc.jsonl.zst");
  beforeAll(async () => {
    await writeThrough(zst, data);
    await writeThrough(gz, data);
    await writeThrough(enczst, data, { encryptSeed: aliceSeed });
  });

  const variant = (src: string, name: string, f: (b: Buffer) => Buffer) => {
    const p = join(dir, name);
    writeFileSync(p, f(readFileSync(src)));
    return p;
  };

  test("zstd cut short: 'truncated'", async () => {
    const { got, error } = await readUntilError(variant(zst, "cut.zst", (b) => b.subarray(0, b.length - 1000)));
    expect((error as NaraError).message).toMatch(/truncated/);
    expect((error as NaraError).exitCode).toBe(ExitCode.usage);
    expect(isPrefix(got, data)).toBe(true);
  });

  test("zstd with a changed byte: the frame checksum catches it", async () => {
    const { error } = await readUntilError(variant(zst, "flip.zst", (b) => {
      const c = Buffer.from(b);
      c[5000] ^= 0x01;
      return c;
    }));
    expect(error).toBeInstanceOf(NaraError);
    expect((error as NaraError).message).toMatch(/damaged|truncated/);
  });

  test("gzip cut short or changed", async () => {
    const cut = await readUntilError(variant(gz, "cut.gz", (b) => b.subarray(0, b.length - 1000)));
    expect((cut.error as NaraError).message).toMatch(/truncated/);
    const flip = await readUntilError(variant(gz, "flip.gz", (b) => {
      const c = Buffer.from(b);
      c[b.length >> 1] ^= 0x01;
      return c;
    }));
    expect(flip.error).toBeInstanceOf(NaraError);
  });

  test("encrypted zstd: the decryption error comes through the decompressor unchanged", async () => {
    const chunk1 = HEADER_LENGTH + (1 << 20) + TAG_LENGTH + 10;
    const flipped = await readUntilError(variant(enczst, "flip-enc.zst", (b) => {
      const c = Buffer.from(b);
      c[chunk1] ^= 0x01;
      return c;
    }), { soul: aliceSoul });
    expect(flipped.error).toBeInstanceOf(EncryptedInputError);
    expect((flipped.error as EncryptedInputError).chunk).toBe(1);
    expect(isPrefix(flipped.got, data)).toBe(true);
    const boundary = HEADER_LENGTH + 2 * ((1 << 20) + TAG_LENGTH);
    const cut = await readUntilError(variant(enczst, "cut-enc.zst", (b) => b.subarray(0, boundary)), { soul: aliceSoul });
    expect((cut.error as EncryptedInputError).kind).toBe("truncated");
    const wrong = await readUntilError(enczst, { soul: () => ({ seed: bobSeed }) });
    expect((wrong.error as EncryptedInputError).kind).toBe("wrong_soul");
    expect(wrong.got.length).toBe(0);
  });
});

// ------------------------------------------------------------------ standard tools

const which = (tool: string): boolean => Bun.spawnSync(["which", tool]).exitCode === 0;

describe("the standard tools read what we write, and we read what they write", () => {
  const data = eventLines(9 * 1024 * 1024, 13);
  for (const [tool, ext, compress] of [["zstd", "zst", "zstd"], ["gzip", "gz", "gzip"]] as const) {
    test.skipIf(!which(tool))(`${tool} -d on our multi-block .${ext}; ${tool} output read by openInput`, async () => {
      const ours = join(dir, `tools.jsonl.${ext}`);
      await writeThrough(ours, data);
      const d = Bun.spawnSync([tool, "-d", "-c", ours], { stdout: "pipe", stderr: "pipe" });
      expect(d.stderr.toString()).toBe("");
      expect(d.exitCode).toBe(0);
      expect(d.stdout.length).toBe(data.length);
      expect(sha(new Uint8Array(d.stdout))).toBe(sha(data));

      const plain = join(dir, `tools-${tool}.jsonl`);
      writeFileSync(plain, data);
      const c = Bun.spawnSync([tool, "-c", plain], { stdout: "pipe" });
      expect(c.exitCode).toBe(0);
      const theirs = join(dir, `tools-theirs.${ext}`);
      writeFileSync(theirs, c.stdout);
      const r = await readAll(theirs);
      expect(r.kind.compression).toBe(compress);
      expect(sha(r.data)).toBe(sha(data));
    });
  }
});

// ------------------------------------------------------------------ seed loading

describe("loadDecryptSoul", () => {
  test("NARA_BACKUP_SOUL first, then the file; none gives undefined; a bad soul is a usage error", () => {
    expect(loadDecryptSoul({ envName: "NARA_BACKUP_SOUL", fileFlag: "--backup-soul-file", env: {} })).toBeUndefined();
    const fromEnv = loadDecryptSoul({ envName: "NARA_BACKUP_SOUL", fileFlag: "--backup-soul-file", env: { NARA_BACKUP_SOUL: ` ${bob.soul}\n` } });
    expect(hex(fromEnv!()!.seed)).toBe(bob.seed_hex);
    const file = join(dir, "owner.soul");
    writeFileSync(file, `${alice.soul}\n`, { mode: 0o600 });
    const fromFile = loadDecryptSoul({ envName: "NARA_BACKUP_SOUL", fileFlag: "--backup-soul-file", file, env: {} });
    expect(hex(fromFile!()!.seed)).toBe(alice.seed_hex);
    let err: unknown;
    try {
      loadDecryptSoul({ envName: "NARA_BACKUP_SOUL", fileFlag: "--backup-soul-file", env: { NARA_BACKUP_SOUL: "not-a-soul-0OIl" } });
    } catch (e) {
      err = e;
    }
    expect((err as NaraError).exitCode).toBe(ExitCode.usage);
    expect((err as NaraError).message).toContain("NARA_BACKUP_SOUL");
    expect((err as NaraError).message).not.toContain("not-a-soul");
  });
});

// ------------------------------------------------------------------ command line round trip

describe("dump-events --encrypt -o x.jsonl.zst, then restore-events", () => {
  let mesh: SimMesh;
  beforeAll(async () => {
    mesh = await startMesh({ peers: 3, events: 1500, seed: 77 });
  });
  afterAll(() => mesh.stop());

  const expected = () =>
    [...mesh.allEvents]
      .sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1))
      .map((e) => `${e.raw}\n`)
      .join("");

  /** `stdin`: a file given as stdin (a regular file), or bytes written into a pipe in pieces, as a pipe delivers them
   * (the restore spools them raw and decrypts each pass). */
  const cli = (args: string[], env: Record<string, string>, stdin?: string | Uint8Array) =>
    runCli(args, { cwd: dir, env, ...(typeof stdin === "string" ? { stdin: Bun.file(stdin) } : { pipe: stdin, pipeChunk: 65_521 }) });

  const freshPeer = (name: string, seed: number): SimPeer =>
    startPeer({ nara: makeNara(name, sha256(`io-fresh:${name}:${seed}`)), knownKeys: { [mesh.client.name]: mesh.client.publicKey } });
  const ids = (p: SimPeer) => p.events.list().map((e) => e.id).sort();

  test("the events come back the same, decrypted with the owner's soul (--backup-soul-file)", async () => {
    const backup = join(dir, "cli.jsonl.zst");
    const d = await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "-o", backup, "--encrypt"], { NARA_SOUL: mesh.client.soul });
    expect(d.stderr).not.toContain(mesh.client.soul);
    expect(d.code).toBe(0);
    const raw = readFileSync(backup);
    expect(raw.subarray(0, 8).toString("latin1")).toBe("NARABKE1");
    expect(raw.includes(Buffer.from(mesh.allEvents[0]!.id))).toBe(false);
    const r = await readAll(backup, { soul: () => ({ seed: mesh.client.identity.seedBytes() }) });
    expect(r.kind).toEqual({ compression: "zstd", encrypted: true });
    expect(new TextDecoder().decode(r.data)).toBe(expected());

    // The target nara has its own soul: the owner's soul decrypts, the target's signs.
    const target = freshPeer("restored", 1);
    try {
      const soulFile = join(dir, "owner-soul");
      writeFileSync(soulFile, mesh.client.soul, { mode: 0o600 });
      const res = await cli(["restore-events", "--nara-url", target.url, "--name", target.name, "--backup-soul-file", soulFile, backup], { NARA_SOUL: target.nara.soul });
      expect(res.stderr).toContain("Successfully imported");
      expect(res.code).toBe(0);
      expect(ids(target)).toEqual(mesh.allEvents.map((e) => e.id).sort());

      // Without the owner's soul: the target's own soul is tried, and the advice names --backup-soul-file.
      const wrong = await cli(["restore-events", "--nara-url", target.url, backup], { NARA_SOUL: target.nara.soul });
      expect(wrong.code).toBe(ExitCode.usage);
      expect(wrong.stderr).toContain("encrypted with another soul");
      expect(wrong.stderr).toContain("--backup-soul-file");
      expect(wrong.stderr).not.toContain(target.nara.soul);
    } finally {
      await target.stop();
    }
  }, 60_000);

  test("a nara restoring its own backup needs no second soul; stdin (a file, a pipe); NARA_BACKUP_SOUL", async () => {
    const backup = join(dir, "cli-own.jsonl.gz");
    const d = await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "-o", backup, "--encrypt"], { NARA_SOUL: mesh.client.soul });
    expect(d.code).toBe(0);
    // The same nara (name and soul) reinstalled: an empty ledger.
    const self = startPeer({ nara: mesh.client, knownKeys: {} });
    try {
      const res = await cli(["restore-events", "--nara-url", self.url, "--name", mesh.client.name], { NARA_SOUL: mesh.client.soul }, backup);
      expect(res.stderr).toContain("Successfully imported");
      expect(res.code).toBe(0);
      expect(ids(self)).toEqual(mesh.allEvents.map((e) => e.id).sort());
    } finally {
      await self.stop();
    }
    const other = freshPeer("restored-env", 2);
    try {
      const res = await cli(["restore-events", "--nara-url", other.url, "-"], { NARA_SOUL: other.nara.soul, NARA_BACKUP_SOUL: mesh.client.soul }, readFileSync(backup));
      expect(res.stderr).toContain("Successfully imported");
      expect(res.code).toBe(0);
      expect(ids(other)).toEqual(mesh.allEvents.map((e) => e.id).sort());
    } finally {
      await other.stop();
    }
  }, 60_000);

  test("--compress zstd to stdout is a zstd stream; --compress none overrides .gz", async () => {
    const d = await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "--compress", "zstd"], { NARA_SOUL: mesh.client.soul });
    expect(d.code).toBe(0);
    expect(hex(d.raw.subarray(0, 4))).toBe("28b52ffd");
    const p = join(dir, "stdout.zst");
    writeFileSync(p, d.raw);
    expect(new TextDecoder().decode((await readAll(p)).data)).toBe(expected());

    const plainGz = join(dir, "plain.jsonl.gz");
    const n = await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "-o", plainGz, "--compress", "none"], { NARA_SOUL: mesh.client.soul });
    expect(n.code).toBe(0);
    expect(readFileSync(plainGz, "utf8")).toBe(expected());

    const bad = await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "--compress", "lz4"], { NARA_SOUL: mesh.client.soul });
    expect(bad.code).toBe(ExitCode.usage);
    expect(bad.stderr).toMatch(/zstd, gzip or none/);
  }, 60_000);

  test("--ids-from reads an encrypted, compressed earlier backup", async () => {
    const backup = join(dir, "ids-from.jsonl.zst");
    const first = await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "-o", backup, "--encrypt"], { NARA_SOUL: mesh.client.soul });
    expect(first.code).toBe(0);
    const d = await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "--ids-from", backup], { NARA_SOUL: mesh.client.soul });
    expect(d.code).toBe(0);
    expect(d.raw.length).toBe(0);
  }, 60_000);
});
