/// <reference lib="webworker" />
/**
 * A fetch worker: the coordinator hands it peers; it fetches each one's pages
 * (several peers at once, each under its own deadline) and posts every page's
 * events back as transferred buffers.
 */
import { parseSoul, type Identity } from "../src/identity/soul.ts";
import { fetchPeer } from "../src/dump/fetch-peer.ts";
import { Backlog } from "../src/dump/budget.ts";
import { transferList, type FetchSettings, type FromWorker, type ToWorker } from "../src/dump/messages.ts";

declare const self: Worker;

let identity: Identity | undefined;
let settings: FetchSettings | undefined;
/** Shared by every peer this worker fetches. */
let backlog: Backlog | undefined;

/** Pages the coordinator has not taken in yet, by their ack number. */
const unacked = new Map<number, () => void>();
let lastAck = 0;

const post = (m: FromWorker, takenIn?: () => void) => {
  if (m.type !== "page") return self.postMessage(m);
  if (takenIn) {
    m.ack = ++lastAck;
    unacked.set(m.ack, takenIn);
  }
  self.postMessage(m, transferList(m));
};

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const msg = event.data;
  if (msg.type === "init") {
    // The soul is checked by the coordinator already; here it only becomes a signing key.
    identity = parseSoul(msg.soul, msg.name);
    settings = msg.settings;
    if (settings.inflightBytes) backlog = new Backlog(settings.inflightBytes);
  } else if (msg.type === "fetch") {
    if (!identity || !settings) throw new Error("fetch before init");
    void fetchPeer(msg.peer, identity, settings, post, { backlog }).then((report) => post({ type: "done", report }));
  } else if (msg.type === "ack") {
    unacked.get(msg.ack)?.();
    unacked.delete(msg.ack);
  } else if (msg.type === "stop") {
    process.exit(0);
  }
};
