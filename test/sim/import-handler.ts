/**
 * POST /api/events/import (PROTOCOL.md §5): a soul-signed batch, decoded and
 * checked like a Go peer does, stored byte for byte (see peer.ts on why).
 */
import { sha256 } from "../../src/identity/crypto.ts";
import { importPreimage } from "../../src/mesh/auth.ts";
import { goJson } from "../../src/events/gojson.ts";
import { eventContent, eventId, parseEvent, payloadMissing, type ParsedEvent } from "../../src/events/id.ts";
import { idMismatch } from "./import-work.ts";
import { actorTarget } from "./generate.ts";
import { droppedConnection, every, json, text } from "./faults.ts";
import { INT64_MAX, INT64_MIN, isInt, payloadValid, prunedOnImport, withId } from "./go-rules.ts";
import { rawEventsOf } from "./json-skim.ts";
import type { StoredEvent } from "./ledger.ts";
import { count, type ImportLogEntry, type PeerContext } from "./peer-context.ts";
import { nativeVerify } from "./signing.ts";

const IMPORT_WINDOW_S = 300;

export function importHandler(ctx: PeerContext): (req: Request) => Promise<Response> {
  const { nara, now, ledger, keys, faults, stats, log, learnHeyThere } = ctx;

  const importResult = (status: number, r: { success: boolean; imported: number; duplicates: number; warnings?: number; error?: string }) =>
    json(
      goJson({ success: r.success, imported: r.imported, duplicates: r.duplicates, warnings: r.warnings || undefined, error: r.error }) + "\n",
      status,
    );

  const handleImport = async (req: Request): Promise<Response> => {
    if (req.method !== "POST") return text("Method not allowed\n", 405);
    const k = ++stats.imports;
    const entry: ImportLogEntry = { at: now(), sent: 0, outcome: 0 };
    log(stats.importLog, entry);
    const bodyText = await req.text();
    if (every(faults.importFailEvery, k)) {
      entry.fault = "importFail";
      count(stats.faultsInjected, "importFail");
      entry.outcome = 503;
      return text("Service Unavailable\n", 503);
    }
    const dropNow = every(faults.importDropEvery, k);
    if (dropNow && faults.importDropAfterApply === false) {
      entry.fault = "importDrop";
      count(stats.faultsInjected, "importDrop");
      entry.outcome = "dropped";
      return droppedConnection();
    }
    const invalid = () => {
      entry.outcome = 400;
      entry.error = "Invalid JSON";
      return importResult(400, { success: false, imported: 0, duplicates: 0, error: "Invalid JSON" });
    };

    // Decode like Go: the whole body must fit {events []SyncEvent, ts int64, sig string}.
    let top: unknown;
    try {
      top = JSON.parse(bodyText);
    } catch {
      return invalid();
    }
    if (top === null) top = {};
    if (typeof top !== "object" || Array.isArray(top)) return invalid();
    const fields = new Map<string, unknown>();
    for (const [key, v] of Object.entries(top as Record<string, unknown>)) fields.set(key.toLowerCase(), v);
    const tsVal = fields.get("ts") ?? 0;
    const sigVal = fields.get("sig") ?? "";
    const eventsVal = fields.get("events") ?? null;
    if (!isInt(tsVal) || (typeof sigVal !== "string" && sigVal !== null)) return invalid();
    if (eventsVal !== null && !Array.isArray(eventsVal)) return invalid();
    type Incoming = {
      raw: string;
      id: string;
      ts: string;
      svc: string;
      emitter: string;
      sig: string;
      payload?: Record<string, unknown>;
      parsed?: ParsedEvent;
    };
    const incoming: Incoming[] = [];
    try {
      const raws = rawEventsOf(bodyText) ?? [];
      for (const raw of raws) {
        if (raw === "null") {
          incoming.push({ raw, id: "", ts: "0", svc: "", emitter: "", sig: "" });
          continue;
        }
        if (raw.charCodeAt(0) !== 0x7b) return invalid();
        const p = parseEvent(raw);
        const ts = p.ts ?? "0";
        if (!/^-?[0-9]+$/.test(ts)) return invalid();
        const tsBig = BigInt(ts);
        if (tsBig > INT64_MAX || tsBig < INT64_MIN) return invalid();
        const payload = (p.payload ?? undefined) as Record<string, unknown> | undefined;
        incoming.push({ raw, id: p.id ?? "", ts, svc: p.svc ?? "", emitter: p.emitter ?? "", sig: p.sig ?? "", payload, parsed: p });
      }
    } catch {
      return invalid();
    }
    entry.sent = incoming.length;

    // Authentication: the owner's soul signs ts + the IDs in request order.
    const reqTs = tsVal as number;
    const refuse = (why: string) => {
      entry.outcome = 403;
      entry.error = `Authentication failed: ${why}`;
      return importResult(403, { success: false, imported: 0, duplicates: 0, error: entry.error });
    };
    if (Math.abs(Math.floor(now() / 1000) - reqTs) > IMPORT_WINDOW_S) return refuse("timestamp out of range");
    const preimage = sha256(importPreimage(reqTs, incoming.map((e) => e.id)));
    if (!nativeVerify((sigVal as string | null) ?? "", preimage, nara.publicKey)) return refuse("invalid signature");

    // A known service without its payload: real peers dereference nil and
    // the connection drops without an answer (nothing imported).
    for (const e of incoming) {
      if (payloadMissing(e.svc, e.payload)) {
        entry.outcome = "dropped";
        entry.error = "payload missing";
        return droppedConnection();
      }
    }

    // Learn keys from hey-there events first, then check signatures.
    for (const e of incoming) learnHeyThere(e.svc, e.payload);

    let warnings = 0;
    const batch: StoredEvent[] = [];
    const seen = new Set<string>();
    for (const e of incoming) {
      if (e.svc === "" || e.ts === "0") continue;
      if (!e.payload || !payloadValid(e.svc, e.payload)) continue;
      let id = e.id;
      let raw = e.raw;
      if (id === "") {
        id = eventId(e.ts, e.svc, e.payload);
        raw = withId(e.parsed!, id);
      }
      if (ctx.checkIds && idMismatch(id, e.ts, e.svc, e.payload)) stats.idMismatches = (stats.idMismatches ?? 0) + 1;
      if (e.emitter !== "" && e.sig !== "") {
        const key = keys.get(e.emitter);
        const content = eventContent(e.svc, e.payload) ?? "";
        const ok = key !== undefined && nativeVerify(e.sig, sha256(`${id}:${e.ts}:${e.svc}:${e.emitter}:${content}`), key);
        if (!ok) warnings++;
      }
      if (prunedOnImport(e.svc, e.payload)) continue;
      if (seen.has(id) || ledger.has(id)) continue;
      seen.add(id);
      const [actor, target] = actorTarget(e.svc, e.payload);
      batch.push({ id, ts: BigInt(e.ts), svc: e.svc, raw, actor, target });
    }
    const imported = ledger.insert(batch);
    stats.importedEvents += imported;
    const duplicates = incoming.length - imported;
    entry.imported = imported;
    entry.duplicates = duplicates;
    entry.warnings = warnings;
    if (dropNow) {
      entry.fault = "importDrop";
      count(stats.faultsInjected, "importDrop");
      entry.outcome = "dropped";
      return droppedConnection();
    }
    entry.outcome = 200;
    return importResult(200, { success: true, imported, duplicates, warnings });
  };

  return handleImport;
}
