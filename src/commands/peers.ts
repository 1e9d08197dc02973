import { defineCommand } from "citty";
import { ExitCode } from "../errors.ts";
import { discoveryArgs, discoveryOptions, identityArgs, outputArgs, outputOptions } from "../cli/args.ts";
import { createLog } from "../cli/log.ts";
import { loadIdentity } from "../identity/load.ts";
import { discoverPeers, noPeersError } from "../mesh/discovery.ts";
import { meshArgs, meshJson, withMesh } from "../cli/mesh.ts";
import { renderPeers } from "../cli/render/dump.ts";

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
      process.stdout.write(renderPeers(found, meshJson(mesh, found.peers.map((p) => p.name)), out.json));
      if (found.peers.length === 0) throw noPeersError(found);
      return ExitCode.ok;
    });
  },
});
