import { hmac } from "@noble/hashes/hmac.js";
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { NaraError, ExitCode } from "../errors.ts";
import { base58Decode, base58Encode } from "./base58.ts";
import type { KeyObject } from "node:crypto";
import { edPublicKey, edSignWith, edSigningKey, toBase64, utf8 } from "./crypto.ts";

export type SoulErrorClass = "wrong_length" | "bad_base58_char" | "bond_mismatch";

export class SoulError extends NaraError {
  constructor(
    readonly errorClass: SoulErrorClass,
    message: string,
    hint: string,
  ) {
    super(message, { hint, exitCode: ExitCode.usage });
    this.name = "SoulError";
  }
}

/** The bond tag: HMAC-SHA256(seed, "nara:name:v2:" + name)[0:8]. */
export const bondTag = (seed: Uint8Array, name: string): Uint8Array =>
  hmac(nobleSha256, seed, utf8(`nara:name:v2:${name}`)).subarray(0, 8);

/**
 * A nara identity: a name and the keypair of its soul. The seed lives in a
 * private field so that logging or serialising an Identity cannot leak it.
 */
export class Identity {
  readonly #seed: Uint8Array;
  readonly #signingKey: KeyObject;
  #publicKey: string | undefined;
  readonly name: string;
  /** Base58(SHA256(soul bytes || name)). */
  readonly naraId: string;

  constructor(name: string, soulBytes: Uint8Array) {
    this.name = name;
    this.#seed = soulBytes.slice(0, 32);
    this.#signingKey = edSigningKey(this.#seed);
    const idInput = new Uint8Array(soulBytes.length + utf8(name).length);
    idInput.set(soulBytes);
    idInput.set(utf8(name), soulBytes.length);
    this.naraId = base58Encode(nobleSha256(idInput));
  }

  /** Base64 of the 32-byte Ed25519 public key; derived on first use (a fetch worker only signs). */
  get publicKey(): string {
    this.#publicKey ??= toBase64(edPublicKey(this.#seed));
    return this.#publicKey;
  }

  /** Base64 Ed25519 signature of the message (UTF-8 when a string). */
  sign(message: Uint8Array | string): string {
    return toBase64(edSignWith(typeof message === "string" ? utf8(message) : message, this.#signingKey));
  }

  /** Raw seed, for key derivation (e.g. backup encryption). Never print it. */
  seedBytes(): Uint8Array {
    return this.#seed.slice();
  }

  toJSON(): object {
    return { name: this.name, naraId: this.naraId, publicKey: this.publicKey };
  }
}

/**
 * The 40 bytes of a soul (seed || bond tag), or a SoulError. Strict like
 * nara: surrounding whitespace is a bad character (vectors souls.json), so
 * callers reading a file or variable trim first (load.ts). Messages never
 * contain the soul itself.
 */
export function decodeSoul(soul: string): Uint8Array {
  const bytes = base58Decode(soul);
  if (bytes === null) {
    if (/\s/.test(soul)) {
      throw new SoulError(
        "bad_base58_char",
        "the soul contains whitespace (a space or line break around it?)",
        "remove the spaces and line breaks around the soul",
      );
    }
    throw new SoulError(
      "bad_base58_char",
      "the soul is not valid Base58 (it contains a character outside the Bitcoin alphabet)",
      "copy the soul again: it is 54–55 characters without 0, O, I or l",
    );
  }
  if (bytes.length !== 40) {
    throw new SoulError(
      "wrong_length",
      `the soul decodes to ${bytes.length} bytes, a soul has 40`,
      "a soul is 54–55 Base58 characters (the product documentation's 44 is wrong); check that it was not cut or padded",
    );
  }
  return bytes;
}

/** Parses a soul and checks that it is bonded to `name`, before anything touches the network. */
export function parseSoul(soul: string, name: string): Identity {
  const bytes = decodeSoul(soul);
  const tag = bondTag(bytes.subarray(0, 32), name);
  if (!tag.every((b, i) => b === bytes[32 + i])) {
    throw new SoulError(
      "bond_mismatch",
      `the soul is not bonded to the name "${name}"`,
      "a soul belongs to exactly one nara name: pass the name this soul was made for",
    );
  }
  return new Identity(name, bytes);
}
