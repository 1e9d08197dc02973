/**
 * Offline verification of backups: what can be proven about every line
 * without asking any nara.
 *
 * - The line is one event a Go peer decodes (src/restore/validate.ts words
 *   what is wrong), with an `id`, an integer `ts` and a `svc`.
 * - Its ID recomputes from its content (PROTOCOL.md §6). Unknown services
 *   are counted, not judged: their content string is unknowable.
 * - Its signature, when it has one, verifies with its emitter's public key,
 *   from `--keys` (trusted) or from the hey-there and chau events of the same
 *   backups. Keys may come after the events they sign: an event whose key is
 *   not known yet is set aside (digest and signature, ~100 bytes) and checked
 *   once every input has been read, so each input is read once (stdin works).
 * - No ID appears twice, and each input is sorted by (ts, id).
 *
 * Corrupt (exit 7): a malformed line, an ID mismatch, a bad signature,
 * compressed or encrypted data that cannot be read to its end, and with
 * `requireSorted` a line out of order. Everything else (unsigned events,
 * unknown keys, unknown services, duplicates) is reported, not an error.
 */
import { compareIdText, compareTsText } from "../events/order.ts";
import { isUtf8 } from "node:buffer";
import { availableParallelism } from "node:os";
import { DEFAULT_MAX_LINE_BYTES, longLineReason } from "../events/lines.ts";
import { eventContent, eventIdFromContent, KNOWN_SERVICES, parseEvent, signablePreimage, type ParsedEvent } from "../events/id.ts";
import { sha256 } from "../identity/crypto.ts";
import { IdIndex } from "../events/idindex.ts";
import { validateLine } from "../events/validate.ts";
import { decodeSignature, KeyRing } from "./keys.ts";
import { type InputCounts, inputList, newCounts, readInputs, type InputsOptions } from "./inputs.ts";
import { SigChecker } from "./sigcheck.ts";
import { type Issue, type IssueKind, IssueLog } from "./verify-issues.ts";

/** The inputs (none is stdin), the soul for encrypted ones, the line cap: see inputs.ts. */
export type VerifyOptions = InputsOptions & {
  /** Trusted keys, name -> Base64 (from --keys). */
  keys?: Map<string, string>;
  /** A line out of (ts, id) order is corrupt rather than a warning. */
  requireSorted?: boolean;
  /** Signature threads; 0 verifies on the main thread. Default: cores, at most 4. */
  threads?: number;
  /** Issues of each kind kept in the report (all are counted); default 1000. */
  issueLimit?: number;
};

export type { Issue, IssueKind };

/** One row of the table: every event of a known service lands in exactly one of the last five columns. */
export type ServiceCounts = {
  events: number;
  /** ID recomputes and the signature verifies. */
  ok: number;
  idMismatch: number;
  badSignature: number;
  /** ID recomputes; no emitter or no sig. */
  unsigned: number;
  /** ID recomputes; signed, but no public key of the emitter is known. */
  unknownKey: number;
};

export type FileReport = InputCounts & {
  /** Lines whose (ts, id) is below the previous line's. */
  unsorted: number;
  /** Lines whose ID appeared earlier in the same input. */
  duplicates: number;
  /** The last line is broken and not ended by a newline: the input was cut. */
  truncated: boolean;
  /** Why the input could not be read to its end (damaged compressed or encrypted data). */
  unreadable?: string;
};

export type VerifyReport = {
  /** Nothing corrupt. */
  ok: boolean;
  files: FileReport[];
  /** Known services, in PROTOCOL order, then any other seen. */
  services: Record<string, ServiceCounts>;
  total: ServiceCounts;
  /** Events of services this tool does not know: svc -> count (not verifiable, not errors). */
  unknownServices: Record<string, number>;
  malformed: number;
  /** Lines whose ID appeared before (in any input). */
  duplicates: number;
  /** Of those, across inputs (normal when backups overlap). */
  duplicatesAcrossFiles: number;
  unsorted: number;
  requireSorted: boolean;
  keys: { trusted: number; learned: number; conflicts: number; changed: number };
  /** Emitters of signed events without a known key: name -> events. */
  unknownKeyEmitters: Record<string, number>;
  /** Signed events whose signature was judged (ok + bad signature). */
  signaturesChecked: number;
  /** Corrupt lines: malformed + ID mismatch + bad signature (+ unsorted with requireSorted) + unreadable inputs. */
  errors: number;
  warnings: number;
  /** The first issueLimit issues of each kind, sorted by input and line. */
  issues: Issue[];
  issuesTotal: number;
  /** Issues found of each kind (kept or not). */
  issueCounts: Partial<Record<IssueKind, number>>;
  bytes: number;
  seconds: number;
  threads: number;
};

export type VerifyHooks = {
  /** Each issue as found (also those beyond the report's limit); the message of a truncated last line is completed later. */
  onIssue?: (issue: Issue) => void;
  /** `rawBytes`: bytes read from the inputs so far (compressed, encrypted), for a fraction of their sizes. */
  onProgress?: (p: { file: string; rawBytes: number; bytes: number; lines: number; events: number }) => void;
  onDebug?: (message: string) => void;
};

export const SERVICE_ORDER = ["social", "ping", "observation", "hey-there", "chau", "seen", "checkpoint"];

const zero = (): ServiceCounts => ({ events: 0, ok: 0, idMismatch: 0, badSignature: 0, unsigned: 0, unknownKey: 0 });

type SigMeta = { svc: ServiceCounts; emitter: string; file: number; line: number; id: string };
/** A signed event whose key was not known when it was read, or that failed with one of several keys. */
type Pending = SigMeta & { hash: Uint8Array; sig: Uint8Array; tried: number };

const decoder = new TextDecoder();

export const defaultThreads = (): number => Math.max(1, Math.min(4, availableParallelism()));

export async function verifyBackups(opts: VerifyOptions, hooks: VerifyHooks = {}): Promise<VerifyReport> {
  const started = performance.now();
  inputList(opts.inputs); // usage errors before the checker's threads start
  const issueLimit = opts.issueLimit ?? 1000;
  const requireSorted = opts.requireSorted === true;

  const keys = new KeyRing();
  for (const [name, key] of opts.keys ?? []) keys.addTrusted(name, key);

  const services = new Map<string, ServiceCounts>();
  for (const s of SERVICE_ORDER) services.set(s, zero());
  const unknownServices = new Map<string, number>();
  const unknownKeyEmitters = new Map<string, number>();
  const files: FileReport[] = [];
  const log = new IssueLog(issueLimit, hooks.onIssue);
  let duplicatesAcross = 0;
  const learned = { learned: 0, conflicts: 0, changed: 0 };

  const issue = (kind: IssueKind, file: number, line: number, message: string, error: boolean): Issue =>
    log.add({ kind, file: files[file]!.name, input: file, line, message, error });

  const pending: Pending[] = [];
  const badSignature = (m: SigMeta): void => {
    m.svc.badSignature++;
    issue("bad-signature", m.file, m.line, `bad signature: ${m.emitter}'s key does not verify the signature of event ${m.id}`, true);
  };
  const checker = new SigChecker<SigMeta>({
    threads: opts.threads ?? defaultThreads(),
    keys,
    onResult(m, ok, keyIndex, hash, sig) {
      if (ok) m.svc.ok++;
      else if (keys.isTrusted(m.emitter)) badSignature(m);
      else {
        // A later hey-there may announce another key for this name (a changed soul): judged once everything is read.
        pending.push({ ...m, hash: hash.slice(), sig: sig.slice(), tried: keyIndex });
      }
    },
  });
  hooks.onDebug?.(checker.threads > 0 ? `checking signatures on ${checker.threads} thread(s)` : "checking signatures on the main thread");

  const ids = new IdIndex();
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  // The input being read (one at a time): set by begin().
  let f = -1;
  let report: FileReport;
  let prevTs: string | undefined;
  let prevId = "";
  let lastMalformed: Issue | undefined;
  let lastMalformedLine = 0;

  const visit = (buf: Uint8Array, s: number, e: number, line: number): void | Promise<void> => {
    let ev: ParsedEvent | undefined;
    const bytes = buf.subarray(s, e);
    if (isUtf8(bytes)) {
      try {
        ev = parseEvent(decoder.decode(bytes));
      } catch {
        ev = undefined;
      }
    }
    const svc = ev?.svc ?? "";
    const known = KNOWN_SERVICES.has(svc);
    if (ev === undefined || !ev.id || svc === "" || (known && ev.payload === undefined)) {
      const v = validateLine(buf, s, e);
      const reason = !v.ok ? v.reason : ev === undefined ? "not an event a Go peer decodes" : 'no "svc" (a non-empty string)';
      report.malformed++;
      lastMalformed = issue("malformed", f, line, `malformed line: ${reason}`, true);
      lastMalformedLine = line;
      return;
    }
    report.events++;
    const id = ev.id;
    const ts = ev.ts;

    // Order within this input: (ts, id) ascending.
    if (prevTs !== undefined) {
      const c = compareTsText(ts, prevTs) || compareIdText(id, prevId);
      if (c < 0) {
        report.unsorted++;
        const what =
          ts === prevTs
            ? `same ts as the previous event (${ts}) but its id ${id} sorts before ${prevId} (ties are ordered by id)`
            : `ts ${ts} is before the previous event's ${prevTs}`;
        issue("unsorted", f, line, `out of order: ${what}`, requireSorted);
      }
    }
    prevTs = ts;
    prevId = id;

    const seen = ids.get(id);
    if (seen !== undefined) {
      const where = seen.input === f ? `line ${seen.line}` : `${files[seen.input]!.name}:${seen.line}`;
      if (seen.input === f) report.duplicates++;
      else duplicatesAcross++;
      issue("duplicate", f, line, `duplicate: event ${id} already at ${where}`, false);
    } else ids.set(id, { input: f, line, signed: false, selected: false });

    if (!known) {
      unknownServices.set(svc, (unknownServices.get(svc) ?? 0) + 1);
      return;
    }
    const counts = services.get(svc)!;
    counts.events++;
    const content = eventContent(svc, ev.payload)!;
    const computed = eventIdFromContent(ts, svc, content);
    if (computed !== id) {
      counts.idMismatch++;
      issue("id-mismatch", f, line, `ID mismatch: the line says ${id}, its ${svc} content gives ${computed} (a changed byte, or an event altered after it was made)`, true);
      return;
    }
    if (svc === "hey-there" || svc === "chau") {
      const p = ev.payload!;
      const from = typeof p.From === "string" ? p.From : "";
      const pk = typeof p.PublicKey === "string" ? p.PublicKey : "";
      if (from !== "" && pk !== "") {
        const r = keys.learn(from, pk);
        if (r === "new") learned.learned++;
        else if (r === "changed") {
          learned.learned++;
          learned.changed++;
          issue("key-change", f, line, `${from} announces another public key than before (a new soul?): both are accepted for ${from}'s signatures`, false);
        } else if (r === "conflict") {
          learned.conflicts++;
          issue("key-conflict", f, line, `${from} announces a public key that differs from the one given with --keys: ignored`, false);
        }
      }
    }
    const emitter = ev.emitter ?? "";
    const sigText = ev.sig ?? "";
    if (emitter === "" || sigText === "") {
      counts.unsigned++;
      return;
    }
    const meta: SigMeta = { svc: counts, emitter, file: f, line, id };
    const sig = decodeSignature(sigText);
    if (sig === null) {
      counts.badSignature++;
      issue("bad-signature", f, line, `bad signature: "sig" of event ${id} is not the Base64 of 64 bytes`, true);
      return;
    }
    const hash = sha256(signablePreimage(id, ts, svc, emitter, content));
    const known2 = keys.keysOf(emitter);
    if (known2 === undefined || known2.length === 0) {
      pending.push({ ...meta, hash, sig, tried: -1 });
      return;
    }
    return checker.add(hash, sig, known2[0]!, meta);
  };

  try {
    await readInputs(opts, {
      begin(input) {
        f = input.index;
        prevTs = undefined;
        prevId = "";
        lastMalformed = undefined;
        lastMalformedLine = 0;
        report = { ...newCounts(input), unsorted: 0, duplicates: 0, truncated: false };
        files.push(report);
        return {
          line: visit,
          long(line, bytes) {
            report.malformed++;
            issue("malformed", f, line, longLineReason(bytes, maxLineBytes), true);
          },
        };
      },
      progressEvery: 10_000,
      progress: (input, p) => hooks.onProgress?.({ file: input.name, ...p, events: report.events }),
      damaged(input, err, lastLine) {
        // Corruption like any other, after what could be read was checked.
        report.unreadable = err.message;
        issue("unreadable", f, lastLine + 1, `${err.message}${err.hint ? ` (${err.hint})` : ""}; nothing after this point was checked`, true);
      },
      end(input, r) {
        report.lines = r.lines;
        report.bytes = r.bytes;
        // A last line that is broken and not ended by a newline: the input was cut.
        report.truncated = r.bytes > 0 && r.lastByte !== 0x0a && lastMalformed !== undefined && lastMalformedLine === r.lines;
        if (report.truncated) lastMalformed!.message += " (the input ends inside this line: truncated?)";
        hooks.onProgress?.({ file: input.name, rawBytes: r.rawBytes, bytes: r.bytes, lines: r.lines, events: report.events });
      },
    });
    await checker.flush();

    // Events read before their emitter's key, and signatures that failed while another key might still come.
    const judge = (p: Pending): boolean | undefined => {
      const list = keys.keysOf(p.emitter)!;
      if (!list.some((k) => k !== p.tried)) return false;
      return keys.verifyAny(p.emitter, p.sig, p.hash, p.tried);
    };
    for (const p of pending.splice(0)) {
      const list = keys.keysOf(p.emitter);
      if (list === undefined || list.length === 0) {
        p.svc.unknownKey++;
        unknownKeyEmitters.set(p.emitter, (unknownKeyEmitters.get(p.emitter) ?? 0) + 1);
      } else if (p.tried === -1 && list.length === 1) {
        // The common case (a key announced after the events it signs): in parallel again.
        const r = checker.add(p.hash, p.sig, list[0]!, p);
        if (r) await r;
      } else if (judge(p)) p.svc.ok++;
      else badSignature(p);
    }
    await checker.flush();
    // Failures of that second round: every key is known now.
    for (const p of pending.splice(0)) {
      if (judge(p)) p.svc.ok++;
      else badSignature(p);
    }
  } finally {
    checker.close();
  }

  const total = zero();
  const servicesOut: Record<string, ServiceCounts> = {};
  for (const [svc, c] of services) {
    servicesOut[svc] = c;
    for (const k of Object.keys(total) as (keyof ServiceCounts)[]) total[k] += c[k];
  }
  const sum = (k: "malformed" | "unsorted" | "duplicates" | "bytes") => files.reduce((n, r) => n + r[k], 0);
  return {
    ok: log.errors === 0,
    files,
    services: servicesOut,
    total,
    unknownServices: Object.fromEntries([...unknownServices].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))),
    malformed: sum("malformed"),
    duplicates: sum("duplicates") + duplicatesAcross,
    duplicatesAcrossFiles: duplicatesAcross,
    unsorted: sum("unsorted"),
    requireSorted,
    keys: { trusted: keys.trustedNames, ...learned },
    unknownKeyEmitters: Object.fromEntries([...unknownKeyEmitters].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))),
    signaturesChecked: total.ok + total.badSignature,
    errors: log.errors,
    warnings: log.warnings,
    issues: log.sorted(),
    issuesTotal: log.total,
    issueCounts: log.counts(),
    bytes: sum("bytes"),
    seconds: (performance.now() - started) / 1000,
    threads: checker.threads,
  };
}

