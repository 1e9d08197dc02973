/** A single redrawn status line on an interactive stderr; nothing anywhere else. */

export type ProgressState = {
  done: number;
  total: number;
  label: string;
  /** Overall completion 0..1 when done/total is too coarse (e.g. peers done vs. events fetched); drives bar and ETA. */
  fraction?: number;
  /** Unit of `done` for the rate (e.g. "peers"); no rate is shown without it. */
  unit?: string;
  /** Free text appended to the line (e.g. "12 345 events, 3.1 MiB"). */
  extra?: string;
};

export type Progress = {
  update(state: ProgressState): void;
  /** Wipes the line before something else is written to the stream (a log line); the next update redraws at once. */
  clear(): void;
  /** Clears the line; the caller prints its summary afterwards. */
  stop(): void;
};

export type ProgressStream = { write(s: string): unknown; isTTY?: boolean; columns?: number };

const REDRAW_EVERY_MS = 100;
const CLEAR_LINE = "\r\x1b[2K";

/**
 * A redrawn line in a log file or a pipe is noise, and verbose mode prints
 * plain lines instead (the caller's job), so: TTY, and none of
 * --quiet/--json/--verbose.
 */
export const progressEnabled = (
  out: { verbose: boolean; quiet: boolean; json: boolean },
  stream: { isTTY?: boolean } = process.stderr,
): boolean => Boolean(stream.isTTY) && !out.quiet && !out.json && !out.verbose;

/** `now` is injectable for tests. */
export function createProgress(opts: { enabled: boolean; stream?: ProgressStream; now?: () => number }): Progress {
  if (!opts.enabled) return { update() {}, clear() {}, stop() {} };
  const stream = opts.stream ?? process.stderr;
  const now = opts.now ?? (() => performance.now());
  const start = now();
  let lastDraw = -Infinity;
  let drawn = false;
  return {
    update(state) {
      const t = now();
      if (t - lastDraw < REDRAW_EVERY_MS) return;
      lastDraw = t;
      // A terminal that reports no size (0 columns, e.g. script(1) or a bare pty) gets 80.
      const width = Math.max(20, (stream.columns || 80) - 1);
      stream.write(CLEAR_LINE + renderLine(state, t - start, width));
      drawn = true;
    },
    clear() {
      if (drawn) stream.write(CLEAR_LINE);
      drawn = false;
      lastDraw = -Infinity;
    },
    stop() {
      this.clear();
    },
  };
}

/** The status line for `state` after `elapsedMs`, cut to `width` columns. */
export function renderLine(state: ProgressState, elapsedMs: number, width = 80): string {
  const fraction = clamp01(state.fraction ?? (state.total > 0 ? state.done / state.total : 0));
  const parts = [state.label, renderBar(fraction, 20), `${state.done}/${state.total}`, `${Math.floor(fraction * 100)}%`];
  if (state.unit && elapsedMs > 0) parts.push(formatRate((state.done * 1000) / elapsedMs, state.unit));
  const eta = estimateRemainingMs(fraction, elapsedMs);
  if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
  if (state.extra) parts.push(state.extra);
  const line = parts.join(" ");
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

/** Linear extrapolation; undefined until there is enough to extrapolate from. */
export function estimateRemainingMs(fraction: number, elapsedMs: number): number | undefined {
  if (fraction <= 0 || fraction >= 1 || elapsedMs < 1000) return undefined;
  return (elapsedMs * (1 - fraction)) / fraction;
}

const clamp01 = (x: number): number => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0);

export function renderBar(fraction: number, width: number): string {
  const filled = Math.round(clamp01(fraction) * width);
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

/** "12,345", as toLocaleString("en") writes a count, without ICU: its first call is 2-8 ms of a short run's CPU. */
export function formatCount(n: number): string {
  const digits = String(Math.round(Math.abs(n)));
  return `${n <= -0.5 ? "-" : ""}${digits.replace(/\B(?=(\d{3})+$)/g, ",")}`;
}

/** Binary units, one decimal below 10 ("1.5 KiB", "12 MiB"). */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let i = 0;
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  if (i === 0) return `${Math.round(value)} B`;
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${units[i]}`;
}

/** "450ms", "12s", "1m05s", "2h03m". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds}s`;
  const totalMinutes = Math.floor(totalSeconds / 60);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (totalMinutes < 60) return `${totalMinutes}m${pad(totalSeconds % 60)}s`;
  return `${Math.floor(totalMinutes / 60)}h${pad(totalMinutes % 60)}m`;
}

/** "850 events/s", "12.3k events/s", "4.2 MiB/s" (unit "B" means bytes). */
export function formatRate(perSecond: number, unit: string): string {
  if (unit === "B") return `${formatBytes(perSecond)}/s`;
  const scaled: [number, string] =
    perSecond >= 1e6 ? [perSecond / 1e6, "M"] : perSecond >= 1e3 ? [perSecond / 1e3, "k"] : [perSecond, ""];
  const [value, prefix] = scaled;
  const digits = prefix === "" ? (value < 10 ? value.toFixed(1) : String(Math.round(value))) : value.toFixed(1);
  return `${digits}${prefix} ${unit}/s`;
}
