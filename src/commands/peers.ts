import { defineCommand } from "citty";
import { ExitCode } from "../errors.ts";
import { discoveryArgs, discoveryOptions, identityArgs, outputArgs, outputOptions } from "../cli/args.ts";
import { createLog } from "../cli/log.ts";
import { loadIdentity } from "../identity/load.ts";
import { discoverPeers, noPeersError, type Peer, type Skipped } from "../mesh/discovery.ts";
import { meshArgs, meshJson, withMesh } from "../cli/mesh.ts";

export default defineCommand({
  meta: { name: "peers", description: "List the naras a backup would fetch from, and the ones it would skip" },
  args: { ...identityArgs, ...discoveryArgs, ...meshArgs, ...outputArgs },
  async run({ args }) {
    const out = outputOptions(args);
    const log = createLog(out);
    // --name alone only excludes ourselves; with a soul at hand we also check the bond, so that
    // `peers` doubles as a dry run of a backup's identity setup.
    const soulGiven = args.soul !== undefined || args["soul-file"] !== undefined || Boolean(process.env.NARA_SOUL?.trim());
    if (args.soul !== undefined || args["soul-file"] !== undefined || (args.name && soulGiven)) {
      const { identity } = loadIdentity(args, log);
      log.info(`the soul is bonded to ${identity.name} (nara ID ${identity.naraId})`);
    }
    return withMesh(args, log, async (mesh) => {
      const found = await discoverPeers(discoveryOptions(args), mesh.session);
      const json = { ...found, mesh: meshJson(mesh, found.peers.map((p) => p.name)) };
      process.stdout.write(out.json ? `${JSON.stringify(json, null, 2)}\n` : renderTable(found.peers, found.skipped));
      if (found.peers.length === 0) throw noPeersError(found);
      return ExitCode.ok;
    });
  },
});

const address = (p: Peer): string => p.url.replace(/^http:\/\//, "");

function columns(rows: string[][], indent = ""): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ")).join("\n") + "\n";
}

export function renderTable(peers: Peer[], skipped: Skipped[]): string {
  let text = peers.length
    ? columns([["NAME", "ADDRESS", "SOURCE"], ...peers.map((p) => [p.name, address(p), p.source])])
    : "no peers\n";
  if (skipped.length) text += `\nskipped (${skipped.length}):\n` + columns(skipped.map((s) => [s.name, s.reason]), "  ");
  return text;
}
