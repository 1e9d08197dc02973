/**
 * Is one backup line safe to send to a real peer? A line is sent as it is,
 * so it must decode the way a Go peer decodes it (one bad event makes the
 * peer reject the whole batch with 400, and a known service without its
 * payload makes it drop the connection), and we must know the ID the peer
 * will see, since the batch signature covers it.
 *
 * parseEvent (src/events/id.ts) is the reference; fastCheck answers the
 * plain cases several times faster, and everything else goes to parseEvent.
 */
import { isUtf8 } from "node:buffer";
import { EventParseError, KNOWN_SERVICES, PAYLOAD_KEY, parseEvent } from "./id.ts";
import type { Payload } from "./schema.ts";
import { fastCheck } from "./fastcheck.ts";

/** What the restore filters (--service, --since, --until, --nara) look at. */
export type FilterFields = {
  svc: string;
  /** The exact decimal text of ts (Unix nanoseconds). */
  tsText: string;
  /** Names (and nara IDs) the event is about: emitter, actor, target, subject, observer, From. */
  naras: readonly string[];
};

export type ValidEvent = FilterFields & {
  ok: true;
  /**
   * The ID exactly as a Go peer decodes it: what the batch signature covers, and the dedup key;
   * "" when asked `withoutId` and buf[idS, idE) is it.
   */
  id: string;
  /** Has a non-empty emitter and sig: the better copy when two share an ID. */
  signed: boolean;
  /** The fast check answered (no repeated, escaped or non-ASCII keys): see linecheck.ts. */
  plain: boolean;
  /** Where the ID's bytes are in the line when they are its UTF-8 (a plain line without escapes in it), else -1. */
  idS: number;
  idE: number;
};

export type InvalidEvent = { ok: false; reason: string };

export type LineCheck = ValidEvent | InvalidEvent;

const decoder = new TextDecoder();
const NO_NARAS: readonly string[] = Object.freeze([]);

/** Fields of a payload that name naras (the --nara filter), names and nara IDs. */
const NARA_FIELDS = ["actor", "actor_id", "target", "target_id", "subject", "subject_id", "observer", "observer_id", "From", "ID"];

function naraNames(emitter: string | undefined, emitterId: string | undefined, payload: Payload | undefined): string[] {
  const out: string[] = [];
  if (emitter) out.push(emitter);
  if (emitterId) out.push(emitterId);
  if (payload) {
    for (const k of NARA_FIELDS) {
      const v = payload[k];
      if (typeof v === "string" && v !== "") out.push(v);
    }
  }
  return out;
}

/**
 * Checks the line `buf[start, end)`: valid UTF-8, one JSON object that a Go
 * peer decodes into an event, with a non-empty string `id`, an int64 `ts`,
 * and, for the services peers know, the payload object of that service.
 * `withNaras` collects the names the --nara filter looks at; `withoutTs`
 * leaves tsText "" on the fast path (no time filter needs it), `withoutId`
 * leaves id "" there when the ID is its bytes in the line (idS, idE).
 */
export function validateLine(
  buf: Uint8Array,
  start: number,
  end: number,
  opts: { withNaras?: boolean; withoutTs?: boolean; withoutId?: boolean } = {},
): LineCheck {
  if (!opts.withNaras) {
    // An answer of the fast check also proves the line valid UTF-8.
    const fast = fastCheck(buf, start, end, opts.withoutTs !== true, opts.withoutId !== true);
    if (fast) {
      return { ok: true, id: fast.id, tsText: fast.tsText, svc: fast.svc, signed: fast.signed, naras: NO_NARAS, plain: true, idS: fast.idS, idE: fast.idE };
    }
  }
  const bytes = buf.subarray(start, end);
  if (!isUtf8(bytes)) return { ok: false, reason: "not valid UTF-8 (a damaged file, or not a backup)" };
  return slowCheck(decoder.decode(bytes), opts.withNaras === true);
}

/** The reference check (parseEvent), which also words what is wrong. */
export function slowCheck(text: string, withNaras: boolean): LineCheck {
  const first = text.trimStart().charCodeAt(0);
  if (first !== 0x7b) {
    return { ok: false, reason: first === 0x5b ? "a JSON array, not one event per line (this is not JSON Lines)" : "not a JSON object" };
  }
  let ev;
  try {
    ev = parseEvent(text);
  } catch (err) {
    if (err instanceof EventParseError) return { ok: false, reason: err.message.replace(/^event: /, "") };
    throw err;
  }
  if (ev.id === undefined || ev.id === "") return { ok: false, reason: 'no "id" (a non-empty string)' };
  const svc = ev.svc ?? "";
  if (KNOWN_SERVICES.has(svc) && ev.payload === undefined) {
    return { ok: false, reason: `a "${svc}" event without its "${PAYLOAD_KEY[svc]}" object (real peers drop the connection on it)` };
  }
  return {
    ok: true,
    id: ev.id,
    tsText: ev.ts,
    svc,
    signed: Boolean(ev.emitter) && Boolean(ev.sig),
    naras: withNaras ? naraNames(ev.emitter, ev.emitterId, ev.payload) : NO_NARAS,
    plain: false,
    idS: -1,
    idE: -1,
  };
}

/** A UTF-8 byte order mark at the start of a file: not part of the first event. */
export function bomLength(buf: Uint8Array, start: number, end: number): number {
  return end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf ? 3 : 0;
}
