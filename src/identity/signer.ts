import { loadSoulNoted, type Notices, type SoulSource } from "./load.ts";
import { Identity, decodeSoul, parseSoul } from "./soul.ts";

/** Who signs the import batches: always the target nara's own soul. */
export type RestoreIdentity = {
  identity: Identity;
  /** True when --name was given and the soul's bond to it was checked. */
  bondChecked: boolean;
  source: SoulSource;
};

/**
 * The keypair of a soul whose name we do not know. The Ed25519 key comes from
 * the seed alone, so import signatures are right whatever the name; only the
 * bond (and the nara ID, which depends on the name) cannot be checked.
 * Same error classes and messages as parseSoul, never the soul itself.
 */
export function keypairFromSoul(soul: string): Identity {
  const bytes = decodeSoul(soul.trim());
  // The name is unknown: the nara ID computed for "" means nothing and is never shown.
  return new Identity("", bytes);
}

/**
 * The soul from --soul / NARA_SOUL / --soul-file; with --name the bond is
 * checked before anything touches the network, without it only the keypair
 * is built (and the caller says so).
 */
export function loadRestoreIdentity(
  args: { name?: string; soul?: string; "soul-file"?: string },
  log: Notices,
  env: Record<string, string | undefined> = process.env,
): RestoreIdentity {
  // Its advice is worth seeing even with --json (a warning): the soul is a private key.
  const loaded = loadSoulNoted(args, log, env, "warn");
  const name = args.name?.trim();
  if (name) return { identity: parseSoul(loaded.soul, name), bondChecked: true, source: loaded.source };
  return { identity: keypairFromSoul(loaded.soul), bondChecked: false, source: loaded.source };
}

/** How to name the signer in messages: public key always, nara name and ID when the bond was checked. */
export function describeSigner(id: RestoreIdentity): string {
  return id.bondChecked
    ? `the soul of ${id.identity.name} (nara ID ${id.identity.naraId}, public key ${id.identity.publicKey})`
    : `a soul with public key ${id.identity.publicKey} (no --name given: its name and nara ID were not checked)`;
}
