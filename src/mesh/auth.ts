import { edVerify, sha256, toBase64, utf8 } from "../identity/crypto.ts";
import type { Identity } from "../identity/soul.ts";

export const MESH_PORT = 7433;
/** Receivers reject request timestamps further than this from their clock. */
export const AUTH_WINDOW_MS = 30_000;

export type MeshHeaders = {
  "X-Nara-Name": string;
  "X-Nara-Timestamp": string;
  "X-Nara-Signature": string;
};

export const requestMessage = (name: string, timestampMs: number, method: string, path: string): string =>
  `${name}${timestampMs}${method}${path}`;

/** Headers for one request; sign just before sending (a retry signs again). */
export function signRequest(id: Identity, method: string, path: string, nowMs = Date.now()): MeshHeaders {
  const pathOnly = path.split("?")[0]!;
  return {
    "X-Nara-Name": id.name,
    "X-Nara-Timestamp": String(nowMs),
    "X-Nara-Signature": id.sign(requestMessage(id.name, nowMs, method, pathOnly)),
  };
}

export const responseMessage = (name: string, timestampMs: number | string, body: Uint8Array): string =>
  `${name}${timestampMs}${toBase64(sha256(body))}`;

/** Headers a responder attaches to `body` (exact bytes, Go's trailing newline included). */
export function signResponse(id: Identity, body: Uint8Array, nowMs = Date.now()): MeshHeaders {
  return {
    "X-Nara-Name": id.name,
    "X-Nara-Timestamp": String(nowMs),
    "X-Nara-Signature": id.sign(responseMessage(id.name, nowMs, body)),
  };
}

export type HeaderSource = { get(name: string): string | null };

export type ResponseCheck =
  | { ok: true; name: string }
  | { ok: false; reason: "missing-headers" | "bad-signature" };

/** Proves a response body came from the holder of `publicKey`. */
export function verifyResponse(headers: HeaderSource, body: Uint8Array, publicKey: string): ResponseCheck {
  const name = headers.get("X-Nara-Name");
  const ts = headers.get("X-Nara-Timestamp");
  const sig = headers.get("X-Nara-Signature");
  if (!name || !ts || !sig) return { ok: false, reason: "missing-headers" };
  return edVerify(sig, utf8(responseMessage(name, ts, body)), publicKey)
    ? { ok: true, name }
    : { ok: false, reason: "bad-signature" };
}

export type RequestCheck =
  | { ok: true; name: string }
  | { ok: false; reason: "missing-headers" | "clock-skew" | "unknown-key" | "bad-signature" };

/** The receiver's side of mesh auth (used by the simulated peers). */
export function verifyRequest(
  headers: HeaderSource,
  method: string,
  path: string,
  keyOf: (name: string) => string | undefined,
  nowMs = Date.now(),
): RequestCheck {
  const name = headers.get("X-Nara-Name");
  const ts = headers.get("X-Nara-Timestamp");
  const sig = headers.get("X-Nara-Signature");
  if (!name || !ts || !sig) return { ok: false, reason: "missing-headers" };
  const tsMs = Number(ts);
  if (!/^-?\d+$/.test(ts) || Math.abs(nowMs - tsMs) > AUTH_WINDOW_MS) return { ok: false, reason: "clock-skew" };
  const key = keyOf(name);
  if (!key) return { ok: false, reason: "unknown-key" };
  const pathOnly = path.split("?")[0]!;
  return edVerify(sig, utf8(requestMessage(name, tsMs, method, pathOnly)), key)
    ? { ok: true, name }
    : { ok: false, reason: "bad-signature" };
}

/** Body-level `sig` of a sync response: SHA256(from + ":" + ts + ":" + concat(ids)). */
export const syncBodyPreimage = (from: string, tsSeconds: number | string, ids: readonly string[]): string =>
  `${from}:${tsSeconds}:${ids.join("")}`;

export const signSyncBody = (id: Identity, tsSeconds: number, ids: readonly string[]): string =>
  id.sign(sha256(syncBodyPreimage(id.name, tsSeconds, ids)));

/** Import request `sig`: SHA256(decimal(ts) + ":" + concat(ids in request order)). */
export const importPreimage = (tsSeconds: number | string, ids: readonly string[]): string =>
  `${tsSeconds}:${ids.join("")}`;

export const signImport = (id: Identity, tsSeconds: number, ids: readonly string[]): string =>
  id.sign(sha256(importPreimage(tsSeconds, ids)));

/** signImport for IDs already joined as their UTF-8 bytes (a restore batch keeps them so): the same preimage. */
export const signImportJoined = (id: Identity, tsSeconds: number, joinedIds: Uint8Array): string =>
  id.sign(sha256(Buffer.concat([utf8(`${tsSeconds}:`), joinedIds])));
