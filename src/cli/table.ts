/** Text tables for the terminal. */

export type Align = "left" | "right";

/**
 * Rows as columns two spaces apart, each as wide as its widest cell; by
 * default the first column is left-aligned and the others (numbers) right-aligned.
 * Each row starts with `indent`; trailing blanks are dropped.
 */
export function columns(rows: string[][], opts: { indent?: string; align?: (column: number) => Align } = {}): string[] {
  const { indent = "", align = (i: number): Align => (i === 0 ? "left" : "right") } = opts;
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  return rows.map((r) => indent + r.map((c, i) => (align(i) === "left" ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd());
}
