import { createPrivateKey, createPublicKey, sign as nativeSign, verify as nativeVerify, type KeyObject } from "node:crypto";

const encoder = new TextEncoder();
export const utf8 = (s: string): Uint8Array => encoder.encode(s);

/** SHA-256 with Bun's native hasher: page bodies are megabytes, and this is on the hot path. */
export function sha256(data: Uint8Array | string): Uint8Array {
  return new Bun.CryptoHasher("sha256").update(data).digest() as Uint8Array;
}

export const toBase64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64");

export function fromBase64(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  return new Uint8Array(Buffer.from(text, "base64"));
}

/**
 * noble's public key for a seed. Loaded on first use: signing and verifying are native, and most runs never
 * show their own key; noble, SHA-512 and the base point's table are ~30 ms of CPU, cold.
 */
export function edPublicKey(seed: Uint8Array): Uint8Array {
  const ed = require("@noble/ed25519") as typeof import("@noble/ed25519");
  // noble/ed25519 ships async-only; giving it SHA-512 enables the sync API.
  ed.hashes.sha512 ??= (require("@noble/hashes/sha2.js") as typeof import("@noble/hashes/sha2.js")).sha512;
  return ed.getPublicKey(seed);
}

/** DER prefix that turns a 32-byte Ed25519 seed into a PKCS#8 private key. */
const PKCS8_ED25519 = Buffer.from("302e020100300506032b657004220420", "hex");

/**
 * A native (BoringSSL) Ed25519 signing key for a seed. Every page request
 * and import batch is signed: noble's pure-JS sign costs ~0.3 ms warm and
 * ~20 ms cold per thread, the native one ~0.01 ms. Ed25519 is
 * deterministic, so both give the same bytes (checked against the vectors).
 */
export const edSigningKey = (seed: Uint8Array): KeyObject =>
  createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: "der", type: "pkcs8" });

export const edSignWith = (message: Uint8Array, key: KeyObject): Uint8Array => new Uint8Array(nativeSign(null, message, key));

/** DER prefix that turns 32 raw Ed25519 public key bytes into an SPKI structure. */
const SPKI_ED25519 = Buffer.from("302a300506032b6570032100", "hex");
const keyObjects = new Map<string, KeyObject>();

/** A native Ed25519 public key from its 32 raw bytes; null when they are not one. */
export function ed25519PublicKey(raw: Uint8Array): KeyObject | null {
  if (raw.length !== 32) return null;
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_ED25519, raw]), format: "der", type: "spki" });
  } catch {
    return null;
  }
}

function keyObject(raw: Uint8Array): KeyObject | null {
  const cacheKey = toBase64(raw);
  let k = keyObjects.get(cacheKey);
  if (!k) {
    k = ed25519PublicKey(raw) ?? undefined;
    if (k && keyObjects.size < 4096) keyObjects.set(cacheKey, k);
  }
  return k ?? null;
}

/** Native Ed25519 verification of a raw 64-byte signature with a prepared key; false on anything malformed. */
export function edVerifyRaw(signature: Uint8Array, message: Uint8Array, key: KeyObject | null): boolean {
  if (key === null || signature.length !== 64) return false;
  try {
    return nativeVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

/**
 * Verifies a Base64 signature with a Base64 or raw public key; false on any
 * malformed input. Verification runs natively (Bun's BoringSSL): it is on
 * the hot path (every page, every event of `verify`) and noble's pure-JS
 * verify costs ~2 ms; signing stays with noble, checked against the vectors.
 */
export function edVerify(signatureB64: string, message: Uint8Array, publicKey: Uint8Array | string): boolean {
  const sig = fromBase64(signatureB64);
  const key = typeof publicKey === "string" ? fromBase64(publicKey) : publicKey;
  if (!sig || !key) return false;
  return edVerifyRaw(sig, message, keyObject(key));
}
