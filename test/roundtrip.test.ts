/**
 * Every storage combination end to end, as a user runs it:
 * dump-events -> verify -> merge -> restore-events into a fresh nara, for
 * plain, .zst and .gz, each encrypted or not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cli as runCli } from "./helpers/cli.ts";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KNOWN_SERVICES } from "../src/events/id.ts";
import { generateNaras } from "./sim/generate.ts";
import { startMesh, type SimMesh } from "./sim/mesh.ts";
import { startPeer } from "./sim/peer.ts";

let dir: string;
let mesh: SimMesh;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "nara-roundtrip-"));
  mesh = await startMesh({ peers: 3, events: 800, seed: 77, generate: { sharedTsRate: 0.3, unknownRate: 0.02 } });
});
afterAll(async () => {
  await mesh.stop();
  rmSync(dir, { recursive: true, force: true });
});

const cli = (args: string[], env: Record<string, string>) => runCli(args, { cwd: dir, env });

const expectedLines = () =>
  [...mesh.allEvents].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1)).map((e) => e.raw);

describe.each([
  ["plain", ""],
  ["zstd", ".zst"],
  ["gzip", ".gz"],
])("%s", (_, ext) => {
  test.each([false, true])("encrypted: %p — dump, verify, merge, restore", async (encrypt) => {
    const owner = { NARA_SOUL: mesh.client.soul };
    const enc = encrypt ? ["--encrypt"] : [];
    const full = join(dir, `full${ext}${encrypt ? ".enc" : ""}`);
    const part = join(dir, `part${ext}${encrypt ? ".enc" : ""}`);
    const merged = join(dir, `merged${ext}${encrypt ? ".enc" : ""}`);

    // Two backups: the whole mesh, and one peer alone (a subset with the same bytes).
    const one = mesh.peers[0]!;
    expect((await cli(["dump-events", "--name", mesh.client.name, "--peers", mesh.peersArg, "-o", full, ...enc], owner)).code).toBe(0);
    expect((await cli(["dump-events", "--name", mesh.client.name, "--peers", `${one.name}=${one.hostname}:${one.port}`, "-o", part, ...enc], owner)).code).toBe(0);
    const head = readFileSync(full).subarray(0, 8);
    if (encrypt) expect(new TextDecoder().decode(head)).toBe("NARABKE1");
    else if (ext === ".zst") expect([...head.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
    else if (ext === ".gz") expect([...head.subarray(0, 2)]).toEqual([0x1f, 0x8b]);
    else expect(readFileSync(full, "utf8")).toBe(expectedLines().map((l) => `${l}\n`).join(""));

    const verified = await cli(["verify", full, "--require-sorted", "--json"], owner);
    expect(verified.code).toBe(0);
    const report = JSON.parse(verified.stdout) as { total: { events: number; ok: number }; unknownServices: Record<string, number> };
    const unknown = Object.values(report.unknownServices).reduce((a, b) => a + b, 0);
    expect(unknown).toBe(mesh.allEvents.filter((e) => !KNOWN_SERVICES.has(e.svc)).length);
    expect(report.total.events + unknown).toBe(mesh.allEvents.length);
    // Every signed event checks out (the mesh's hey-there events give the keys).
    expect(report.total.ok).toBe(mesh.allEvents.filter((e) => KNOWN_SERVICES.has(e.svc) && e.signed).length);

    expect((await cli(["merge", part, full, "-o", merged, ...enc], owner)).code).toBe(0);
    // Plain text of the merge, through the same reader every command uses.
    const plain = await cli(["merge", merged], owner);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toBe(expectedLines().map((l) => `${l}\n`).join(""));

    const fresh = startPeer({
      nara: generateNaras(9, 1000 + ext.length + (encrypt ? 1 : 0))[8]!,
      naras: mesh.naras,
      knownKeys: { [mesh.client.name]: mesh.client.publicKey },
    });
    try {
      // The target signs with its own soul; the backup's owner decrypts.
      const restored = await cli(["restore-events", "--nara-url", fresh.url, "--name", fresh.name, merged, "--json"], {
        NARA_SOUL: fresh.nara.soul,
        NARA_BACKUP_SOUL: mesh.client.soul,
      });
      expect(restored.code).toBe(0);
      // Real naras refuse events of services they do not know (counted as duplicates): all the others land, as they were.
      const known = mesh.allEvents.filter((e) => KNOWN_SERVICES.has(e.svc));
      expect(known.length).toBeLessThan(mesh.allEvents.length);
      const summary = JSON.parse(restored.stderr.trim().split("\n").at(-1)!);
      expect(summary.sent).toBe(mesh.allEvents.length);
      expect(summary.imported).toBe(known.length);
      expect(new Set(fresh.events.list().map((e) => e.raw))).toEqual(new Set(known.map((e) => e.raw)));
    } finally {
      await fresh.stop();
    }
  });
});
