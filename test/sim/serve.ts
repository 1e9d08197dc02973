#!/usr/bin/env bun
/**
 * Starts a simulated mesh for manual testing and keeps it up until Ctrl-C.
 *
 *   bun test/sim/serve.ts --peers 5 --events 2000 [--seed 1] [--overlap 0.5]
 *                         [--latency 20] [--shared 0.1] [--unknown 0.01]
 *                         [--tailscale] [--fail-every N] [--drop-every N]
 *
 * Everything goes to stderr: the --peers argument, the client identity to act
 * as (its soul is a simulated one, printed on purpose), and with --tailscale
 * the LocalAPI socket.
 */
import { startMesh } from "./mesh.ts";
import type { Faults } from "./peer.ts";

function parseArgs(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const [k, v] = a.slice(2).split("=", 2) as [string, string | undefined];
    if (v !== undefined) out[k] = v;
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("--")) out[k] = argv[++i]!;
    else out[k] = true;
  }
  return out;
}

const args = parseArgs(process.argv.slice(2));
const num = (k: string, d?: number): number | undefined => {
  const v = args[k];
  if (v === undefined) return d;
  const n = Number(v);
  if (v === true || !Number.isFinite(n)) throw new Error(`--${k} needs a number`);
  return n;
};
if (args.help) {
  console.error("usage: bun test/sim/serve.ts --peers 5 --events 2000 [--seed N] [--overlap F] [--latency MS] [--shared F] [--unknown F] [--tailscale] [--fail-every N] [--drop-every N]");
  process.exit(0);
}

const faults: Faults = {};
if (args["fail-every"] !== undefined) faults.failEvery = num("fail-every");
if (args["drop-every"] !== undefined) faults.dropEvery = num("drop-every");

const t0 = performance.now();
const mesh = await startMesh({
  peers: num("peers", 5)!,
  events: num("events", 2000)!,
  seed: num("seed", 1),
  overlap: num("overlap", 0.5),
  pageLatencyMs: num("latency"),
  // History ending about now (0.5 s apart on average), as a live nara's would: the progress ETA estimates from it.
  generate: { sharedTsRate: num("shared"), unknownRate: num("unknown"), startNs: BigInt(Date.now() - num("events", 2000)! * 500) * 1_000_000n },
  faults,
  tailscale: args.tailscale === true,
});
const ms = Math.round(performance.now() - t0);

const err = (s: string) => process.stderr.write(`${s}\n`);
err(`simulated mesh: ${mesh.peers.length} peers, ${mesh.allEvents.length} events (started in ${ms} ms)`);
for (const p of mesh.peers) err(`  ${p.name.padEnd(16)} ${p.url}  ${p.events.size} events`);
err("");
err(`--peers ${mesh.peersArg}`);
err(`--name ${mesh.client.name}`);
err(`export NARA_SOUL=${mesh.client.soul}   # simulated identity, known to every peer`);
if (mesh.tailscale) {
  err(`--tailscale-socket ${mesh.tailscale.socketPath}   (peers listen on port ${mesh.tailscale.port})`);
}
err("");
err("Ctrl-C to stop");

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await mesh.stop();
  process.exit(0);
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
