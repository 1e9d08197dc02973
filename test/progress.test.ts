import { describe, expect, test } from "bun:test";
import {
  createProgress,
  progressEnabled,
  estimateRemainingMs,
  formatBytes,
  formatCount,
  formatDuration,
  formatRate,
  renderBar,
  renderLine,
} from "../src/cli/progress.ts";
import { LogLevels } from "consola/core";
import { createLog } from "../src/cli/log.ts";

describe("formatters", () => {
  test("formatBytes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(10 * 1024 * 1024)).toBe("10 MiB");
    expect(formatBytes(3.25 * 1024 ** 3)).toBe("3.3 GiB");
  });

  test("formatCount writes counts as toLocaleString(\"en\") does", () => {
    const counts = [0, 7, 999, 1000, 12_345, 999_999, 1_000_000, 180_670, 2 ** 31, Number.MAX_SAFE_INTEGER, -1, -1234567];
    for (const n of counts) expect(formatCount(n)).toBe(n.toLocaleString("en"));
  });

  test("formatDuration", () => {
    expect(formatDuration(450)).toBe("450ms");
    expect(formatDuration(12_000)).toBe("12s");
    expect(formatDuration(65_000)).toBe("1m05s");
    expect(formatDuration(59_600)).toBe("1m00s");
    expect(formatDuration((2 * 60 + 3) * 60_000 + 20_000)).toBe("2h03m");
  });

  test("formatRate", () => {
    expect(formatRate(850, "events")).toBe("850 events/s");
    expect(formatRate(2.54, "peers")).toBe("2.5 peers/s");
    expect(formatRate(12_345, "events")).toBe("12.3k events/s");
    expect(formatRate(2_500_000, "events")).toBe("2.5M events/s");
    expect(formatRate(4.2 * 1024 * 1024, "B")).toBe("4.2 MiB/s");
  });

  test("renderBar clamps and fills proportionally", () => {
    expect(renderBar(0.5, 10)).toBe("[#####-----]");
    expect(renderBar(0, 4)).toBe("[----]");
    expect(renderBar(1.7, 4)).toBe("[####]");
    expect(renderBar(Number.NaN, 4)).toBe("[----]");
  });

  test("ETA extrapolates from the fraction, only once there is something to go on", () => {
    expect(estimateRemainingMs(0.25, 10_000)).toBe(30_000);
    expect(estimateRemainingMs(0, 10_000)).toBeUndefined();
    expect(estimateRemainingMs(1, 10_000)).toBeUndefined();
    expect(estimateRemainingMs(0.5, 200)).toBeUndefined();
  });

  test("renderLine shows label, bar, counts, rate, ETA and extra, within the width", () => {
    const line = renderLine({ done: 2, total: 8, label: "fetching", unit: "peers", fraction: 0.5, extra: "12 events" }, 10_000, 200);
    expect(line).toBe("fetching [##########----------] 2/8 50% 0.2 peers/s ETA 10s 12 events");
    const narrow = renderLine({ done: 1, total: 2, label: "x".repeat(100) }, 0, 40);
    expect(narrow).toHaveLength(40);
    expect(narrow.endsWith("…")).toBe(true);
  });
});

function fakeStream() {
  const writes: string[] = [];
  return { writes, stream: { write: (s: string) => writes.push(s), isTTY: true, columns: 120 } };
}

describe("createProgress", () => {
  test("disabled writes nothing at all", () => {
    const { writes, stream } = fakeStream();
    const p = createProgress({ enabled: false, stream });
    p.update({ done: 1, total: 2, label: "x" });
    p.stop();
    expect(writes).toEqual([]);
  });

  test("redraws one line, at most every 100 ms, and clears it on stop", () => {
    const { writes, stream } = fakeStream();
    let t = 1000;
    const p = createProgress({ enabled: true, stream, now: () => t });
    p.update({ done: 0, total: 4, label: "peers" });
    t += 50;
    p.update({ done: 1, total: 4, label: "peers" });
    t += 60;
    p.update({ done: 2, total: 4, label: "peers" });
    expect(writes).toHaveLength(2);
    expect(writes.every((w) => w.startsWith("\r\x1b[2K") && !w.includes("\n"))).toBe(true);
    expect(writes[1]).toContain("2/4");
    p.stop();
    expect(writes).toHaveLength(3);
    expect(writes[2]).toBe("\r\x1b[2K");
  });

  test("clear wipes the line and lets the next update redraw at once", () => {
    const { writes, stream } = fakeStream();
    const p = createProgress({ enabled: true, stream, now: () => 5 });
    p.update({ done: 1, total: 3, label: "peers" });
    p.clear();
    p.update({ done: 1, total: 3, label: "peers" });
    expect(writes.map((w) => w === "\r\x1b[2K")).toEqual([false, true, false]);
  });

  test("progressEnabled: a TTY, and none of quiet, json, verbose", () => {
    const plain = { verbose: false, quiet: false, json: false };
    expect(progressEnabled(plain, { isTTY: true })).toBe(true);
    expect(progressEnabled(plain, { isTTY: false })).toBe(false);
    expect(progressEnabled({ ...plain, quiet: true }, { isTTY: true })).toBe(false);
    expect(progressEnabled({ ...plain, json: true }, { isTTY: true })).toBe(false);
    expect(progressEnabled({ ...plain, verbose: true }, { isTTY: true })).toBe(false);
  });

  test("stop without a drawn line writes nothing", () => {
    const { writes, stream } = fakeStream();
    createProgress({ enabled: true, stream, now: () => 0 }).stop();
    expect(writes).toEqual([]);
  });
});

describe("the log on a stderr that is not a terminal", () => {
  /** A stream that keeps what is written. */
  const sink = (isTTY: boolean) => {
    const chunks: string[] = [];
    return { chunks, stream: { isTTY, write: (s: string) => (chunks.push(s), true), columns: 80 } as unknown as NodeJS.WriteStream };
  };

  test("writes the lines consola's basic reporter writes", async () => {
    const { createConsola } = await import("consola");
    const ours = sink(false);
    const theirs = sink(false);
    const log = createLog({ verbose: true }, ours.stream);
    const reference = createConsola({ level: LogLevels.debug, fancy: false, stdout: theirs.stream, stderr: theirs.stream } as Parameters<typeof createConsola>[0]);
    const error = new Error("boom", { cause: new Error("under") });
    for (const l of [log, reference]) {
      l.info("would send 3 event(s) in 1 batch(es) to http://127.0.0.1:1");
      l.warn("no events in a.jsonl: the input is empty");
      l.debug("50% done, 100%s %d");
      l.success("done");
      l.log("plain");
      l.info("");
      l.info("two", "args %s", 3);
      l.withTag("mesh").info("tagged");
      l.error(error);
    }
    expect(ours.chunks).toEqual(theirs.chunks);
    expect(ours.chunks.length).toBe(9);
  });

  test("stays below its level", () => {
    const out = sink(false);
    const log = createLog({ quiet: true }, out.stream);
    log.info("hidden");
    log.debug("hidden");
    log.warn("shown");
    expect(out.chunks).toEqual(["[warn] shown\n"]);
  });
});
