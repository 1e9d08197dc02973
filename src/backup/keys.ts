/**
 * Public keys of emitters, for checking event signatures offline with the
 * native Ed25519 of src/identity/crypto.ts (checked against the Go vectors).
 *
 * Keys come from two places: `--keys FILE` (trusted: a key given there is the
 * only key accepted for that name) and the hey-there and chau events of the
 * backups being checked (learned: a backup verifies itself, which proves
 * that it is consistent, not who wrote it).
 */
import type { KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { usageError, unreadableFile } from "../errors.ts";
import { ed25519PublicKey, edVerifyRaw, fromBase64 } from "../identity/crypto.ts";

/** Decodes a Base64 signature as Go's StdEncoding does; null unless it is 64 bytes. */
export function decodeSignature(sigB64: string): Uint8Array | null {
  const sig = fromBase64(sigB64);
  return sig !== null && sig.length === 64 ? sig : null;
}

/** Decodes a Base64 public key; null unless it is 32 bytes. */
export function decodePublicKey(b64: string): Uint8Array | null {
  const raw = fromBase64(b64.trim());
  return raw !== null && raw.length === 32 ? raw : null;
}

/**
 * A keys file: either a JSON object `{"alice": "BASE64", …}` or lines
 * `alice=BASE64` (blank lines and `#` comments ignored). Returns
 * name -> Base64 key.
 */
export function parseKeysText(text: string, source: string): Map<string, string> {
  const out = new Map<string, string>();
  const body = text.replace(/^\uFEFF/, "");
  const bad = (where: string, why: string) =>
    usageError(`${source}${where}: ${why}`, 'a keys file holds lines "name=BASE64_PUBLIC_KEY" or one JSON object {"name": "BASE64_PUBLIC_KEY"}');
  if (body.trimStart().startsWith("{")) {
    let obj: unknown;
    try {
      obj = JSON.parse(body);
    } catch (err) {
      throw bad("", `not valid JSON (${(err as Error).message})`);
    }
    if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw bad("", "expected a JSON object");
    for (const [name, key] of Object.entries(obj as Record<string, unknown>)) {
      if (typeof key !== "string" || decodePublicKey(key) === null) throw bad(`: "${name}"`, "the key is not the Base64 of 32 bytes");
      out.set(name, key.trim());
    }
    return out;
  }
  const lines = body.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) return;
    const m = /^(.+?)\s*=\s*(\S+)$/.exec(line);
    if (!m) throw bad(`:${i + 1}`, 'expected "name=BASE64_PUBLIC_KEY"');
    // A key (44 characters, ending in "=") never holds "=" elsewhere, so a name may: split before the key.
    const whole = /^(.+?)\s*=\s*([A-Za-z0-9+/]{43}=)$/.exec(line);
    const name = (whole ? whole[1]! : m[1]!).trim();
    const key = whole ? whole[2]! : m[2]!;
    if (decodePublicKey(key) === null) throw bad(`:${i + 1}`, "the key is not the Base64 of 32 bytes");
    out.set(name, key);
  });
  return out;
}

export function loadKeysFile(path: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw unreadableFile(`the keys file ${path}`, err);
  }
  return parseKeysText(text, path);
}

export type LearnResult =
  /** A key this name did not have. */
  | "new"
  /** Already known for this name. */
  | "known"
  /** The name has a trusted key (--keys) and this one differs: ignored. */
  | "conflict"
  /** The name had another learned key: both are kept (a nara that changed its soul). */
  | "changed"
  /** Not the Base64 of 32 bytes, or empty. */
  | "invalid";

/**
 * Name -> public keys, each key numbered once (the numbers index the
 * verifier threads' key tables). A name has one key in the normal case; a
 * nara whose soul changed has several, and a signature is good when any of
 * them verifies it.
 */
export class KeyRing {
  /** Raw 32-byte keys by number. */
  readonly raw: Uint8Array[] = [];
  readonly #objects: (KeyObject | null)[] = [];
  readonly #byB64 = new Map<string, number>();
  readonly #byName = new Map<string, number[]>();
  readonly #trusted = new Set<string>();
  /** Called once for every new key number (to hand the key to verifier threads). */
  onNewKey?: (index: number, raw: Uint8Array) => void;

  get trustedNames(): number {
    return this.#trusted.size;
  }
  get names(): number {
    return this.#byName.size;
  }

  #index(b64: string, raw: Uint8Array): number {
    let k = this.#byB64.get(b64);
    if (k === undefined) {
      k = this.raw.length;
      this.raw.push(raw);
      this.#objects.push(ed25519PublicKey(raw));
      this.#byB64.set(b64, k);
      this.onNewKey?.(k, raw);
    }
    return k;
  }

  /** A key from --keys: the only one accepted for `name`. */
  addTrusted(name: string, b64: string): void {
    const raw = decodePublicKey(b64);
    if (raw === null) throw usageError(`the key of ${name} is not the Base64 of 32 bytes`);
    const k = this.#index(b64.trim(), raw);
    if (!this.#trusted.has(name)) {
      this.#trusted.add(name);
      this.#byName.set(name, []);
    }
    const list = this.#byName.get(name)!;
    if (!list.includes(k)) list.push(k);
  }

  /** A key announced in a hey-there or chau event. */
  learn(name: string, b64: string): LearnResult {
    if (name === "" || b64 === "") return "invalid";
    const known = this.#byB64.get(b64);
    const list = this.#byName.get(name);
    if (known !== undefined && list?.includes(known)) return "known";
    if (this.#trusted.has(name)) return "conflict";
    const raw = known !== undefined ? this.raw[known]! : decodePublicKey(b64);
    if (raw === null) return "invalid";
    const k = this.#index(b64, raw);
    if (list === undefined) {
      this.#byName.set(name, [k]);
      return "new";
    }
    list.push(k);
    return "changed";
  }

  /** Key numbers of `name`, undefined when none is known. */
  keysOf(name: string): readonly number[] | undefined {
    return this.#byName.get(name);
  }

  isTrusted(name: string): boolean {
    return this.#trusted.has(name);
  }

  object(index: number): KeyObject | null {
    return this.#objects[index] ?? null;
  }

  /** Does any key of `name` verify `signature` over `message`? */
  verifyAny(name: string, signature: Uint8Array, message: Uint8Array, skip = -1): boolean {
    for (const k of this.#byName.get(name) ?? []) {
      if (k !== skip && edVerifyRaw(signature, message, this.#objects[k]!)) return true;
    }
    return false;
  }
}
