/**
 * dump-stash and restore-stash from the command line, against simulated
 * naras with the real stash routes (test/sim/stash.ts).
 */
import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decryptBytes } from "./helpers/encrypt.ts";
import { generateNaras } from "./sim/generate.ts";
import { startPeer, type SimPeer } from "./sim/peer.ts";

const naras = generateNaras(5, 314);
const owner = naras[0]!;
const other = naras[1]!;
const dir = mkdtempSync(join(tmpdir(), "nara-stash-cli-"));
let peer: SimPeer;
let work: string;
const peers: SimPeer[] = [];
afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  peer = startPeer({ nara: owner, naras });
  peers.push(peer);
  work = mkdtempSync(join(dir, "t-"));
});

type Result = { code: number; stdout: string; stderr: string; raw: Uint8Array };

const cli = (args: string[], opts: { soul?: string; stdin?: Uint8Array<ArrayBuffer> } = {}): Promise<Result> =>
  runCli(args, { cwd: work, env: { NARA_SOUL: opts.soul ?? owner.soul }, stdin: opts.stdin ? new Blob([opts.stdin]) : undefined });

const seed = () => owner.identity.seedBytes();
const stashOf = (text: string) => JSON.parse(text) as { timestamp: number; data: unknown };
const put = (body: string) => fetch(`${peer.url}/api/stash/update`, { method: "POST", body });

describe("dump-stash", () => {
  test("no stash: exit 4, a hint about --wait, no file written", async () => {
    const r = await cli(["dump-stash", "--nara-url", peer.url, "--name", owner.name]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("the nara has no stash");
    expect(r.stderr).toContain("--wait 30s");
    expect(readdirSync(work)).toEqual([]);
  });

  test("by default an encrypted NAME.stash, mode 0600, holding {timestamp, data} as the nara shows it", async () => {
    await put('{"z": 1, "big": 12345678901234567890, "list": [true, null]}');
    const r = await cli(["dump-stash", "-nara-url", peer.url, "-name", owner.name]);
    expect(r.code).toBe(0);
    const file = join(work, `${owner.name}.stash`);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readdirSync(work)).toEqual([`${owner.name}.stash`]);
    const bytes = readFileSync(file);
    expect(bytes.subarray(0, 8).toString()).toBe("NARABKE1");
    expect(bytes.includes("12345678901234567")).toBe(false);
    const record = stashOf(new TextDecoder().decode(decryptBytes(seed(), bytes)));
    expect(record).toEqual({ timestamp: peer.stash.timestamp!, data: { big: 12345678901234567000, list: [true, null], z: 1 } });
    expect(r.stdout).toBe("");
    expect(r.stdout + r.stderr).not.toContain(owner.soul);
  });

  test("--plain -o - writes the record to stdout only; --json summarises on stderr", async () => {
    await put('{"a":"b"}');
    const r = await cli(["dump-stash", "--nara-url", peer.url, "--name", owner.name, "--plain", "-o", "-", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`{"timestamp":${peer.stash.timestamp},"data":{"a":"b"}}\n`);
    expect(JSON.parse(r.stderr.trim().split("\n").at(-1)!)).toMatchObject({ output: "stdout", encrypted: false, keys: 1, confidants: 3 });
    expect(readdirSync(work)).toEqual([]);
  });

  test("--wait polls until the confidants push the stash back after a restart", async () => {
    await put('{"back":1}');
    peer.stash.restart(2);
    const r = await cli(["dump-stash", "--nara-url", peer.url, "--name", owner.name, "--plain", "-o", "s.json", "--wait", "30s"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("no stash yet");
    expect(stashOf(readFileSync(join(work, "s.json"), "utf8")).data).toEqual({ back: 1 });
    expect(peer.stash.stats.status).toBe(2);
  });

  test("a stash that is not a JSON object cannot be read: exit 4, nothing written", async () => {
    peer.stash.set("[1,2]");
    const r = await cli(["dump-stash", "--nara-url", peer.url, "--name", owner.name, "-o", "x.stash"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("not a JSON object");
    expect(readdirSync(work)).toEqual([]);
  });

  test("a nara without -serve-ui (404) gets a hint; a soul of another name fails before any request", async () => {
    peer.stash.serveUi = false;
    const r = await cli(["dump-stash", "--nara-url", peer.url, "--name", owner.name]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("-serve-ui");
    const before = peer.stats.requests;
    const bad = await cli(["dump-stash", "--nara-url", peer.url, "--name", owner.name], { soul: other.soul });
    expect(bad.code).toBe(2);
    expect(peer.stats.requests).toBe(before);
  });
});

describe("restore-stash", () => {
  async function backup(data: string, args: string[] = []): Promise<string> {
    const donor = startPeer({ nara: owner, naras });
    peers.push(donor);
    await fetch(`${donor.url}/api/stash/update`, { method: "POST", body: data });
    const file = join(work, `backup-${peers.length}.stash`);
    const r = await cli(["dump-stash", "--nara-url", donor.url, "--name", owner.name, "-o", file, ...args]);
    expect(r.code).toBe(0);
    return file;
  }

  test("into a nara without a stash: sent, distributed, read back (encrypted file)", async () => {
    const file = await backup('{"notes":["a","b"],"n":3}');
    const r = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, file, "--json"]);
    expect(r.code).toBe(0);
    expect(peer.stash.raw).toBe('{"n":3,"notes":["a","b"]}');
    expect(peer.stash.confidants).toHaveLength(3);
    expect(JSON.parse(r.stderr.trim().split("\n").at(-1)!)).toEqual({ outcome: "restored", replaced: false, attempts: 1, confidants: 3, encrypted: true });
  });

  test("the same stash already there: nothing sent; a plain file from stdin works too", async () => {
    const file = await backup('{"k":"v"}', ["--plain"]);
    await put('{"k": "v"}');
    const updates = peer.stash.stats.updates;
    const r = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, "-"], { stdin: new Uint8Array(readFileSync(file)) });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("nothing sent");
    expect(peer.stash.stats.updates).toBe(updates);
  });

  test("a different stash: exit 2 and the difference without --force, replaced with it", async () => {
    const file = await backup('{"a":1,"b":2}');
    await put('{"b":3,"c":4}');
    const r = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('1 key only in the backup ("a"); 1 key only on the nara ("c"); 1 key with other values ("b")');
    expect(peer.stash.raw).toBe('{"b":3,"c":4}');
    const forced = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, file, "--force"]);
    expect(forced.code).toBe(0);
    expect(JSON.parse(peer.stash.raw!)).toEqual({ a: 1, b: 2 });
  });

  test("a wrong soul fails before the network, for the name and for the file's encryption", async () => {
    const file = await backup('{"a":1}');
    const before = peer.stats.requests;
    const r = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, file], { soul: other.soul });
    expect(r.code).toBe(2);
    // The soul matches its own name but did not encrypt the backup.
    const r2 = await cli(["restore-stash", "--nara-url", peer.url, "--name", other.name, file], { soul: other.soul });
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain("another soul");
    expect(peer.stats.requests).toBe(before);
  });

  test("a tampered encrypted file is refused before the network", async () => {
    const file = await backup('{"a":1}');
    const bytes = readFileSync(file);
    bytes[bytes.length - 3]! ^= 0x40;
    writeFileSync(join(work, "bad.stash"), bytes);
    const before = peer.stats.requests;
    const r = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, "bad.stash"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("error:");
    expect(peer.stats.requests).toBe(before);
  });

  test("not a stash backup (an event backup, a huge file): exit 2 with a clear error", async () => {
    writeFileSync(join(work, "events.jsonl"), '{"id":"a","ts":1}\n{"id":"b","ts":2}\n');
    const r = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, "events.jsonl"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("restore-events");
    writeFileSync(join(work, "huge.stash"), "");
    truncateSync(join(work, "huge.stash"), 64 << 20);
    const h = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, "huge.stash"]);
    expect(h.code).toBe(2);
    expect(h.stderr).toContain("larger than 16 MiB");
    expect(peer.stash.stats.status).toBe(0);
  });

  test("confidants never online: retried with backoff within --timeout, then exit 4", async () => {
    const file = await backup('{"a":1}');
    peer.stash.onlinePeers = 2;
    const r = await cli(["restore-stash", "--nara-url", peer.url, "--name", owner.name, file, "--timeout", "800ms"]);
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("only found 2");
    expect(peer.stash.stats.updates).toBeGreaterThanOrEqual(1);
    expect(existsSync(file)).toBe(true);
  });
});
