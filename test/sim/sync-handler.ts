/**
 * POST /events/sync: mesh auth, then paging by a strictly-greater ts cursor
 * with ties reshuffled on every request, the body `sig` and signed response
 * headers; or the legacy and "recent" answers; or whatever fault is on.
 */
import { sha256 } from "../../src/identity/crypto.ts";
import { responseMessage, syncBodyPreimage } from "../../src/mesh/auth.ts";
import { goJson } from "../../src/events/gojson.ts";
import { mixSeed, Rng } from "./generate.ts";
import { hostileSync } from "./hostile.ts";
import { droppedConnection, every, text } from "./faults.ts";
import { decodeSyncRequest, parseCursor, type SyncRequestBody } from "./go-rules.ts";
import { bytesOf, lowerBound, type StoredEvent } from "./ledger.ts";
import { count, type PeerContext, type SyncLogEntry } from "./peer-context.ts";
import { checkRequest, wrongKeyNara } from "./signing.ts";

const MAX_PAGE = 5000;
const LEGACY_CAP = 2000;
const encoder = new TextEncoder();

/** The body being assembled by buildPage; valid until the next page (Response copies it). */
let pageScratch = new Uint8Array(0);

export function syncHandler(ctx: PeerContext): (req: Request) => Promise<Response> {
  const { nara, name, now, seed, ledger, keys, faults, stats, hostile, stoppedSignal, log, hang } = ctx;
  // Sign with a key derived from the peer's name: valid Ed25519, wrong key.
  const wrongSigner = (msg: Uint8Array | string) => wrongKeyNara(name).sign(msg);

  const signHeaders = (body: Uint8Array): Record<string, string> => {
    const ts = now();
    const msg = responseMessage(name, ts, body);
    return {
      "X-Nara-Name": name,
      "X-Nara-Timestamp": String(ts),
      "X-Nara-Signature": faults.badResponseSig ? wrongSigner(msg) : nara.sign(msg),
    };
  };

  const selectPage = (req: SyncRequestBody, k: number): { picked: StoredEvent[]; idx?: number[]; next?: string } => {
    const services = req.services.length > 0 ? new Set(req.services) : null;
    const subjects = req.subjects.length > 0 ? new Set(req.subjects) : null;
    const keep = (e: StoredEvent) =>
      (!services || services.has(e.svc)) && (!subjects || subjects.has(e.actor) || subjects.has(e.target));
    const ev = ledger.ev;
    const rng = new Rng(mixSeed(seed, k, 0x50414745));

    if (faults.legacy || req.mode !== "page") {
      if (!faults.legacy && req.mode === "recent") {
        const cap = req.pageSize > 0 && req.pageSize <= MAX_PAGE ? req.pageSize : req.maxEvents > 0 ? Math.min(req.maxEvents, MAX_PAGE) : 100;
        const out: StoredEvent[] = [];
        for (let i = ev.length - 1; i >= 0 && out.length < cap; i--) if (keep(ev[i]!)) out.push(ev[i]!);
        return { picked: out }; // newest first
      }
      // Legacy (old peers, or no mode): the newest events after since_time
      // (seconds), capped, in ascending order, never a next_cursor.
      const cap = req.maxEvents > 0 && req.maxEvents < LEGACY_CAP ? req.maxEvents : LEGACY_CAP;
      const since = BigInt(Math.max(0, req.sinceTime)) * 1_000_000_000n;
      const out: StoredEvent[] = [];
      for (let i = ev.length - 1; i >= 0 && out.length < cap; i--) {
        const e = ev[i]!;
        if (e.ts <= since) break;
        if (keep(e)) out.push(e);
      }
      out.reverse();
      return { picked: out };
    }

    const size = req.pageSize <= 0 || req.pageSize > MAX_PAGE ? MAX_PAGE : req.pageSize;
    const rewind = faults.rewindAfterPages !== undefined && stats.pagesServed >= faults.rewindAfterPages;
    const cursor = rewind ? null : parseCursor(req.cursor);
    let i = cursor === null ? 0 : lowerBound(ledger.ts, cursor, true);
    const picked: StoredEvent[] = [];
    const idx: number[] = [];
    // Walk groups of equal ts; shuffle each group (per request) so both the
    // order among ties and which ties make it into a full page are arbitrary.
    const { groupEnd } = ledger.blob();
    while (picked.length < size && i < ev.length) {
      const j = groupEnd[i]!;
      if (j - i === 1) {
        if (keep(ev[i]!)) {
          picked.push(ev[i]!);
          idx.push(i);
        }
      } else {
        const group: number[] = [];
        for (let g = i; g < j; g++) if (keep(ev[g]!)) group.push(g);
        rng.shuffle(group);
        for (const g of group) {
          if (picked.length >= size) break;
          picked.push(ev[g]!);
          idx.push(g);
        }
      }
      i = j;
    }
    return picked.length === size ? { picked, idx, next: picked[picked.length - 1]!.ts.toString() } : { picked, idx };
  };

  const buildPage = (picked: StoredEvent[], idx: number[] | undefined, next: string | undefined): { body: Uint8Array<ArrayBuffer>; ids: string[] } => {
    const tsSec = Math.floor(now() / 1000);
    const ids = picked.map((e) => e.id);
    let preimage: Uint8Array;
    if (idx !== undefined) {
      // syncBodyPreimage, hashed from the ledger's joined ids run by run instead of one big string.
      const j = ledger.blob();
      const h = new Bun.CryptoHasher("sha256").update(`${name}:${tsSec}:`);
      for (let r = 0; r < idx.length; ) {
        let e = r + 1;
        while (e < idx.length && idx[e] === idx[e - 1]! + 1) e++;
        h.update(j.ids.subarray(j.idStart[idx[r]!]!, j.idStart[idx[e - 1]! + 1]!));
        r = e;
      }
      preimage = h.digest() as Uint8Array;
    } else preimage = sha256(syncBodyPreimage(name, tsSec, ids));
    const sig = faults.badBodySig ? wrongSigner(preimage) : nara.sign(preimage);
    const nextPart = next === undefined ? "" : `,"next_cursor":"${next}"`;
    const head = encoder.encode(`{"from":${goJson(name)},"events":${picked.length > 0 ? "[" : "null"}`);
    const tail = encoder.encode(`${picked.length > 0 ? "]" : ""}${nextPart},"ts":${tsSec},"sig":"${sig}"}\n`);
    if (idx !== undefined) {
      // Runs of consecutive ledger events are one copy from the joined bytes.
      const { bytes, start, end } = ledger.blob();
      let size = head.length + tail.length + Math.max(0, idx.length - 1);
      for (const i of idx) size += end[i]! - start[i]!;
      // new Response() copies its body, so one buffer serves every page (no fresh 1.6 MB per page).
      if (pageScratch.length < size) pageScratch = new Uint8Array(Math.ceil(size * 1.25));
      const body = pageScratch.subarray(0, size);
      body.set(head, 0);
      let o = head.length;
      for (let r = 0; r < idx.length; ) {
        let e = r + 1;
        while (e < idx.length && idx[e] === idx[e - 1]! + 1) e++;
        if (r > 0) body[o++] = 0x2c;
        const from = start[idx[r]!]!;
        const to = end[idx[e - 1]!]!;
        body.set(bytes.subarray(from, to), o);
        o += to - from;
        r = e;
      }
      body.set(tail, o);
      return { body, ids };
    }
    // Assemble from each event's cached bytes: no 2 MB string join + re-encode per page.
    const parts = picked.map(bytesOf);
    let size = head.length + tail.length + Math.max(0, parts.length - 1);
    for (const b of parts) size += b.length;
    const body = new Uint8Array(size);
    body.set(head, 0);
    let o = head.length;
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) body[o++] = 0x2c;
      body.set(parts[i]!, o);
      o += parts[i]!.length;
    }
    body.set(tail, o);
    return { body, ids };
  };

  const handleSync = async (req: Request): Promise<Response> => {
    const k = ++stats.syncRequests;
    const entry: SyncLogEntry = {
      at: now(),
      name: req.headers.get("X-Nara-Name"),
      timestamp: req.headers.get("X-Nara-Timestamp"),
      signature: req.headers.get("X-Nara-Signature"),
      outcome: 0,
    };
    log(stats.syncLog, entry);
    const fault = (f: string) => {
      entry.fault = f;
      count(stats.faultsInjected, f);
    };

    if (faults.hangAfterPages !== undefined && stats.pagesServed >= faults.hangAfterPages) {
      fault("hang");
      entry.outcome = "hung";
      return hang();
    }
    if (every(faults.dropEvery, k)) {
      fault("drop");
      entry.outcome = "dropped";
      return droppedConnection();
    }
    if (every(faults.failEvery, k)) {
      fault("fail");
      const status = (k / faults.failEvery!) % 2 === 1 ? 500 : 503;
      entry.outcome = status;
      return text(status === 500 ? "Internal Server Error\n" : "Service Unavailable\n", status);
    }
    if (faults.status401) {
      fault("status401");
      entry.outcome = 401;
      return text("Unauthorized\n", 401);
    }
    const auth = checkRequest(req.headers, req.method, new URL(req.url).pathname, (n) => keys.get(n), now());
    if (!auth.ok) {
      count(stats.authFailures, auth.reason);
      entry.authReason = auth.reason;
      entry.outcome = 401;
      return text("Unauthorized\n", 401);
    }
    if (req.method !== "POST") {
      entry.outcome = 405;
      return text("Method not allowed\n", 405);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(await req.text());
    } catch {
      entry.outcome = 400;
      return text("Invalid JSON\n", 400);
    }
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const b = parsed as Record<string, unknown>;
      entry.mode = b.mode;
      entry.cursor = b.cursor;
      entry.pageSize = b.page_size;
      entry.services = b.services;
      entry.subjects = b.subjects;
    }
    const body = decodeSyncRequest(parsed);
    if (!body) {
      entry.outcome = 400;
      return text("Invalid JSON\n", 400);
    }
    if (body.from === "") {
      entry.outcome = 400;
      return text("from is required\n", 400);
    }

    if (every(faults.garbageEvery, k)) {
      fault("garbage");
      entry.outcome = 200;
      return new Response("<html><body><h1>502 Bad Gateway</h1>upstream sent nonsense</body></html>\n", {
        status: 200,
        headers: { "Content-Type": "text/html" },
      });
    }

    const { picked, idx, next } = selectPage(body, k);
    const page = buildPage(picked, idx, next);
    const headers = { "Content-Type": "application/json", ...signHeaders(page.body) };
    const bad = hostileSync(faults, k, stats.pagesServed, page.body, headers, hostile, stoppedSignal);
    if (bad) return (fault(bad.fault), (entry.outcome = 200), bad.response);
    if (every(faults.truncateEvery, k)) {
      fault("truncate");
      entry.outcome = 200;
      // The peer signed what it meant to send; the body is cut on the way.
      const cut = page.body.subarray(0, Math.max(1, Math.floor(page.body.length / 2)));
      return new Response(cut, { status: 200, headers });
    }
    stats.pagesServed++;
    stats.eventsServed += picked.length;
    entry.outcome = 200;
    entry.events = picked.length;
    if (next !== undefined) entry.nextCursor = next;
    return new Response(page.body, { status: 200, headers });
  };

  return handleSync;
}
