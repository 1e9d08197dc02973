import { describe, expect, test } from "bun:test";
import {
  createProgress,
  progressEnabled,
  estimateRemainingMs,
  formatBytes,
  formatDuration,
  formatRate,
  renderBar,
  renderLine,
} from "../src/cli/progress.ts";

describe("formatters", () => {
  test("formatBytes", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(10 * 1024 * 1024)).toBe("10 MiB");
    expect(formatBytes(3.25 * 1024 ** 3)).toBe("3.3 GiB");
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
