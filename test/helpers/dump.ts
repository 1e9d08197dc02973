/** A dump by the library into a scratch directory of the test file, with what it logged. */
import { afterAll, beforeAll } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dumpEvents, type DumpOptions, type DumpSummary } from "../../src/dump/dump.ts";
import type { FetchSettings } from "../../src/dump/messages.ts";
import { fetchSettings } from "../../src/dump/plan.ts";
import type { SimMesh } from "../sim/mesh.ts";

export type Scratch = {
  /** The directory (made before the file's tests, removed after them). */
  readonly dir: string;
  /** A path in it no other call returned: `${stem}-${n}${ext}`. */
  fresh(stem: string, ext?: string): string;
};

export function scratchDir(prefix: string): Scratch {
  let dir = "";
  let seq = 0;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    get dir() {
      return dir;
    },
    fresh: (stem, ext = "") => join(dir, `${stem}-${++seq}${ext}`),
  };
}

/** Quick retries, small pages, a timeout no healthy test reaches. */
export const testSettings = (over: Partial<FetchSettings> = {}): FetchSettings =>
  fetchSettings({ timeoutMs: 20_000, pageSize: 100, backoffMs: 10, maxBackoffMs: 100, ...over });

export type DumpRun = { summary: DumpSummary; text: string | undefined; logs: string[]; out: string };

/** Dumps the mesh's peers to `out`; `text` is the file (undefined when none was written). */
export async function dumpMesh(
  mesh: Pick<SimMesh, "peers" | "client">,
  out: string,
  opts: Omit<DumpOptions, "peers" | "name" | "soul" | "output">,
): Promise<DumpRun> {
  const logs: string[] = [];
  const summary = await dumpEvents(
    {
      peers: mesh.peers.map((p) => ({ name: p.name, url: p.url })),
      name: mesh.client.name,
      soul: mesh.client.soul,
      ...opts,
      output: out,
    },
    { onLog: (peer, level, message) => logs.push(`${level} ${peer}: ${message}`), onWarn: (m) => logs.push(`warn ${m}`) },
  );
  return { summary, text: existsSync(out) ? readFileSync(out, "utf8") : undefined, logs, out };
}

/** What a correct dump of these events is: each raw once, ordered by (ts as an integer, id). */
export function expectedDump(events: readonly { id: string; ts: bigint; raw: string }[]): string {
  const byId = new Map(events.map((e) => [e.id, e]));
  const sorted = [...byId.values()].sort((a, b) => (a.ts < b.ts ? -1 : a.ts > b.ts ? 1 : a.id < b.id ? -1 : 1));
  return sorted.map((e) => `${e.raw}\n`).join("");
}
