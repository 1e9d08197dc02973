// verify: expectations come from the Go vectors and from what the simulated mesh served, never from verify's own output.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpEvents } from "../src/dump/dump.ts";
import { ExitCode } from "../src/errors.ts";
import { eventContent, makeEvent, parseEvent, verifyEventSignature, type ParsedEvent } from "../src/events/id.ts";
import { sha256 } from "../src/identity/crypto.ts";
import { encryptBytes } from "./helpers/encrypt.ts";
import { decodeSignature, KeyRing, parseKeysText } from "../src/backup/keys.ts";
import { verifyBackups, type VerifyOptions, type VerifyReport } from "../src/backup/verify.ts";
import { compareTsText as compareTs } from "../src/events/order.ts";
import { formatIssue, renderReport } from "../src/cli/render/backup.ts";
import { generateEvents, generateNaras, makeNara, type SimEvent } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";

type Case = {
  name: string;
  service: string;
  ts_decimal: string;
  json: string;
  content_string: string;
  id: string;
  signed: boolean;
  emitter?: string;
  emitter_public_key?: string;
  signature?: string;
};
const vectors = (await Bun.file(new URL("../../shared/vectors/event_ids.json", import.meta.url)).json()) as { cases: Case[] };
const KNOWN = ["social", "ping", "observation", "hey-there", "chau", "seen", "checkpoint"];

let dir: string;
let seq = 0;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "nara-verify-test-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (content: string | Uint8Array, ext = "jsonl"): string => {
  const path = join(dir, `in-${++seq}.${ext}`);
  writeFileSync(path, content);
  return path;
};

const verify = (inputs: string[], opts: Partial<VerifyOptions> = {}): Promise<VerifyReport> =>
  verifyBackups({ inputs, threads: 2, ...opts });

/** Keys of the vectors' emitters, as --keys gets them. */
const vectorKeys = new Map<string, string>();
for (const c of vectors.cases) if (c.signed && c.emitter && c.emitter_public_key) vectorKeys.set(c.emitter, c.emitter_public_key);

const CLI = join(import.meta.dir, "../src/cli.ts");
const cli = (args: string[], env: Record<string, string | undefined> = {}) =>
  runCli(args, { env: { ...process.env, NARA_SOUL: undefined, NO_COLOR: "1", ...env } });

/** A byte of the payload that is part of the content string, changed (the JSON stays valid). */
function tamperPayload(json: string, svc: string): string {
  const field: Record<string, [string, string]> = {
    social: ["social", "actor"],
    ping: ["ping", "observer"],
    observation: ["observation", "subject"],
    "hey-there": ["hey_there", "From"],
    chau: ["chau", "From"],
    seen: ["seen", "subject"],
    checkpoint: ["checkpoint", "as_of_time"],
  };
  const [payload, key] = field[svc]!;
  const p = json.indexOf(`"${payload}":{`);
  const k = json.indexOf(`"${key}":`, p);
  if (p < 0 || k < 0) throw new Error(`no ${payload}.${key} in ${json}`);
  let i = k + key.length + 3;
  while (!/[A-Za-z0-9]/.test(json[i]!)) i++;
  const c = json[i]!;
  const swapped = /[0-9]/.test(c) ? String((Number(c) + 1) % 10) : c === "a" ? "b" : "a";
  return json.slice(0, i) + swapped + json.slice(i + 1);
}

/** Flips one character in the middle of the `sig` value to another Base64 character. */
function flipSig(line: string): string {
  const at = line.indexOf('"sig":"') + 7 + 20;
  const c = line[at]!;
  return line.slice(0, at) + (c === "A" ? "B" : "A") + line.slice(at + 1);
}

describe("the Go vectors", () => {
  const known = vectors.cases.filter((c) => KNOWN.includes(c.service));

  test("every vector event verifies: ok when signed, unsigned otherwise, unknown service reported", async () => {
    const keysPath = file(JSON.stringify(Object.fromEntries(vectorKeys)), "json");
    for (const c of vectors.cases) {
      const r = await verify([file(`${c.json}\n`)], { keys: parseKeysText(readFileSync(keysPath, "utf8"), keysPath) });
      expect({ name: c.name, ok: r.ok, issues: r.issues }).toEqual({ name: c.name, ok: true, issues: [] });
      if (!KNOWN.includes(c.service)) {
        expect(r.unknownServices).toEqual({ [c.service]: 1 });
        expect(r.total.events).toBe(0);
        continue;
      }
      const counts = r.services[c.service]!;
      expect({ name: c.name, ...counts }).toEqual({
        name: c.name,
        events: 1,
        ok: c.signed ? 1 : 0,
        idMismatch: 0,
        badSignature: 0,
        unsigned: c.signed ? 0 : 1,
        unknownKey: 0,
      });
    }
  });

  test("a changed byte in the payload of any vector event is an ID mismatch at FILE:1", async () => {
    expect(known.length).toBeGreaterThan(30);
    for (const c of known) {
      const tampered = tamperPayload(c.json, c.service);
      expect(tampered).not.toBe(c.json);
      const path = file(`${tampered}\n`);
      const r = await verify([path], { keys: vectorKeys });
      expect({ name: c.name, ok: r.ok, mismatch: r.services[c.service]!.idMismatch }).toEqual({ name: c.name, ok: false, mismatch: 1 });
      expect(r.issues.map(formatIssue)).toEqual([expect.stringMatching(new RegExp(`^${path}:1: ID mismatch: the line says ${c.id}, `))]);
    }
  });

  test("all vectors in one file (key order of the file does not matter); a flipped signature is a bad signature", async () => {
    const lines = vectors.cases.map((c) => c.json);
    const signed = known.filter((c) => c.signed).length;
    const r = await verify([file(`${lines.join("\n")}\n`)], { keys: vectorKeys });
    expect(r.ok).toBe(true);
    expect(r.total.ok).toBe(signed);
    expect(r.total.unsigned).toBe(known.length - signed);

    const at = vectors.cases.findIndex((c) => c.signed && c.service === "seen");
    const bad = [...lines];
    bad[at] = flipSig(bad[at]!);
    const path = file(`${bad.join("\n")}\n`);
    const r2 = await verify([path], { keys: vectorKeys });
    expect(r2.ok).toBe(false);
    expect(r2.total.badSignature).toBe(1);
    expect(r2.total.ok).toBe(signed - 1);
    // The vectors are not in (ts, id) order: those warnings aside, one error.
    expect(r2.issues.filter((i) => i.error).map(formatIssue)).toEqual([expect.stringMatching(new RegExp(`^${path}:${at + 1}: bad signature: `))]);
  });

  test("without keys, signed events whose emitter never says hey-there are 'unknown key', not errors", async () => {
    const r = await verify([file(`${vectors.cases.map((c) => c.json).join("\n")}\n`)]);
    expect(r.ok).toBe(true);
    expect(r.total.unknownKey).toBe(4);
    expect(r.total.ok + r.total.unknownKey).toBe(known.filter((c) => c.signed).length);
    expect(Object.keys(r.unknownKeyEmitters).length).toBe(2);
  });

  test("verifyEventSignature accepts every signed vector and refuses altered ones", () => {
    let checked = 0;
    for (const c of vectors.cases.filter((v) => v.signed)) {
      const args = [c.signature!, c.emitter_public_key!, c.id, c.ts_decimal, c.service, c.emitter!, c.content_string] as const;
      expect(verifyEventSignature(...args)).toBe(true);
      const variants: (typeof args)[] = [
        [flipSig(`"sig":"${c.signature}"`).slice(7), ...args.slice(1)] as unknown as typeof args,
        [args[0], args[1], args[2], args[3], args[4], `${c.emitter}x`, args[6]],
        [args[0], args[1], args[2], args[3], args[4], args[5], `${c.content_string}.`],
        [args[0], vectorKeys.get("alice") === c.emitter_public_key ? [...vectorKeys.values()].find((k) => k !== c.emitter_public_key)! : vectorKeys.get("alice")!, ...args.slice(2)] as unknown as typeof args,
        ["not base64!", ...args.slice(1)] as unknown as typeof args,
      ];
      for (const v of variants) {
        expect(verifyEventSignature(...v)).toBe(false);
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(20);
  });
});

describe("a dump of the simulated mesh", () => {
  let mesh: SimMesh;
  let backup: string;
  let lines: string[];
  beforeAll(async () => {
    mesh = await startMesh({ peers: 3, events: 2500, seed: 21, overlap: 0.5, generate: { sharedTsRate: 0.3, unknownRate: 0.02 } });
    backup = join(dir, "mesh.jsonl");
    const summary = await dumpEvents(
      {
        peers: mesh.peers.map((p) => ({ name: p.name, url: p.url })),
        name: mesh.client.name,
        soul: mesh.client.soul,
        settings: { timeoutMs: 20_000, pageSize: 200, strict: false, backoffMs: 10, maxBackoffMs: 100 },
        workers: 1,
        concurrency: 4,
        output: backup,
      },
      {},
    );
    expect(summary.exitCode).toBe(ExitCode.ok);
    lines = readFileSync(backup, "utf8").split("\n").filter(Boolean);
    expect(lines.length).toBe(mesh.allEvents.length);
  });
  afterAll(() => mesh.stop());

  const perService = (events: readonly SimEvent[]) => {
    const out: Record<string, { events: number; signed: number }> = {};
    for (const e of events) {
      const c = (out[e.svc] ??= { events: 0, signed: 0 });
      c.events++;
      if (e.signed) c.signed++;
    }
    return out;
  };

  test("verifies clean, with the mesh's counts per service (on 0 and 2 signature threads alike)", async () => {
    const want = perService(mesh.allEvents);
    for (const threads of [0, 2]) {
      const r = await verify([backup], { threads, requireSorted: true });
      expect(r.ok).toBe(true);
      expect(r.issues).toEqual([]);
      expect(r.malformed + r.duplicates + r.unsorted).toBe(0);
      for (const svc of KNOWN) {
        const w = want[svc] ?? { events: 0, signed: 0 };
        expect({ svc, ...r.services[svc] }).toEqual({ svc, events: w.events, ok: w.signed, idMismatch: 0, badSignature: 0, unsigned: w.events - w.signed, unknownKey: 0 });
      }
      expect(r.unknownServices).toEqual({ zine: want.zine!.events });
      expect(r.total.events + want.zine!.events).toBe(mesh.allEvents.length);
      expect(r.keys.learned).toBeGreaterThan(0);
    }
  });

  test("CLI: exit 0, the table on stdout, nothing alarming on stderr; --json is one object", async () => {
    const run = await cli(["verify", backup, "--require-sorted"]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^service +events +ok +ID mismatch +bad signature +unsigned +unknown key$/m);
    expect(run.stdout).toContain("result: OK");
    expect(run.stderr).toBe("");
    const json = await cli(["verify", backup, "--json", "--workers", "1"]);
    expect(json.code).toBe(0);
    const obj = JSON.parse(json.stdout) as VerifyReport & { exitCode: number };
    expect(obj.exitCode).toBe(0);
    expect(obj.total.events + obj.unknownServices.zine!).toBe(mesh.allEvents.length);
  });

  test("keys announced after the events they sign still verify them; the order is a warning, or an error with --require-sorted", async () => {
    const reversed = file(`${[...lines].reverse().join("\n")}\n`);
    const r = await verify([reversed]);
    const want = perService(mesh.allEvents);
    expect(r.total.ok).toBe(KNOWN.reduce((n, s) => n + (want[s]?.signed ?? 0), 0));
    expect(r.total.unknownKey).toBe(0);
    expect(r.unsorted).toBeGreaterThan(lines.length / 2);
    expect(r.ok).toBe(true);
    expect((await verify([reversed], { requireSorted: true })).ok).toBe(false);
    const run = await cli(["verify", reversed, "--require-sorted"]);
    expect(run.code).toBe(ExitCode.corrupt);
    expect(run.stderr).toMatch(new RegExp(`^${reversed}:2: out of order: ts \\d+ is before the previous event's \\d+$`, "m"));
  });

  test("tampering: a changed payload byte, a flipped signature character, a truncated last line, each named FILE:LINE", async () => {
    const signedAt = lines.findIndex((l, i) => i > 100 && l.includes('"sig":"') && l.includes('"svc":"seen"'));
    const socialAt = lines.findIndex((l, i) => i > 200 && l.includes('"svc":"social"'));
    expect(signedAt).toBeGreaterThan(0);
    expect(socialAt).toBeGreaterThan(0);

    const payload = [...lines];
    payload[socialAt] = tamperPayload(payload[socialAt]!, "social");
    const sig = [...lines];
    sig[signedAt] = flipSig(sig[signedAt]!);
    const cut = `${lines.join("\n")}\n`.slice(0, -40); // the last line loses its end and its newline

    const cases = [
      { text: `${payload.join("\n")}\n`, line: socialAt + 1, pattern: "ID mismatch: the line says [0-9a-f]{32}, its social content gives [0-9a-f]{32} \\(a changed byte, or an event altered after it was made\\)" },
      { text: `${sig.join("\n")}\n`, line: signedAt + 1, pattern: "bad signature: .+'s key does not verify the signature of event [0-9a-f]{32}" },
      { text: cut, line: lines.length, pattern: "malformed line: .+ \\(the input ends inside this line: truncated\\?\\)" },
    ];
    for (const c of cases) {
      const path = file(c.text);
      const run = await cli(["verify", path]);
      expect(run.code).toBe(ExitCode.corrupt);
      expect(run.stderr).toMatch(new RegExp(`^${path}:${c.line}: ${c.pattern}$`, "m"));
      expect(run.stdout).toContain("result: CORRUPT");
    }
    // All three at once: three errors, each at its line.
    const all = [...payload];
    all[signedAt] = sig[signedAt]!;
    const path = file(`${all.join("\n")}\n`.slice(0, -40));
    const r = await verify([path]);
    expect(r.errors).toBe(3);
    const want: [string, number][] = [
      ["id-mismatch", socialAt + 1],
      ["bad-signature", signedAt + 1],
      ["malformed", lines.length],
    ];
    expect(r.issues.filter((i) => i.error).map((i): [string, number] => [i.kind, i.line])).toEqual(want.sort((a, b) => a[1] - b[1]));
  });

  test("compressed and encrypted backups verify like the plain one; an encrypted one without the soul is a usage error", async () => {
    const plain = readFileSync(backup);
    const gz = file(Bun.gzipSync(plain), "jsonl.gz");
    const zst = file(Bun.zstdCompressSync(plain), "jsonl.zst");
    const enc = file(encryptBytes(mesh.client.identity.seedBytes(), Bun.zstdCompressSync(plain)), "jsonl.zst.enc");
    const base = await verify([backup]);
    for (const [path, kind] of [
      [gz, { compression: "gzip", encrypted: false }],
      [zst, { compression: "zstd", encrypted: false }],
      [enc, { compression: "zstd", encrypted: true }],
    ] as const) {
      const r = await verify([path], { soul: () => ({ seed: mesh.client.identity.seedBytes() }) });
      expect(r.files[0]).toMatchObject({ ...kind, bytes: plain.length, events: lines.length });
      expect(r.services).toEqual(base.services);
      expect(r.ok).toBe(true);
    }
    const withSoul = await cli(["verify", enc], { NARA_SOUL: mesh.client.soul });
    expect(withSoul.code).toBe(0);
    expect(withSoul.stdout).toContain("(zstd, encrypted)");
    const named = await cli(["verify", enc, "--name", mesh.client.name], { NARA_SOUL: mesh.client.soul });
    expect(named.code).toBe(0);
    const without = await cli(["verify", enc]);
    expect(without.code).toBe(ExitCode.usage);
    expect(without.stderr).toMatch(/^error: .*encrypted/m);
    expect(without.stderr).toMatch(/^hint: /m);
  });

  test("damaged compressed or encrypted data is corruption: what could be read is checked, the rest named", async () => {
    const plain = readFileSync(backup);
    const zst = Bun.zstdCompressSync(plain);
    const cutZst = file(zst.subarray(0, Math.floor(zst.length * 0.6)), "jsonl.zst");
    const seed = mesh.client.identity.seedBytes();
    const enc = encryptBytes(seed, plain, { chunkLog2: 12 });
    const changed = new Uint8Array(enc);
    changed[Math.floor(enc.length / 2)]! ^= 1;
    const badEnc = file(changed, "jsonl.enc");
    for (const path of [cutZst, badEnc]) {
      const r = await verify([path], { soul: () => ({ seed }) });
      expect(r.ok).toBe(false);
      expect(r.files[0]!.unreadable).toBeString();
      expect(r.files[0]!.events).toBeGreaterThan(100);
      expect(r.files[0]!.events).toBeLessThan(lines.length);
      const errs = r.issues.filter((i) => i.error);
      expect(errs.at(-1)!.kind).toBe("unreadable");
      expect(errs.at(-1)!.message).toEndWith("nothing after this point was checked");
    }
    const run = await cli(["verify", cutZst]);
    expect(run.code).toBe(ExitCode.corrupt);
    expect(run.stderr).toMatch(new RegExp(`^${cutZst}:\\d+: .*truncated`, "m"));
    expect(run.stdout).toMatch(/result: CORRUPT: 1 damaged input\(s\)/);
  });

  test("a line repeated is a duplicate (a warning); the same backup twice: duplicates across inputs", async () => {
    const dup = file(`${lines.join("\n")}\n${lines[5]}\n`);
    const r = await verify([dup]);
    expect(r.ok).toBe(true);
    expect(r.duplicates).toBe(1);
    expect(r.duplicatesAcrossFiles).toBe(0);
    expect(r.issues.map((i) => [i.kind, i.line, i.message])).toEqual([
      ["unsorted", lines.length + 1, expect.stringContaining("out of order")],
      ["duplicate", lines.length + 1, expect.stringContaining("already at line 6")],
    ]);
    const twice = await verify([backup, backup]);
    expect(twice.duplicatesAcrossFiles).toBe(lines.length);
    expect(twice.ok).toBe(true);
  });

  test("--keys: a trusted key that differs from the announced one makes that emitter's signatures bad", async () => {
    const victim = mesh.naras[0]!;
    const impostor = makeNara(victim.name, new Uint8Array(32).fill(9));
    const keysFile = file(`# trusted keys\n${victim.name}=${impostor.publicKey}\n`, "keys");
    const run = await cli(["verify", backup, "--keys", keysFile]);
    expect(run.code).toBe(ExitCode.corrupt);
    expect(run.stderr).toMatch(new RegExp(`: warning: ${victim.name} announces a public key that differs from the one given with --keys: ignored$`, "m"));
    const bySig = mesh.allEvents.filter((e) => e.emitter === victim.name && e.signed && e.svc !== "zine").length;
    const r = await verify([backup], { keys: new Map([[victim.name, impostor.publicKey]]) });
    expect(r.total.badSignature).toBe(bySig);
    // The right key, given: nothing changes.
    const right = await verify([backup], { keys: new Map([[victim.name, victim.publicKey]]) });
    expect(right.ok).toBe(true);
    expect(right.keys.conflicts).toBe(0);
  });
});

describe("signatures", () => {
  test("bad signatures made by the generator are found, and only those (checked against noble's verifier)", async () => {
    const naras = generateNaras(6, 5);
    const events = generateEvents({ naras, count: 3000, seed: 5, badSigRate: 0.05, unknownRate: 0 });
    const keyOf = new Map<string, string>();
    for (const e of events) if (e.svc === "hey-there") {
      const p = parseEvent(e.raw).payload!;
      keyOf.set(p.From as string, p.PublicKey as string);
    }
    const bad: number[] = [];
    events.forEach((e, i) => {
      if (!e.signed) return;
      const ev = parseEvent(e.raw);
      const ok = verifyEventSignature(ev.sig!, keyOf.get(ev.emitter!)!, ev.id!, ev.ts, ev.svc!, ev.emitter!, eventContent(ev.svc!, ev.payload)!);
      if (!ok) bad.push(i + 1);
    });
    expect(bad.length).toBeGreaterThan(30);
    const path = file(`${events.map((e) => e.raw).join("\n")}\n`);
    for (const threads of [0, 1, 3]) {
      const r = await verify([path], { threads });
      expect(r.total.badSignature).toBe(bad.length);
      expect(r.issues.filter((i) => i.kind === "bad-signature").map((i) => i.line)).toEqual(bad);
      expect(r.total.ok).toBe(events.filter((e) => e.signed).length - bad.length);
    }
  });

  test("a nara that changed its soul: events signed with either announced key verify", async () => {
    const a1 = makeNara("shifty", new Uint8Array(32).fill(1));
    const a2 = makeNara("shifty", new Uint8Array(32).fill(2));
    const hey = (n: typeof a1, ts: bigint): ParsedEvent =>
      makeEvent({ ts, svc: "hey-there", payload: { From: n.name, PublicKey: n.publicKey, MeshIP: "", ID: "", Signature: "" }, signer: n.identity });
    const seen = (n: typeof a1, ts: bigint): ParsedEvent => makeEvent({ ts, svc: "seen", payload: { observer: n.name, subject: "x", via: "mesh" }, signer: n.identity });
    const evs = [seen(a1, 1n), hey(a1, 2n), seen(a1, 3n), seen(a2, 4n), hey(a2, 5n), seen(a2, 6n), seen(a1, 7n)];
    const path = file(`${evs.map((e) => e.raw).join("\n")}\n`);
    for (const threads of [0, 2]) {
      const r = await verify([path], { threads });
      expect(r.total.ok).toBe(evs.length);
      expect(r.keys.changed).toBe(1);
      expect(r.ok).toBe(true);
    }
    // A third key nobody announced: bad, whatever the thread count.
    const a3 = makeNara("shifty", new Uint8Array(32).fill(3));
    const withBad = file(`${[...evs, seen(a3, 8n)].map((e) => e.raw).join("\n")}\n`);
    for (const threads of [0, 2]) {
      const r = await verify([withBad], { threads });
      expect(r.total.badSignature).toBe(1);
      expect(r.issues.filter((i) => i.error).map((i) => i.line)).toEqual([8]);
    }
  });

  test("KeyRing: trusted keys win over announced ones; invalid keys are refused", () => {
    const ring = new KeyRing();
    const a = makeNara("a", new Uint8Array(32).fill(3));
    const b = makeNara("b", new Uint8Array(32).fill(4));
    ring.addTrusted("a", a.publicKey);
    expect(ring.learn("a", b.publicKey)).toBe("conflict");
    expect(ring.learn("a", a.publicKey)).toBe("known");
    expect(ring.learn("b", b.publicKey)).toBe("new");
    expect(ring.learn("b", a.publicKey)).toBe("changed");
    expect(ring.learn("c", "AAAA")).toBe("invalid");
    expect(ring.keysOf("a")!.length).toBe(1);
    expect(ring.keysOf("b")!.length).toBe(2);
    const msg = sha256("hello");
    const sig = decodeSignature(b.sign(msg))!;
    expect(ring.verifyAny("b", sig, msg)).toBe(true);
    expect(ring.verifyAny("a", sig, msg)).toBe(false);
  });
});

describe("malformed lines and inputs", () => {
  test("each bad line is named FILE:LINE with its reason; blank lines are fine; exit 7", async () => {
    const good = vectors.cases.find((c) => c.name === "seen-zine")!.json;
    const bad = [
      ["not json at all", /malformed line: not a JSON object/],
      ['{"id":"abc","ts":"1767225600123456789","svc":"seen","seen":{"via":"x"}}', /malformed line: .*ts/],
      ['{"id":"abc","ts":1767225600123456789,"seen":{"via":"x"}}', /malformed line: no "svc"/],
      ['{"ts":1767225600123456789,"svc":"seen","seen":{"via":"x"}}', /malformed line: no "id"/],
      ['{"id":"abc","ts":1767225600123456789,"svc":"social"}', /malformed line: a "social" event without its "social" object/],
      ['[{"id":"abc"}]', /malformed line: a JSON array/],
    ] as const;
    const text = `${good}\n\n${bad.map(([l]) => l).join("\n")}\n`;
    const path = file(text);
    const r = await verify([path], { keys: vectorKeys });
    expect(r.malformed).toBe(bad.length);
    expect(r.ok).toBe(false);
    expect(r.services.seen!.ok).toBe(1);
    const issues = r.issues.map(formatIssue);
    bad.forEach(([, re], i) => {
      expect(issues[i]).toStartWith(`${path}:${i + 3}: `);
      expect(issues[i]).toMatch(re);
    });
    const run = await cli(["verify", path]);
    expect(run.code).toBe(ExitCode.corrupt);
    expect(run.stdout).toMatch(/result: CORRUPT: 6 malformed line\(s\)/);
  });

  test("a missing file and a bad keys file are usage errors (exit 2)", async () => {
    const missing = await cli(["verify", join(dir, "nope.jsonl")]);
    expect(missing.code).toBe(ExitCode.usage);
    expect(missing.stderr).toMatch(/^error: cannot read .*nope.jsonl: no such file$/m);
    const keys = file("alice=notakey\n", "keys");
    const badKeys = await cli(["verify", file("\n"), "--keys", keys]);
    expect(badKeys.code).toBe(ExitCode.usage);
    expect(badKeys.stderr).toMatch(/keys:1: the key is not the Base64 of 32 bytes/);
  });

  test("keys files: name=BASE64 lines (names may hold '=') and JSON objects give the same map", () => {
    const k1 = makeNara("x", new Uint8Array(32).fill(5)).publicKey;
    const k2 = makeNara("y", new Uint8Array(32).fill(6)).publicKey;
    const fromLines = parseKeysText(`# comment\r\n\nalice = ${k1}\r\nweird=name=${k2}\n`, "k");
    expect([...fromLines]).toEqual([
      ["alice", k1],
      ["weird=name", k2],
    ]);
    expect([...parseKeysText(JSON.stringify({ alice: k1, "weird=name": k2 }), "k")]).toEqual([...fromLines]);
    expect(() => parseKeysText('{"alice": 3}', "k")).toThrow(/not the Base64 of 32 bytes/);
    expect(() => parseKeysText("just words", "k")).toThrow(/name=BASE64_PUBLIC_KEY/);
  });

  test("stdin: - reads it", async () => {
    const c = vectors.cases.find((v) => v.name === "seen-zine")!;
    const proc = Bun.spawn([process.execPath, CLI, "verify", "-", "--json"], { stdin: new Blob([`${c.json}\n`]), stdout: "pipe", stderr: "pipe" });
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    const r = JSON.parse(out) as VerifyReport;
    expect(r.files[0]!.name).toBe("stdin");
    expect(r.services.seen!.unknownKey + r.services.seen!.ok).toBe(1);
  });

  test("compareTs orders decimal integers exactly, negatives included", () => {
    const sorted = ["-9223372036854775808", "-10", "-9", "0", "9", "10", "9007199254740992", "9007199254740993", "9223372036854775807"];
    for (let i = 0; i < sorted.length; i++) {
      for (let j = 0; j < sorted.length; j++) expect(Math.sign(compareTs(sorted[i]!, sorted[j]!))).toBe(Math.sign(i - j));
    }
  });

  test("the report text: table, verdict", async () => {
    const c = vectors.cases.find((v) => v.name === "seen-zine")!;
    const r = await verify([file(`${c.json}\n`)], { keys: vectorKeys });
    const text = renderReport(r);
    expect(text).toMatch(/^seen +1 +1 +0 +0 +0 +0$/m);
    expect(text).toMatch(/^total +1 +1 +0 +0 +0 +0$/m);
    expect(text).toContain("result: OK: 1 event(s); every ID recomputes, 1 signature(s) verify");
  });
});
