import { defineCommand } from "citty";
import { discoveryArgs, discoveryOptions, identityArgs, outputArgs, parseDuration, lineArgs, parseIntArg, parseMaxLineBytes, parseSize } from "../cli/args.ts";
import { exitOnInterrupt } from "../cli/signals.ts";
import { meshArgs, meshJson, withMesh } from "../cli/mesh.ts";
import { formatBytes } from "../cli/progress.ts";
import { dumpHooks, interruptedMessage, reportDump } from "../cli/render/dump.ts";
import { commandSetup } from "../cli/setup.ts";
import { dumpEvents, type DumpSummary } from "../dump/dump.ts";
import { checkDestination, DEFAULT_CONCURRENCY, DEFAULT_PAGE_SIZE, defaultWorkers, fetchSettings } from "../dump/plan.ts";
import { loadIdentity } from "../identity/load.ts";
import { parseCompression } from "../io/output.ts";
import { defaultMaxMemory } from "../io/tempfile.ts";
import { resolvePeers } from "../mesh/discovery.ts";

export { defaultWorkers };

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
    concurrency: { type: "string", default: `${DEFAULT_CONCURRENCY}`, description: "peers fetched at the same time", valueHint: "n" },
    workers: { type: "string", description: `fetch worker threads (default: cores - 1, here ${defaultWorkers()})`, valueHint: "n" },
    "page-size": { type: "string", default: `${DEFAULT_PAGE_SIZE}`, description: "events per page, 1..5000", valueHint: "n" },
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
    const { out, log, progress: createProgress } = commandSetup(args);
    const settings = fetchSettings({
      timeoutMs: parseDuration(args.timeout, "--timeout"),
      pageSize: parseIntArg(args["page-size"], "--page-size", { min: 1, max: 5000 }),
      strict: args.strict === true,
      inflightBytes: parseSize(args["max-inflight"], "--max-inflight"),
      maxPageBytes: parseSize(args["max-page-bytes"], "--max-page-bytes"),
      idleMs: parseDuration(args["idle-timeout"], "--idle-timeout"),
      streamsPerPeer: parseIntArg(args["streams-per-peer"], "--streams-per-peer", { min: 1, max: 16 }),
    });
    const maxMemory = args["max-memory"] === undefined ? undefined : parseSize(args["max-memory"], "--max-memory");
    const concurrency = parseIntArg(args.concurrency, "--concurrency", { min: 1 });
    const workers = args.workers === undefined ? defaultWorkers() : parseIntArg(args.workers, "--workers", { min: 1, max: 64 });
    const compress = args.compress === undefined ? undefined : parseCompression(args.compress);
    checkDestination({ output: args.output, idsFrom: args["ids-from"], compress, encrypt: args.encrypt === true, stdoutIsTTY: Boolean(process.stdout.isTTY) });
    const { identity, soul } = loadIdentity(args, log);

    return withMesh(args, log, async (mesh) => {
      const found = await resolvePeers(discoveryOptions(args), mesh.session, (s) => log.info(`skipped ${s.name}: ${s.reason}`));
      if (mesh.session) log.info(`connected: ${found.peers.length} nara(s)`);
      log.info(`backing up ${found.peers.length} peer(s) as ${identity.name}`);

      const progress = createProgress();
      /** stdout has begun to receive the spool: an interruption now leaves part of the backup there. */
      let copying = false;
      const interrupt = exitOnInterrupt(() => interruptedMessage(copying));
      let summary: DumpSummary;
      try {
        summary = await dumpEvents(
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
            signal: interrupt.signal,
          },
          {
            ...dumpHooks(log, progress),
            onOutput(phase, target) {
              if (phase === "open") interrupt.arm();
              else copying = target === "stdout";
            },
          },
        );
      } finally {
        interrupt.disarm();
      }
      progress.stop();
      const died = mesh.session?.died();
      // The proxy went with the daemon: say so beside the peers' own errors.
      if (died) for (const p of summary.peers) if (p.status !== "ok") p.error = `${p.error ?? "failed"} (the private tailscaled ${died} mid-dump)`;
      reportDump(summary, log, out.json, meshJson(mesh, found.peers.map((p) => p.name)));
      return summary.exitCode;
    });
  },
});
