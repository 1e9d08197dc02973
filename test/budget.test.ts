// The fetch workers' budget of page bytes in flight, and their backlog of pages the coordinator has not taken in.
import { describe, expect, test } from "bun:test";
import { Backlog, ByteBudget } from "../src/dump/budget.ts";

/** "granted" if `p` settled before the promises queued so far (no timers involved). */
async function state(p: Promise<unknown>): Promise<"granted" | "waiting"> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 5; i++) await Promise.resolve();
  return done ? "granted" : "waiting";
}

describe("ByteBudget", () => {
  test("grants while the bytes fit, then in order as bytes come back", async () => {
    const b = new ByteBudget(100, 60_000);
    const r1 = await b.take(60);
    const r2 = await b.take(40);
    expect(b.inFlight).toBe(100);
    const third = b.take(30);
    const fourth = b.take(10);
    expect(await state(third)).toBe("waiting");
    // First come, first served: the small one does not overtake the waiting one.
    expect(await state(fourth)).toBe("waiting");
    r2();
    expect(await state(third)).toBe("granted");
    expect(await state(fourth)).toBe("granted");
    expect(b.inFlight).toBe(100);
    r1();
    r1(); // giving back twice gives back once
    expect(b.inFlight).toBe(40);
    (await third)();
    (await fourth)();
    expect(b.inFlight).toBe(0);
    expect(b.waiting).toBe(0);
  });

  test("a page larger than the whole budget goes alone", async () => {
    const b = new ByteBudget(100, 60_000);
    const big = await b.take(500);
    expect(b.inFlight).toBe(500);
    const next = b.take(1);
    expect(await state(next)).toBe("waiting");
    big();
    expect(await state(next)).toBe("granted");
  });

  test("a request waits at most maxWaitMs, then goes over the budget", async () => {
    const b = new ByteBudget(100, 20);
    await b.take(100); // held, as by a peer that hangs
    const t0 = performance.now();
    const release = await b.take(50);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
    expect(b.inFlight).toBe(150);
    release();
    expect(b.inFlight).toBe(100);
  });

  test("an abort while waiting rejects with the signal's reason and leaves the queue", async () => {
    const b = new ByteBudget(10, 60_000);
    const held = await b.take(10);
    const abort = new AbortController();
    const waiting = b.take(5, abort.signal);
    const behind = b.take(5);
    abort.abort(new Error("peer timeout"));
    await expect(waiting).rejects.toThrow("peer timeout");
    expect(b.waiting).toBe(1);
    held();
    expect(await state(behind)).toBe("granted");
    expect(b.inFlight).toBe(5);
    await expect(b.take(1, abort.signal)).rejects.toThrow("peer timeout");
  });
});

describe("Backlog", () => {
  test("no waiting within the limit; past it, requests wait until pages are taken in", async () => {
    const b = new Backlog(100);
    expect(await state(b.room())).toBe("granted");
    const first = b.add(80);
    expect(await state(b.room())).toBe("granted");
    const second = b.add(80);
    expect(b.bytes).toBe(160);
    const waiting = [b.room(), b.room()];
    expect(await state(waiting[0]!)).toBe("waiting");
    first();
    // 80 left: within the limit, everyone goes on.
    expect(await state(waiting[0]!)).toBe("granted");
    expect(await state(waiting[1]!)).toBe("granted");
    first(); // taken in twice counts once
    expect(b.bytes).toBe(80);
    second();
    expect(b.bytes).toBe(0);
  });

  test("a waiter checks again when woken: over the limit again by then, it keeps waiting", async () => {
    const b = new Backlog(100);
    const a = b.add(150);
    const waiting = b.room();
    a(); // 0 left: the waiter is woken...
    const c = b.add(150); // ...but before it runs, the backlog is over the limit again
    expect(await state(waiting)).toBe("waiting");
    c();
    expect(await state(waiting)).toBe("granted");
  });

  test("an abort while waiting rejects with the signal's reason", async () => {
    const b = new Backlog(0);
    b.add(1);
    const abort = new AbortController();
    const waiting = b.room(abort.signal);
    abort.abort(new Error("peer timeout"));
    await expect(waiting).rejects.toThrow("peer timeout");
    await expect(b.room(abort.signal)).rejects.toThrow("peer timeout");
  });
});
