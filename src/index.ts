/**
 * nara-backup as a library: the functions the commands are thin shells
 * over. Each takes plain options (no argv, no process signals: pass an
 * AbortSignal), reports through optional hooks, and returns a summary;
 * failures are NaraErrors with a message, a hint and the exit code the CLI
 * would use.
 *
 *   import { dumpEvents, verifyBackups } from "nara-backup";
 */
export { dumpEvents, readIds, type DumpHooks, type DumpOptions, type DumpSummary } from "./dump/dump.ts";
export {
  restoreEvents,
  type RestoreHooks,
  type RestoreOptions,
  type RestoreSummary,
} from "./restore/restore.ts";
export { parseFilter, type EventFilter } from "./restore/filter.ts";
export { verifyBackups, type VerifyHooks, type VerifyOptions, type VerifyReport } from "./backup/verify.ts";
export { backupStats, type StatsOptions, type StatsReport } from "./backup/stats.ts";
export { mergeBackups, type MergeHooks, type MergeOptions, type MergeSummary } from "./backup/merge.ts";
export { fetchStash, type DumpStashOptions, type DumpedStash } from "./stash/dump.ts";
export { restoreStash, type RestoreStashOptions, type RestoreStashResult } from "./stash/restore.ts";
export { discoverPeers, resolvePeers, type Discovery, type DiscoveryOptions, type Peer } from "./mesh/discovery.ts";
export { Identity, parseSoul } from "./identity/soul.ts";
export { keypairFromSoul, type RestoreIdentity } from "./identity/signer.ts";
export { ExitCode, NaraError } from "./errors.ts";
