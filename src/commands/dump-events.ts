import { existsSync, realpathSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { defineCommand } from "citty";
import { discoveryArgs, discoveryOptions, identityArgs, outputArgs, outputOptions, parseDuration, lineArgs, parseIntArg, parseMaxLineBytes, parseSize } from "../cli/args.ts";
import { createLog, type Log } from "../cli/log.ts";
import { createProgress, formatBytes, formatDuration, formatRate, progressEnabled } from "../cli/progress.ts";
import { dumpEvents, type DumpSummary } from "../dump/dump.ts";
import { ExitCode, usageError } from "../errors.ts";
import { loadIdentity } from "../identity/load.ts";
import { discoverPeers, noPeersError } from "../mesh/discovery.ts";
import { parseCompression } from "../io/output.ts";
import { defaultMaxMemory } from "../io/tempfile.ts";
import { meshArgs, meshJson, withMesh, type MeshContext } from "../cli/mesh.ts";

/** Do two paths name one file (following symlinks when the file exists)? */
function samePath(a: string, b: string): boolean {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : resolve(p));
  return real(a) === real(b);
}

/** One worker per spare core: on small machines the main thread's Map work competes with the scanners. */
export const defaultWorkers = (): number => Math.max(1, Math.min(4, availableParallelism() - 1));

export default defineCommand({
  meta: {
    name: "dump-events",
    description: "Fetch every peer's event ledger and write one deduplicated, sorted JSON Lines backup",
  },
  args: {
    ...identityArgs,
    ...discoveryArgs,
    ...meshArgs,
    output: { type: "string", alias: "o", description: "write to FILE (atomically) instead of stdout; FILE.zst / FILE.gz are compressed", valueHint: "file" },
    compress: { type: "string", description: "zstd, gzip or none (default: by the -o extension, none for stdout)", valueHint: "kind" },
    encrypt: { type: "boolean", description: "encrypt the backup with a key derived from the soul (restore needs the same soul)" },
    timeout: { type: "string", default: "3m", description: "time allowed for each peer, all its pages and retries", valueHint: "duration" },
    concurrency: { type: "string", default: "64", description: "peers fetched at the same time", valueHint: "n" },
    workers: { type: "string", description: `fetch worker threads (default: cores - 1, here ${defaultWorkers()})`, valueHint: "n" },
    "page-size": { type: "string", default: "5000", description: "events per page, 1..5000", valueHint: "n" },
    "max-inflight": {
      type: "string",
      default: "8M",
      description: "page bytes held in memory (arrived, not yet handed on), all peers together, before requests wait",
      valueHint: "size",
    },
    "max-page-bytes": { type: "string", default: "64M", description: "a sync page larger than this fails its peer (a real page is 1-10 MB)", valueHint: "size" },
    "idle-timeout": { type: "string", default: "30s", description: "a response silent this long is abandoned and retried (0: never)", valueHint: "duration" },
    "max-memory": {
      type: "string",
      description: `memory for events waiting to be written (default ${formatBytes(defaultMaxMemory())} here); past it they spill to temporary files`,
      valueHint: "size",
    },
    "temp-dir": { type: "string", description: "where the stdout spool and memory spills go (default $TMPDIR or /tmp)", valueHint: "dir" },
    "streams-per-peer": { type: "string", default: "3", description: "requests to one peer at once, each paging its own range of its history", valueHint: "n" },
    "ids-from": { type: "string", description: "skip events whose ids FILE already holds (for >> appends)", valueHint: "file" },
    ...lineArgs,
    strict: { type: "boolean", description: "drop peers whose response signatures do not verify" },
    ...outputArgs,
    json: { type: "boolean", description: "print the summary as one JSON object on stderr" },
  },
  async run({ args }) {
    const out = outputOptions(args);
    // With --json the summary is the stderr output scripts read: only errors besides it, unless --verbose.
    const log = createLog({ ...out, quiet: out.quiet || (out.json && !out.verbose) });
    const settings = {
      timeoutMs: parseDuration(args.timeout, "--timeout"),
      pageSize: parseIntArg(args["page-size"], "--page-size", { min: 1, max: 5000 }),
      strict: args.strict === true,
      backoffMs: 250,
      maxBackoffMs: 5_000,
      inflightBytes: parseSize(args["max-inflight"], "--max-inflight"),
      maxPageBytes: parseSize(args["max-page-bytes"], "--max-page-bytes"),
      idleMs: parseDuration(args["idle-timeout"], "--idle-timeout"),
      streamsPerPeer: parseIntArg(args["streams-per-peer"], "--streams-per-peer", { min: 1, max: 16 }),
    };
    const maxMemory = args["max-memory"] === undefined ? undefined : parseSize(args["max-memory"], "--max-memory");
    const concurrency = parseIntArg(args.concurrency, "--concurrency", { min: 1 });
    const workers = args.workers === undefined ? defaultWorkers() : parseIntArg(args.workers, "--workers", { min: 1, max: 64 });
    const compress = args.compress === undefined ? undefined : parseCompression(args.compress);
    const toStdout = args.output === undefined || args.output === "-";
    if (toStdout && process.stdout.isTTY && (args.encrypt === true || (compress ?? "none") !== "none")) {
      throw usageError("refusing to write compressed or encrypted data to a terminal", "redirect stdout to a file, or pass -o FILE");
    }
    if (!toStdout && args["ids-from"] !== undefined && samePath(args.output!, args["ids-from"])) {
      throw usageError(
        `-o ${args.output} would replace the --ids-from file with only the events it does not hold`,
        "append to it with >> (stdout), or write a new file and combine the two with nara-backup merge",
      );
    }
    const { identity, soul } = loadIdentity(args, log);

    return withMesh(args, log, (mesh) => dump(mesh));

    async function dump(mesh: MeshContext): Promise<number> {
      const found = await discoverPeers(discoveryOptions(args), mesh.session);
      for (const s of found.skipped) log.info(`skipped ${s.name}: ${s.reason}`);
      if (found.peers.length === 0) throw noPeersError(found);
      if (mesh.session) log.info(`connected: ${found.peers.length} nara(s)`);
      log.info(`backing up ${found.peers.length} peer(s) as ${identity.name}`);

      const progress = createProgress({ enabled: progressEnabled(out) });
      let events = 0;
      let bytes = 0;
      const started = performance.now();
      const draw = (p: { peersDone: number; peersTotal: number; fraction: number }) =>
        progress.update({
          label: "peers",
          done: p.peersDone,
          total: p.peersTotal,
          fraction: p.fraction,
          extra: `· ${events.toLocaleString("en")} events fetched (${formatRate((events * 1000) / Math.max(1, performance.now() - started), "events")}) · ${formatBytes(bytes)}`,
        });

      const summary = await dumpEvents(
        {
          peers: found.peers.map((p) => ({ name: p.name, url: p.url })),
          name: identity.name,
          soul,
          settings: { ...settings, proxy: mesh.proxy },
          workers,
          concurrency,
          output: args.output,
          idsFrom: args["ids-from"],
          tempDir: args["temp-dir"],
          maxMemory,
          maxLineBytes: parseMaxLineBytes(args),
          compress,
          // The soul the dump acts as owns the backup: restore decrypts with it (or --backup-soul-file).
          encryptSeed: args.encrypt === true ? identity.seedBytes() : undefined,
          decryptSoul: () => ({ seed: identity.seedBytes() }),
        },
        {
          onPage(page, p) {
            events += page.events;
            bytes += page.bytes;
            log.debug(`${page.peer}: page ${page.page}, ${page.events} new event(s)`);
            draw(p);
          },
          onLog(peer, level, message) {
            progress.clear();
            if (level === "warn") log.warn(`${peer}: ${message}`);
            else log.debug(`${peer}: ${message}`);
          },
          onPeerDone(r, p) {
            progress.clear();
            const line = `${r.name}: ${r.status}, ${r.pages} page(s)${r.streams > 1 ? ` by ${r.streams} streams` : ""}, ${r.events} event(s) in ${r.seconds.toFixed(1)} s`;
            if (r.status === "ok") log.debug(line);
            else log.warn(`${line}: ${r.error}${r.hint ? ` (${r.hint})` : ""}`);
            draw(p);
          },
          onWarn: (m) => log.warn(m),
        },
      );
      progress.stop();
      const died = mesh.session?.died();
      // The proxy went with the daemon: say so beside the peers' own errors.
      if (died) for (const p of summary.peers) if (p.status !== "ok") p.error = `${p.error ?? "failed"} (the private tailscaled ${died} mid-dump)`;
      report(summary, log, out.json, meshJson(mesh, found.peers.map((p) => p.name)));
      return summary.exitCode;
    }
  },
});

function report(s: DumpSummary, log: Log, json: boolean, mesh: ReturnType<typeof meshJson> = null): void {
  if (json) {
    process.stderr.write(`${JSON.stringify({ ...summaryJson(s), mesh })}\n`);
    return;
  }
  const ok = s.peers.filter((p) => p.status === "ok").length;
  const line = `${s.written.toLocaleString("en")} events from ${ok}/${s.peers.length} peers to ${s.output} in ${formatDuration(s.seconds * 1000)}`;
  const details =
    `fetched ${s.fetched}, unique ${s.unique}, duplicates ${s.duplicates}` +
    (s.replaced ? ` (${s.replaced} replaced by a signed copy)` : "") +
    (s.existing ? `, already in --ids-from ${s.existing}` : "") +
    (s.spilledRuns ? `; ${s.spilledEvents} spilled to ${s.spilledRuns} temporary run(s) (--max-memory)` : "");
  if (s.exitCode === ExitCode.ok) log.success(line);
  else log.warn(`${s.exitCode === ExitCode.failed ? "nothing fetched" : "partial backup"}: ${line}`);
  log.info(details);
  for (const p of s.peers) if (p.status !== "ok") log.warn(`${p.name} (${p.url}) ${p.status}: ${p.error ?? ""}`);
}

/** The `--json` summary; its keys are part of the CLI's contract (README). */
export function summaryJson(s: DumpSummary) {
  return {
    complete: s.exitCode === ExitCode.ok,
    exitCode: s.exitCode,
    output: s.output,
    peers: s.peers.map((p) => ({
      name: p.name,
      address: p.url,
      status: p.status,
      pages: p.pages,
      streams: p.streams,
      events: p.events,
      bytes: p.bytes,
      retries: p.retries,
      signatures: p.signatures,
      seconds: Number(p.seconds.toFixed(3)),
      error: p.error ?? null,
      hint: p.hint ?? null,
      warnings: p.warnings,
    })),
    fetched: s.fetched,
    unique: s.unique,
    written: s.written,
    duplicates: s.duplicates,
    replaced: s.replaced,
    existing: s.existing,
    late: s.late,
    spilled: s.spilledEvents,
    spillRuns: s.spilledRuns,
    bytes: s.bytes,
    seconds: Number(s.seconds.toFixed(3)),
  };
}
