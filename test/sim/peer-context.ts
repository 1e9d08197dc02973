/** What a simulated peer's handlers share: its identity, ledger, keys, faults and the stats tests read. */
import type { SimNara } from "./generate.ts";
import type { HostileStats } from "./hostile.ts";
import type { Faults } from "./faults.ts";
import type { SortedLedger } from "./ledger.ts";

export type SyncLogEntry = {
  /** Peer clock (ms) when the request arrived. */
  at: number;
  /** Request auth headers as received (null when missing). */
  name: string | null;
  timestamp: string | null;
  signature: string | null;
  /** Body fields as sent (undefined when absent or when the body did not parse). */
  mode?: unknown;
  cursor?: unknown;
  pageSize?: unknown;
  services?: unknown;
  subjects?: unknown;
  /** HTTP status, or "dropped" / "hung". */
  outcome: number | "dropped" | "hung";
  /** The fault that decided the outcome, if any. */
  fault?: string;
  /** Why auth failed, for 401s. */
  authReason?: string;
  /** Events in the page and its next_cursor, for 200 pages. */
  events?: number;
  nextCursor?: string;
};

export type ImportLogEntry = {
  at: number;
  sent: number;
  outcome: number | "dropped";
  imported?: number;
  duplicates?: number;
  warnings?: number;
  error?: string;
  fault?: string;
};

export type PeerStats = {
  /** Every HTTP request received. */
  requests: number;
  pings: number;
  syncRequests: number;
  /** 200 pages served with a complete, valid body. */
  pagesServed: number;
  eventsServed: number;
  /** POST /api/events/import requests received. */
  imports: number;
  importedEvents: number;
  authFailures: Record<string, number>;
  faultsInjected: Record<string, number>;
  syncLog: SyncLogEntry[];
  importLog: ImportLogEntry[];
  /** Imported events whose ID is not the one their content gives (with checkIds). */
  idMismatches?: number;
};

export const freshStats = (): PeerStats => ({
  requests: 0,
  pings: 0,
  syncRequests: 0,
  pagesServed: 0,
  eventsServed: 0,
  imports: 0,
  importedEvents: 0,
  authFailures: {},
  faultsInjected: {},
  syncLog: [],
  importLog: [],
});

export const count = (rec: Record<string, number>, key: string): void => {
  rec[key] = (rec[key] ?? 0) + 1;
};

export type PeerContext = {
  nara: SimNara;
  name: string;
  /** The peer's clock, ms. */
  now: () => number;
  /** Seed of the per-request tie shuffling. */
  seed: number;
  ledger: SortedLedger;
  keys: Map<string, string>;
  /** The peer's own objects (mutated at runtime, never replaced). */
  faults: Faults;
  stats: PeerStats;
  hostile: HostileStats;
  /** Resolves when the peer stops (ends endless and stalled bodies). */
  stoppedSignal: Promise<void>;
  checkIds: boolean;
  /** Appends to a log, keeping at most the peer's logLimit entries. */
  log<T>(list: T[], entry: T): void;
  /** A request that never answers (until stop()). */
  hang(): Promise<Response>;
  /** Learns the key a hey-there event announces. */
  learnHeyThere(svc: string, payload: Record<string, unknown> | undefined): void;
};
