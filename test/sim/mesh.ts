/**
 * A simulated nara mesh: several peers (real HTTP servers on loopback), each
 * holding an overlapping share of one generated event history, plus a client
 * identity every peer knows, and optionally a fake Tailscale LocalAPI that
 * lists the peers for discovery.
 *
 *   const mesh = await startMesh({ peers: 3, events: 5000, seed: 1 });
 *   // run: nara-backup dump --name mesh.client.name --peers mesh.peersArg
 *   //      with NARA_SOUL=mesh.client.soul
 *   expect(ids(dump)).toEqual(ids(mesh.allEvents));
 *   await mesh.stop();
 */
import { makeNara, generateEvents, generateNaras, distribute, mixSeed, Rng, type GenerateOptions, type SimEvent, type SimNara } from "./generate.ts";
import { startPeer, type Faults, type SimPeer } from "./peer.ts";
import type { WanOptions } from "./wan.ts";
import { startFakeLocalApi, tailscaleStatus, type FakeLocalApi, type FakePeer } from "./localapi.ts";
import { parseSoul } from "../../src/identity/soul.ts";

export type MeshOptions = {
  /** How many peers (naras generated from the seed), or the naras to run. */
  peers: number | SimNara[];
  /** Events to generate (default 1000), or the events to distribute. */
  events?: number | SimEvent[];
  /** Probability that an event is also held by each non-home peer (default 0.5); 1 = every peer has everything. */
  overlap?: number;
  seed?: number;
  /** More generation options (sharedTsRate, bigGroupSize, unknownRate, …). */
  generate?: Partial<Omit<GenerateOptions, "naras" | "count" | "seed">>;
  /** Latency of every peer response, ms (sets faults.latencyMs on all peers). */
  pageLatencyMs?: number;
  /** Every peer far away (see wan.ts): round trips, a shared uplink, a cost per page. */
  wan?: WanOptions;
  /** Faults: one object for every peer, an array by peer index, or a map by peer name. */
  faults?: Faults | (Faults | undefined)[] | Record<string, Faults>;
  /** The identity tests act as (default: a generated nara "home-nara"); every peer knows its key. */
  client?: { name?: string; soul?: string };
  /** More keys every peer knows, name -> Base64 public key. */
  knownKeys?: Record<string, string>;
  /** The peers' clock (default Date.now). */
  now?: () => number;
  /**
   * Bind the peers on distinct loopback addresses (127.0.0.2, .3, …) at one
   * shared port, like a real mesh (one IP per nara, one port), and start a
   * fake LocalAPI listing them as tailnet peers "<name>-xxxx".
   */
  tailscale?: boolean;
  /** Extra LocalAPI peers (e.g. another "nara-backup-…" tool, an offline node). */
  tailscaleExtras?: FakePeer[];
};

export type SimMesh = {
  peers: SimPeer[];
  naras: SimNara[];
  /** Union of the events of all peers, sorted by ts (generation order among ties). */
  allEvents: SimEvent[];
  /** "name=127.0.0.1:port,…" for --peers. */
  peersArg: string;
  /** Who tests act as: known to every peer. Its soul is a simulated one. */
  client: SimNara;
  /** Set with `tailscale: true`. */
  localApi?: FakeLocalApi;
  tailscale?: {
    socketPath: string;
    /** The one port all peers listen on (the real mesh uses 7433). */
    port: number;
    /** nara name -> tailnet hostname. */
    hostnames: Record<string, string>;
    /** Hostname of the LocalAPI's Self (a backup tool). */
    selfHostName: string;
  };
  peer(name: string): SimPeer;
  stop(): Promise<void>;
};

const SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const suffix4 = (rng: Rng): string => Array.from({ length: 4 }, () => SUFFIX_ALPHABET[rng.int(SUFFIX_ALPHABET.length)]).join("");

function faultsFor(opts: MeshOptions, i: number, name: string): Faults {
  const f = opts.faults;
  let mine: Faults | undefined;
  if (Array.isArray(f)) mine = f[i];
  else if (f && Object.values(f).some((v) => typeof v === "object" && v !== null)) mine = (f as Record<string, Faults>)[name];
  else mine = f as Faults | undefined;
  const out: Faults = { ...mine };
  if (opts.pageLatencyMs !== undefined && out.latencyMs === undefined) out.latencyMs = opts.pageLatencyMs;
  return out;
}

export async function startMesh(opts: MeshOptions): Promise<SimMesh> {
  const seed = opts.seed ?? 1;
  const naras = typeof opts.peers === "number" ? generateNaras(opts.peers, seed) : opts.peers;
  if (naras.length === 0) throw new Error("a mesh needs at least one peer");

  let client: SimNara;
  const clientName = opts.client?.name ?? "home-nara";
  if (opts.client?.soul) {
    const id = parseSoul(opts.client.soul, clientName);
    client = makeNara(clientName, id.seedBytes(), "100.64.255.254");
  } else {
    client = makeNara(clientName, new Rng(mixSeed(seed, 0x434c4e54)).bytes(32), "100.64.255.254");
  }

  const allEvents =
    typeof opts.events === "object"
      ? opts.events
      : generateEvents({ ...opts.generate, naras, count: opts.events ?? 1000, seed });
  const shares = distribute(allEvents, naras.length, { overlap: opts.overlap ?? 0.5, seed });
  const knownKeys = { ...opts.knownKeys, [client.name]: client.publicKey };

  /** Starts every peer; with `samePort`, all on the port the first one got. */
  const launch = (hostFor: (i: number) => string, samePort: boolean): SimPeer[] => {
    const started: SimPeer[] = [];
    try {
      naras.forEach((nara, i) => {
        started.push(
          startPeer({
            nara,
            events: shares[i],
            naras,
            knownKeys,
            hostname: hostFor(i),
            port: samePort && i > 0 ? started[0]!.port : 0,
            now: opts.now,
            faults: faultsFor(opts, i, nara.name),
            wan: opts.wan,
            seed: mixSeed(seed, i),
          }),
        );
      });
    } catch (err) {
      for (const p of started) void p.stop();
      throw err;
    }
    return started;
  };

  let peers: SimPeer[];
  let localApi: FakeLocalApi | undefined;
  let tailscale: SimMesh["tailscale"];
  if (opts.tailscale) {
    // One port, one loopback address per nara (127.0.0.0/8 all routes to lo on Linux).
    if (naras.length > 250) throw new Error("tailscale mode binds 127.0.0.2..127.0.0.251: at most 250 peers");
    for (let attempt = 1; ; attempt++) {
      try {
        peers = launch((i) => `127.0.0.${2 + i}`, true);
        break;
      } catch (err) {
        if (attempt >= 5) throw err; // the port was taken on another address: try another
      }
    }
    const rng = new Rng(mixSeed(seed, 0x54534e44));
    const hostnames: Record<string, string> = {};
    for (const n of naras) hostnames[n.name] = `${n.name}-${suffix4(rng)}`;
    const selfHostName = `nara-backup-${suffix4(rng)}`;
    const status = tailscaleStatus({
      self: { HostName: selfHostName, TailscaleIPs: ["127.0.0.1"] },
      peers: [
        ...peers.map((p) => ({ hostName: hostnames[p.name]!, ips: [p.hostname], online: true })),
        ...(opts.tailscaleExtras ?? []),
      ],
    });
    localApi = startFakeLocalApi({ status });
    tailscale = { socketPath: localApi.socketPath, port: peers[0]!.port, hostnames, selfHostName };
  } else {
    peers = launch(() => "127.0.0.1", false);
  }

  const byName = new Map(peers.map((p) => [p.name, p]));
  return {
    peers,
    naras,
    allEvents,
    peersArg: peers.map((p) => `${p.name}=${p.hostname}:${p.port}`).join(","),
    client,
    localApi,
    tailscale,
    peer(name: string): SimPeer {
      const p = byName.get(name);
      if (!p) throw new Error(`no peer named ${name}`);
      return p;
    },
    async stop() {
      await Promise.all(peers.map((p) => p.stop()));
      localApi?.stop();
    },
  };
}
