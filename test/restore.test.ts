/**
 * restore-events against simulated naras (test/sim): the import endpoint
 * checks the batch signature with the target's own key, like a real peer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { dumpEvents } from "../src/dump/dump.ts";
import { importUrl, type FetchLike } from "../src/restore/import.ts";
import { restoreEvents, type RestoreHooks, type RestoreOptions } from "../src/restore/restore.ts";
import { parseFilter } from "../src/restore/filter.ts";
import { generateEvents, generateNaras, makeNara, type SimEvent, type SimNara } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { rawEventsOf, startPeer, type SimPeer } from "./sim/peer.ts";
import { sha256 } from "../src/identity/crypto.ts";

const dir = mkdtempSync(join(tmpdir(), "restore-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileNo = 0;
function backupFile(lines: readonly string[], name = `backup-${++fileNo}.jsonl`): string {
  const path = join(dir, name);
  writeFileSync(path, lines.map((l) => `${l}\n`).join(""));
  return path;
}

const naras = generateNaras(4, 21);
const events = generateEvents({ naras, count: 3000, seed: 21 });
const raws = events.map((e) => e.raw);
const allFile = backupFile(raws, "all.jsonl");

/** A nara that was just installed: empty ledger, knows no keys but its own (and the backup client's). */
function freshNara(name: string, seed: number, client?: SimNara, extra: Partial<Parameters<typeof startPeer>[0]> = {}): SimPeer {
  return startPeer({
    nara: makeNara(name, sha256(`fresh:${name}:${seed}`)),
    knownKeys: client ? { [client.name]: client.publicKey } : {},
    ...extra,
  });
}

const signerOf = (n: { identity: SimNara["identity"] }) => ({ identity: n.identity, bondChecked: true, source: "env" as const });

/** No waiting between retries in tests: nothing here synchronises on time. */
const noSleep = async () => {};

function restore(target: SimPeer, opts: Partial<RestoreOptions> = {}, hooks: RestoreHooks = {}) {
  return restoreEvents(
    {
      inputs: [allFile],
      url: importUrl(target.url),
      signer: signerOf(target),
      batchSize: 1000,
      timeoutMs: 10_000,
      retries: 5,
      sleep: noSleep,
      ...opts,
    },
    hooks,
  );
}

const sortedIds = (list: { id: string }[]) => list.map((e) => e.id).sort();

describe("round trip", () => {
  let mesh: SimMesh;
  beforeAll(async () => {
    mesh = await startMesh({ peers: 3, events: 2500, seed: 5 });
  });
  afterAll(() => mesh.stop());

  const dumpTo = async (peers: { name: string; url: string }[], output: string) => {
    const s = await dumpEvents({
      peers,
      name: mesh.client.name,
      soul: mesh.client.soul,
      settings: { timeoutMs: 20_000, pageSize: 700, strict: false, backoffMs: 10, maxBackoffMs: 50 },
      workers: 1,
      concurrency: 4,
      output,
    });
    expect(s.exitCode).toBe(ExitCode.ok);
    return readFileSync(output);
  };

  test("dump → restore into a fresh nara → dump gives the same bytes; twice gives all duplicates", async () => {
    const first = await dumpTo(mesh.peers.map((p) => ({ name: p.name, url: p.url })), join(dir, "rt-first.jsonl"));
    const lines = first.toString("utf8").trimEnd().split("\n");
    expect(lines.length).toBe(mesh.allEvents.length);

    const target = freshNara("fresh-install", 1, mesh.client);
    try {
      const s = await restore(target, { inputs: [join(dir, "rt-first.jsonl")], batchSize: 600 });
      expect(s.failure).toBeUndefined();
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(s.imported).toBe(lines.length);
      expect(s.duplicates).toBe(0);
      expect(s.sent).toBe(lines.length);
      expect(s.batches).toBe(Math.ceil(lines.length / 600));
      // Hey-there events went first: the fresh nara knew no keys, yet no signature was a warning.
      expect(s.warnings).toBe(0);
      expect(target.stats.imports).toBe(s.batches);

      const again = await dumpTo([{ name: target.name, url: target.url }], join(dir, "rt-second.jsonl"));
      expect(again.equals(first)).toBe(true);

      const twice = await restore(target, { inputs: [join(dir, "rt-first.jsonl")], batchSize: 600 });
      expect(twice.exitCode).toBe(ExitCode.ok);
      expect(twice.imported).toBe(0);
      expect(twice.duplicates).toBe(lines.length);
      expect(target.events.size).toBe(lines.length);
    } finally {
      await target.stop();
    }
  }, 60_000);
});

describe("authentication", () => {
  test("a soul that is not the target's stops at the first batch, nothing imported", async () => {
    const target = freshNara("target-a", 2);
    const stranger = makeNara("stranger", sha256("stranger"));
    try {
      const s = await restore(target, { signer: signerOf(stranger), batchSize: 500 });
      expect(s.exitCode).toBe(ExitCode.refused);
      expect(s.failure?.exitCode).toBe(ExitCode.refused);
      expect(target.stats.imports).toBe(1);
      expect(target.events.size).toBe(0);
      expect(s.batches).toBe(0);
      expect(s.sent).toBe(0);
      expect(s.retries).toBe(0);
      const hint = s.failure?.hint ?? "";
      expect(hint).toContain("not this nara's");
      expect(hint).toContain(stranger.publicKey);
      expect(hint).toContain(stranger.naraId);
      expect(hint).toContain("stranger");
      expect(`${s.failure?.message} ${hint}`).not.toContain(stranger.soul);
    } finally {
      await target.stop();
    }
  });

  test("a nara whose clock is 10 minutes off refuses, and the hint says clock", async () => {
    const target = freshNara("target-b", 3, undefined, { now: () => Date.now() + 10 * 60_000 });
    try {
      const s = await restore(target);
      expect(s.exitCode).toBe(ExitCode.refused);
      expect(target.stats.imports).toBe(1);
      expect(target.events.size).toBe(0);
      expect(s.failure?.hint).toMatch(/clock/);
      expect(s.failure?.hint).toMatch(/5 minutes/);
      expect(s.failure?.hint).not.toMatch(/not this nara's/);
    } finally {
      await target.stop();
    }
  });

  test("our own stale clock gives the clock hint too (signature otherwise right)", async () => {
    const target = freshNara("target-c", 4);
    try {
      const s = await restore(target, { now: () => Date.now() - 6 * 60_000 });
      expect(s.exitCode).toBe(ExitCode.refused);
      expect(s.failure?.hint).toMatch(/clock/);
      const ok = await restore(target, { now: () => Date.now() - 4 * 60_000 });
      expect(ok.exitCode).toBe(ExitCode.ok);
      expect(ok.imported).toBe(events.length);
    } finally {
      await target.stop();
    }
  });
});

describe("retries", () => {
  test("503s and dropped connections are retried: nothing lost, nothing doubled", async () => {
    const target = freshNara("flaky", 5, undefined, { faults: { importFailEvery: 2, importDropEvery: 3 } });
    try {
      const s = await restore(target, { batchSize: 400 });
      expect(s.failure).toBeUndefined();
      expect(s.exitCode).toBe(ExitCode.ok);
      // The faults go by request number, whatever the order: 8 batches take requests 1..23,
      // the even ones answer 503 and 3, 9, 15, 21 are dropped.
      expect(target.stats.faultsInjected.importFail).toBe(11);
      expect(target.stats.faultsInjected.importDrop).toBe(4);
      expect(s.retries).toBe((target.stats.faultsInjected.importFail ?? 0) + (target.stats.faultsInjected.importDrop ?? 0));
      expect(s.batches).toBe(Math.ceil(events.length / 400));
      expect(s.sent).toBe(events.length);
      // A dropped answer after the import was applied: the retry reports those events as duplicates.
      expect(s.imported + s.duplicates).toBe(events.length);
      expect(s.imported).toBeLessThan(events.length);
      const stored = target.events.list();
      expect(stored.length).toBe(events.length);
      expect(sortedIds(stored)).toEqual(sortedIds(events));
      const byId = new Map(events.map((e) => [e.id, e.raw]));
      for (const e of stored) expect(e.raw).toBe(byId.get(e.id)!);
    } finally {
      await target.stop();
    }
  });

  test("a request that times out is retried, signed again", async () => {
    // The answer comes 3 s late (after the import was applied); the nara is quick again after that.
    const target = freshNara("slow", 6, undefined, { faults: { latencyMs: 3000 } });
    const file = backupFile(raws.slice(0, 300));
    const bodies: string[] = [];
    const spy: FetchLike = async (url, init) => {
      bodies.push(new TextDecoder().decode(init.body as Uint8Array));
      return fetch(url, init);
    };
    try {
      const s = await restore(
        target,
        { inputs: [file], timeoutMs: 1000, fetch: spy, now: () => Date.now() + bodies.length * 1000 },
        {
          onRetry() {
            target.faults.latencyMs = 0; // the nara recovers
          },
        },
      );
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(s.retries).toBe(1);
      expect(bodies.length).toBe(2);
      const sig = (b: string) => /"ts":(\d+),"sig":"([^"]+)"}$/.exec(b)!.slice(1);
      expect(sig(bodies[0]!)[0]).not.toBe(sig(bodies[1]!)[0]);
      expect(sig(bodies[0]!)[1]).not.toBe(sig(bodies[1]!)[1]);
      expect(target.events.size).toBe(300);
      expect(s.imported + s.duplicates).toBe(300);
    } finally {
      await target.stop();
    }
  });

  test("a batch that keeps failing stops the restore with a --skip to resume", async () => {
    const target = freshNara("dying", 7);
    let calls = 0;
    const failAfterFirst: FetchLike = async (url, init) =>
      ++calls === 1 ? fetch(url, init) : new Response("Service Unavailable\n", { status: 503 });
    try {
      const s = await restore(target, { batchSize: 1000, retries: 2, fetch: failAfterFirst });
      expect(s.exitCode).toBe(ExitCode.partial);
      expect(s.batches).toBe(1);
      expect(s.imported).toBe(1000);
      expect(s.resumeSkip).toBe(1000);
      expect(calls).toBe(1 + 3);
      expect(s.failure?.message).toMatch(/failed 3 time/);
      expect(s.failure?.hint).toContain("--skip 1000");

      const resumed = await restore(target, { skip: 1000 });
      expect(resumed.exitCode).toBe(ExitCode.ok);
      expect(resumed.skipped).toBe(1000);
      expect(resumed.imported).toBe(events.length - 1000);
      expect(resumed.duplicates).toBe(0);
      expect(target.events.size).toBe(events.length);
    } finally {
      await target.stop();
    }
  });

  test("when the first batch never gets through, exit 4 and nothing imported", async () => {
    const target = freshNara("down", 8, undefined, { faults: { importFailEvery: 1 } });
    try {
      const s = await restore(target, { retries: 3 });
      expect(s.exitCode).toBe(ExitCode.failed);
      expect(target.stats.imports).toBe(4);
      expect(target.events.size).toBe(0);
      expect(s.imported).toBe(0);
      expect(s.failure?.message).toMatch(/503/);
    } finally {
      await target.stop();
    }
  });

  test("an interruption stops between batches and says how to resume", async () => {
    const target = freshNara("interrupted", 27);
    const stop = new AbortController();
    try {
      const s = await restore(target, { batchSize: 500, signal: stop.signal }, { onBatch: (b) => b.index === 2 && stop.abort() });
      expect(s.exitCode).toBe(ExitCode.interrupted);
      expect(s.batches).toBe(2);
      expect(target.stats.imports).toBe(2);
      expect(target.events.size).toBe(1000);
      expect(s.resumeSkip).toBe(1000);
      expect(s.failure?.hint).toContain("--skip 1000");
    } finally {
      await target.stop();
    }
  });

  test("a 404 (not a nara's import endpoint) is not retried", async () => {
    const target = freshNara("wrong-port", 9);
    try {
      const s = await restore(target, { url: `${target.url}/somewhere/else` });
      expect(s.exitCode).toBe(ExitCode.failed);
      expect(target.stats.requests).toBe(1);
      expect(s.failure?.hint).toMatch(/8080/);
    } finally {
      await target.stop();
    }
  });
});

describe("invalid input", () => {
  const good = raws.slice(0, 4);
  const badLines = [
    good[0]!,
    good[1]!,
    "this is not json",
    "",
    '{"id":"00000000000000000000000000000000","ts":1767225600123456789,"svc":"social"}',
    good[2]!,
    '{"id":"y","ts":1.7672256001234568e18,"svc":"ping","ping":{"rtt":1}}',
    "   ",
    good[3]!,
  ];

  test("every bad line is reported with its line number, and nothing is sent", async () => {
    const target = freshNara("strict", 10);
    const file = backupFile(badLines);
    const reported: { input: string; line: number; reason: string }[] = [];
    try {
      const s = await restore(target, { inputs: [file] }, { onInvalid: (b) => reported.push(b) });
      expect(s.exitCode).toBe(ExitCode.usage);
      expect(reported.map((r) => [r.input, r.line])).toEqual([
        [file, 3],
        [file, 5],
        [file, 7],
      ]);
      expect(reported[0]!.reason).toMatch(/not a JSON object/);
      expect(reported[1]!.reason).toMatch(/without its "social"/);
      expect(reported[2]!.reason).toMatch(/ts/);
      expect(s.invalid).toBe(3);
      expect(s.valid).toBe(4);
      expect(s.failure?.message).toMatch(/3 invalid/);
      expect(s.failure?.hint).toMatch(/--skip-invalid/);
      expect(target.stats.requests).toBe(0);
    } finally {
      await target.stop();
    }
  });

  test("--skip-invalid sends the rest", async () => {
    const target = freshNara("lenient", 11);
    try {
      const s = await restore(target, { inputs: [backupFile(badLines)], skipInvalid: true });
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(s.invalid).toBe(3);
      expect(s.imported).toBe(4);
      expect(sortedIds(target.events.list())).toEqual(sortedIds(events.slice(0, 4)));
    } finally {
      await target.stop();
    }
  });

  test("an xz-compressed file (zstd and gzip are read: test/io.test.ts) or a missing file is a usage error before anything is sent", async () => {
    const xz = join(dir, "backup.jsonl.xz");
    writeFileSync(xz, new Uint8Array([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0, 0, 1, 2, 3]));
    const target = freshNara("unused", 12);
    try {
      await expect(restore(target, { inputs: [xz] })).rejects.toThrow(/xz/);
      await expect(restore(target, { inputs: [join(dir, "nope.jsonl")] })).rejects.toThrow(/no such file/);
      expect(target.stats.requests).toBe(0);
    } finally {
      await target.stop();
    }
  });
});

describe("selective restore", () => {
  const expectStored = (target: SimPeer, want: SimEvent[]) => expect(sortedIds(target.events.list())).toEqual(sortedIds(want));

  test("--service", async () => {
    const target = freshNara("only-social", 13);
    try {
      const s = await restore(target, { filter: parseFilter({ service: "social,chau" }) });
      const want = events.filter((e) => e.svc === "social" || e.svc === "chau");
      expect(want.length).toBeGreaterThan(100);
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(s.filtered).toBe(events.length - want.length);
      expect(s.imported).toBe(want.length);
      expectStored(target, want);
    } finally {
      await target.stop();
    }
  });

  test("--since (inclusive) and --until (exclusive), exact to the nanosecond", async () => {
    const target = freshNara("window", 14);
    const since = events[700]!.ts;
    const until = events[1900]!.ts;
    try {
      const s = await restore(target, { filter: parseFilter({ since: String(since), until: String(until) }) });
      const want = events.filter((e) => e.ts >= since && e.ts < until);
      expect(want.length).toBeGreaterThan(1000);
      expect(s.imported).toBe(want.length);
      expect(s.filtered).toBe(events.length - want.length);
      expectStored(target, want);
    } finally {
      await target.stop();
    }
  });

  test("--nara matches emitter, actor, target, subject, observer", async () => {
    const target = freshNara("about-one", 15);
    const who = naras[1]!.name;
    try {
      const s = await restore(target, { filter: parseFilter({ nara: who }) });
      const want = events.filter((e) => e.emitter === who || e.actor === who || e.target === who);
      expect(want.length).toBeGreaterThan(100);
      expect(s.imported).toBe(want.length);
      expectStored(target, want);
    } finally {
      await target.stop();
    }
  });

  test("--dry-run validates, filters and batches, and sends nothing", async () => {
    const target = freshNara("dry", 16);
    try {
      const s = await restore(target, { dryRun: true, batchSize: 700, filter: parseFilter({ service: "ping,hey-there" }) });
      const want = events.filter((e) => e.svc === "ping" || e.svc === "hey-there");
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(target.stats.requests).toBe(0);
      expect(s.toSend).toBe(want.length);
      expect(s.batchesPlanned).toBe(Math.ceil(want.length / 700));
      expect(s.batches).toBe(s.batchesPlanned);
      expect(s.sent).toBe(0);
      expect(s.imported).toBe(0);
      expect(s.services).toEqual({
        ping: want.filter((e) => e.svc === "ping").length,
        "hey-there": want.filter((e) => e.svc === "hey-there").length,
      });
    } finally {
      await target.stop();
    }
  });
});

describe("inputs", () => {
  test("several files are merged by ID, and a signed copy beats an unsigned one", async () => {
    const signed = events.find((e) => e.signed && e.svc === "social")!;
    const unsigned = signed.raw.replace(/,"emitter":"[^"]*"/, "").replace(/,"emitter_id":"[^"]*"/, "").replace(/,"sig":"[^"]*"/, "");
    expect(unsigned).not.toBe(signed.raw);
    const others = events.filter((e) => e !== signed);
    const a = backupFile([unsigned, ...others.slice(0, 2000).map((e) => e.raw)]);
    const b = backupFile(others.slice(1000).map((e) => e.raw).concat(signed.raw));
    const target = freshNara("merged", 17);
    try {
      const s = await restore(target, { inputs: [a, b] });
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(s.duplicatesInInput).toBe(1000 + 1);
      expect(s.unique).toBe(events.length);
      expect(s.imported).toBe(events.length);
      expect(target.events.get(signed.id)?.raw).toBe(signed.raw);
    } finally {
      await target.stop();
    }
  });

  test("hey-there events are sent before all others", async () => {
    const target = freshNara("order", 18);
    const order: string[] = [];
    const spy: FetchLike = async (url, init) => {
      const body = new TextDecoder().decode(init.body as Uint8Array);
      for (const raw of rawEventsOf(body) ?? []) order.push(/"svc":"([^"]*)"/.exec(raw)![1]!);
      return fetch(url, init);
    };
    // Hey-there events placed last in the file.
    const file = backupFile([...events.filter((e) => e.svc !== "hey-there"), ...events.filter((e) => e.svc === "hey-there")].map((e) => e.raw));
    try {
      const s = await restore(target, { inputs: [file], fetch: spy, batchSize: 250 });
      expect(s.exitCode).toBe(ExitCode.ok);
      const hey = events.filter((e) => e.svc === "hey-there").length;
      expect(hey).toBeGreaterThan(10);
      expect(order.length).toBe(events.length);
      expect(order.slice(0, hey).every((svc) => svc === "hey-there")).toBe(true);
      expect(order.slice(hey).includes("hey-there")).toBe(false);
      expect(s.warnings).toBe(0);
    } finally {
      await target.stop();
    }
  });

  test("stdin is spooled to a private temp file that is removed afterwards", async () => {
    const spool = mkdtempSync(join(dir, "spool-"));
    const target = freshNara("piped", 19);
    let mode = -1;
    const bytes = readFileSync(allFile);
    const stdin = new ReadableStream<Uint8Array>({
      start(c) {
        // In uneven chunks, as a pipe delivers them.
        for (let i = 0; i < bytes.length; i += 65_521) c.enqueue(new Uint8Array(bytes.subarray(i, i + 65_521)));
        c.close();
      },
    });
    try {
      const s = await restore(
        target,
        { inputs: [], stdin, tmpDir: spool },
        {
          onPlan() {
            const [d] = readdirSync(spool);
            mode = statSync(join(spool, d!, "stdin.jsonl")).mode & 0o777;
          },
        },
      );
      expect(s.exitCode).toBe(ExitCode.ok);
      expect(s.inputs[0]!.name).toBe("stdin");
      expect(s.imported).toBe(events.length);
      expect(mode).toBe(0o600);
      expect(readdirSync(spool)).toEqual([]);
    } finally {
      await target.stop();
    }
  });
});

describe("the command", () => {
  const run = (args: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) =>
    runCli(["restore-events", ...args], { env: { HOME: process.env.HOME ?? "", ...opts.env }, stdin: opts.stdin ? Bun.file(opts.stdin) : undefined });
  const small = backupFile(raws.slice(0, 300), "small.jsonl");

  test("the Go tool's spelling: -nara-url URL -soul S -verbose < backup", async () => {
    const target = freshNara("cli-a", 20);
    try {
      const r = await run(["-nara-url", target.url, "-soul", target.nara.soul, "-verbose", "-batch-size", "100"], { stdin: small });
      expect(r.stderr).toContain(`Successfully imported events to ${target.url}`);
      expect(r.stderr).toMatch(/^ {2}Imported: 300$/m);
      expect(r.stderr).toMatch(/^ {2}Duplicates: 0$/m);
      expect(r.stderr).toMatch(/batch 3\/3: 100 events/);
      expect(r.stderr).toMatch(/NARA_SOUL/); // the hint about --soul on the command line
      expect(r.stderr).toMatch(/bond was not checked|not checked/);
      expect(r.stderr).not.toContain(target.nara.soul);
      expect(r.stdout).toBe("");
      expect(r.code).toBe(0);
      expect(target.events.size).toBe(300);
    } finally {
      await target.stop();
    }
  });

  test("--json prints one summary object on stderr", async () => {
    const target = freshNara("cli-b", 21);
    try {
      const r = await run(["--nara-url", target.url, "--name", target.name, "--json", "--service", "social", small], {
        env: { NARA_SOUL: target.nara.soul },
      });
      expect(r.code).toBe(0);
      expect(r.stdout).toBe("");
      const lines = r.stderr.trim().split("\n");
      const j = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
      const socials = events.slice(0, 300).filter((e) => e.svc === "social").length;
      for (const k of ["imported", "duplicates", "warnings", "filtered", "invalid", "batches", "sent"]) expect(k in j).toBe(true);
      expect(j.imported).toBe(socials);
      expect(j.filtered).toBe(300 - socials);
      expect(j.sent).toBe(socials);
      expect(j.invalid).toBe(0);
      expect(j.batches).toBe(1);
      expect(j.exitCode).toBe(0);
    } finally {
      await target.stop();
    }
  });

  test("a wrong soul: exit 6, the hint names the soul's key and nara", async () => {
    const target = freshNara("cli-c", 22);
    const other = makeNara("someone-else", sha256("someone-else"));
    try {
      const r = await run(["--nara-url", target.url, "--name", other.name, small], { env: { NARA_SOUL: other.soul } });
      expect(r.code).toBe(ExitCode.refused);
      expect(r.stderr).toMatch(/^error: .*403/m);
      expect(r.stderr).toContain(other.publicKey);
      expect(r.stderr).toContain(other.naraId);
      expect(r.stderr).toMatch(/Imported: 0/);
      expect(r.stderr).not.toContain(other.soul);
      expect(target.events.size).toBe(0);
    } finally {
      await target.stop();
    }
  });

  test("a soul bonded to another name is refused before anything is sent", async () => {
    const target = freshNara("cli-d", 23);
    try {
      const r = await run(["--nara-url", target.url, "--name", "not-its-name", small], { env: { NARA_SOUL: target.nara.soul } });
      expect(r.code).toBe(ExitCode.usage);
      expect(r.stderr).toMatch(/bonded/);
      expect(target.stats.requests).toBe(0);
    } finally {
      await target.stop();
    }
  });

  test("invalid lines: listed as FILE:LINE, exit 2", async () => {
    const target = freshNara("cli-e", 24);
    const bad = backupFile([raws[0]!, "{", raws[1]!, '{"ts":1,"svc":"zine"}']);
    try {
      const r = await run(["--nara-url", target.url, bad], { env: { NARA_SOUL: target.nara.soul } });
      expect(r.code).toBe(ExitCode.usage);
      expect(r.stderr).toContain(`${bad}:2: `);
      expect(r.stderr).toContain(`${bad}:4: `);
      expect(r.stderr).not.toContain(`${bad}:1:`);
      expect(r.stderr).toMatch(/--skip-invalid/);
      expect(target.stats.requests).toBe(0);
    } finally {
      await target.stop();
    }
  });

  test("--dry-run reports per service and batch, sends nothing", async () => {
    const target = freshNara("cli-f", 25);
    try {
      const r = await run(["--nara-url", target.url, "--dry-run", "--batch-size", "64", small], { env: { NARA_SOUL: target.nara.soul } });
      expect(r.code).toBe(0);
      expect(r.stderr).toContain("Dry run: nothing was sent");
      expect(r.stderr).toMatch(/Would send: 300 events in 5 batch\(es\)/);
      const pings = events.slice(0, 300).filter((e) => e.svc === "ping").length;
      expect(r.stderr).toContain(`ping: ${pings}`);
      expect(target.stats.requests).toBe(0);
    } finally {
      await target.stop();
    }
  });

  test("several files on the command line", async () => {
    const target = freshNara("cli-g", 26);
    const a = backupFile(raws.slice(0, 200));
    const b = backupFile(raws.slice(100, 300));
    try {
      const r = await run(["--nara-url", target.url, a, b], { env: { NARA_SOUL: target.nara.soul } });
      expect(r.stderr).toMatch(/Imported: 300/);
      expect(r.stderr).toMatch(/Repeated in input: 100/);
      expect(r.code).toBe(0);
    } finally {
      await target.stop();
    }
  });
});
