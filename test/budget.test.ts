// What a fetch worker holds in memory: bodies arrived and not yet handed on, pages the coordinator has not taken in.
import { describe, expect, test } from "bun:test";
import { Backlog } from "../src/dump/budget.ts";

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

  test("room goes to the stream furthest behind first: waiters are woken lowest priority first", async () => {
    const b = new Backlog(100);
    const full = b.add(150);
    const order: string[] = [];
    // Each counts 60 once admitted, and is admitted while at most 100 are held: two fit, the others wait again.
    const released: Record<string, () => void> = {};
    const ask = (name: string, priority: number) =>
      b.admit(60, 60_000, undefined, priority).then((release) => {
        order.push(name);
        released[name] = release;
      });
    const waiting = [ask("ahead", 3e18), ask("new", -Infinity), ask("behind", 1e18), ask("also new", -Infinity)];
    full();
    await state(Promise.all(waiting));
    expect(order).toEqual(["new", "also new"]);
    released.new!();
    await state(Promise.all(waiting));
    expect(order).toEqual(["new", "also new", "behind"]);
    released["also new"]!();
    await state(Promise.all(waiting));
    expect(order).toEqual(["new", "also new", "behind", "ahead"]);
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
