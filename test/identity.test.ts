// Expectations come from Go-computed vectors (/work/shared/vectors/souls.json), never from our own output.
import { describe, expect, test } from "bun:test";
import { base58Decode, base58Encode } from "../src/identity/base58.ts";
import { SoulError, bondTag, parseSoul, type SoulErrorClass } from "../src/identity/soul.ts";

type ValidSoul = {
  name: string;
  seed_hex: string;
  tag_hex: string;
  soul_hex: string;
  soul: string;
  soul_length_chars: number;
  public_key: string;
  public_key_hex: string;
  nara_id: string;
  nara_id_sha256_hex: string;
};
type InvalidSoul = { soul: string; name: string; error_class: SoulErrorClass; decoded_length: number; note: string };

const vectors = (await Bun.file(new URL("../../shared/vectors/souls.json", import.meta.url)).json()) as {
  valid: ValidSoul[];
  invalid: InvalidSoul[];
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

describe("valid souls (souls.json)", () => {
  for (const v of vectors.valid) {
    test(`${v.name}: public key, nara ID, tag`, () => {
      const id = parseSoul(v.soul, v.name);
      expect(id.name).toBe(v.name);
      expect(id.publicKey).toBe(v.public_key);
      expect(hex(Buffer.from(id.publicKey, "base64"))).toBe(v.public_key_hex);
      expect(id.naraId).toBe(v.nara_id);
      expect(hex(base58Decode(id.naraId)!)).toBe(v.nara_id_sha256_hex);
      expect(hex(id.seedBytes())).toBe(v.seed_hex);
      expect(hex(bondTag(fromHex(v.seed_hex), v.name))).toBe(v.tag_hex);
    });

    test(`${v.name}: Base58 both ways`, () => {
      expect(v.soul.length).toBe(v.soul_length_chars);
      expect(hex(base58Decode(v.soul)!)).toBe(v.soul_hex);
      expect(base58Encode(fromHex(v.soul_hex))).toBe(v.soul);
    });
  }
});

describe("invalid souls (souls.json)", () => {
  for (const v of vectors.invalid) {
    test(`${v.error_class}: ${v.note}`, () => {
      let caught: unknown;
      try {
        parseSoul(v.soul, v.name);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(SoulError);
      const err = caught as SoulError;
      expect(err.errorClass).toBe(v.error_class);
      if (v.error_class === "wrong_length") expect(err.message).toContain(`${v.decoded_length} bytes`);
      const trimmed = v.soul.trim();
      if (trimmed.length > 0) {
        for (const text of [err.message, err.hint ?? "", String(err), Bun.inspect(err)]) {
          expect(text).not.toContain(trimmed);
        }
      }
    });
  }

  test("every error class of the vectors is covered", () => {
    const classes = new Set(vectors.invalid.map((v) => v.error_class));
    expect([...classes].sort()).toEqual(["bad_base58_char", "bond_mismatch", "wrong_length"]);
  });
});

describe("the soul never leaks from an Identity", () => {
  for (const v of vectors.valid) {
    test(v.name, () => {
      const id = parseSoul(v.soul, v.name);
      const seedB64 = Buffer.from(v.seed_hex, "hex").toString("base64");
      const views = [JSON.stringify(id), Bun.inspect(id), String(id), Bun.inspect(id, { depth: 10 }), JSON.stringify(Object.entries(id))];
      for (const text of views) {
        expect(text).not.toContain(v.soul);
        expect(text).not.toContain(v.seed_hex);
        expect(text).not.toContain(v.soul_hex);
        expect(text).not.toContain(seedB64);
      }
      expect(JSON.parse(JSON.stringify(id))).toEqual({ name: v.name, naraId: v.nara_id, publicKey: v.public_key });
    });
  }
});
