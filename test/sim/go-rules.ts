/**
 * What a real (Go) peer accepts: request decoding like json.Unmarshal into
 * its structs, strconv cursors, the payloads' IsValid() rules and the
 * import-time pruning, so the simulator refuses what a real nara refuses.
 */
import { goJson } from "../../src/events/gojson.ts";
import { goEventObject, type ParsedEvent } from "../../src/events/id.ts";

export const INT64_MAX = 2n ** 63n - 1n;
export const INT64_MIN = -(2n ** 63n);

export const isInt = (v: unknown): boolean => typeof v === "number" && Number.isInteger(v);
const isStrList = (v: unknown): boolean => v === null || (Array.isArray(v) && v.every((s) => typeof s === "string" || s === null));

export type SyncRequestBody = {
  from: string;
  mode: string;
  pageSize: number;
  cursor: string;
  services: string[];
  subjects: string[];
  sinceTime: number;
  maxEvents: number;
};

/** Decodes a sync request like Go's json.Unmarshal into the SyncRequest struct; null = 400. */
export function decodeSyncRequest(body: unknown): SyncRequestBody | null {
  if (body === null) body = {};
  if (typeof body !== "object" || Array.isArray(body)) return null;
  const b = body as Record<string, unknown>;
  const str = (v: unknown) => v === undefined || v === null || typeof v === "string";
  const int = (v: unknown) => v === undefined || v === null || isInt(v);
  if (!str(b.from) || !str(b.mode) || !str(b.cursor)) return null;
  if (!int(b.page_size) || !int(b.since_time) || !int(b.max_events)) return null;
  if (b.services !== undefined && !isStrList(b.services)) return null;
  if (b.subjects !== undefined && !isStrList(b.subjects)) return null;
  return {
    from: (b.from as string) ?? "",
    mode: (b.mode as string) ?? "",
    pageSize: (b.page_size as number) ?? 0,
    cursor: (b.cursor as string) ?? "",
    services: ((b.services as (string | null)[] | null) ?? []).map((s) => s ?? ""),
    subjects: ((b.subjects as (string | null)[] | null) ?? []).map((s) => s ?? ""),
    sinceTime: (b.since_time as number) ?? 0,
    maxEvents: (b.max_events as number) ?? 0,
  };
}

/** strconv.ParseInt(cursor, 10, 64); anything else means "from the beginning". */
export function parseCursor(cursor: string): bigint | null {
  if (!/^[+-]?[0-9]+$/.test(cursor)) return null;
  const v = BigInt(cursor);
  return v > INT64_MAX || v < INT64_MIN ? null : v;
}

/** Go's IsValid() of an event's payload (what real peers accept on import). */
export function payloadValid(svc: string, p: Record<string, unknown>): boolean {
  const s = (k: string) => (typeof p[k] === "string" ? (p[k] as string) : "");
  const n = (k: string) => (typeof p[k] === "number" ? (p[k] as number) : typeof p[k] === "bigint" ? Number(p[k]) : 0);
  switch (svc) {
    case "social":
      return ["tease", "observed", "gossip", "observation", "service"].includes(s("type")) && s("actor") !== "" && s("target") !== "";
    case "ping":
      return s("observer") !== "" && s("target") !== "" && n("rtt") > 0;
    case "observation": {
      if (s("observer") === "" || s("subject") === "" || s("type") === "") return false;
      const imp = n("importance");
      if (imp < 1 || imp > 3) return false;
      switch (s("type")) {
        case "restart":
          return n("start_time") > 0 && n("restart_num") >= 0;
        case "first-seen":
          return n("start_time") > 0;
        case "status-change":
          return ["ONLINE", "OFFLINE", "MISSING"].includes(s("online_state"));
        default:
          return false;
      }
    }
    case "hey-there":
      return s("From") !== "" && s("PublicKey") !== "";
    case "chau":
      return s("From") !== "";
    case "seen":
      return s("observer") !== "" && s("subject") !== "" && s("via") !== "";
    case "checkpoint": {
      const obs = (p.observation ?? {}) as Record<string, unknown>;
      const num = (v: unknown) => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : 0);
      const voters = Array.isArray(p.voter_ids) ? p.voter_ids.length : 0;
      const sigs = Array.isArray(p.signatures) ? p.signatures.length : 0;
      return s("subject") !== "" && num(obs.restarts) >= 0 && num(obs.total_uptime) >= 0 && voters === sigs;
    }
    default:
      return false; // unknown service: no payload as far as the peer knows
  }
}

/** Real peers silently drop stale checkpoints of r2d2 on import (counted in duplicates). */
export function prunedOnImport(svc: string, p: Record<string, unknown>): boolean {
  if (svc !== "checkpoint" || p.subject !== "r2d2") return false;
  const asOf = typeof p.as_of_time === "number" ? p.as_of_time : Number(p.as_of_time ?? 0);
  return asOf <= 1768774453;
}

/** Re-encodes an event received without an ID, as the peer would serve it (Go struct encoding, ID set). */
export function withId(parsed: ParsedEvent, id: string): string {
  return goJson(goEventObject({ ...parsed, id }));
}
