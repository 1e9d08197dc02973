/**
 * `npm test`: runs the whole suite with bun test and ends with a plain
 * "N passed, N failed" line on stdout, which CI reads (bun prints its own
 * summary on stderr). Exits non-zero when a test failed or none ran.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "nara-backup-test-"));
const report = join(dir, "junit.xml");
const proc = Bun.spawn(
  [process.execPath, "test", "--timeout", "60000", "--reporter=junit", `--reporter-outfile=${report}`, ...process.argv.slice(2)],
  { stdio: ["inherit", "inherit", "inherit"], cwd: join(import.meta.dir, "..") },
);
const code = await proc.exited;

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const xml = readFileSync(report, "utf8");
  // The root <testsuites> element carries the totals.
  const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? 0);
  const tests = attr("tests");
  failed = attr("failures") + attr("errors");
  skipped = attr("skipped");
  passed = tests - failed - skipped;
} catch {
  failed = Math.max(failed, 1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
process.exit(code !== 0 ? code : passed === 0 || failed > 0 ? 1 : 0);
