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
  { stdio: ["inherit", "inherit", "pipe"], cwd: join(import.meta.dir, "..") },
);
// bun's own summary (on stderr) also counts errors outside any test, which the JUnit file leaves out.
let tail = "";
for await (const chunk of proc.stderr) {
  process.stderr.write(chunk);
  tail = (tail + new TextDecoder().decode(chunk)).slice(-4096);
}
const code = await proc.exited;
const bunFailed = Number(/^\s*(\d+) fail$/m.exec(tail)?.[1] ?? 0) + Number(/^\s*(\d+) errors?$/m.exec(tail)?.[1] ?? 0);

let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const xml = readFileSync(report, "utf8");
  // The root <testsuites> element carries the totals.
  const root = /<testsuites\b[^>]*>/.exec(xml)?.[0] ?? "";
  const attr = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(root)?.[1] ?? 0);
  const junitFailed = attr("failures") + attr("errors");
  skipped = attr("skipped");
  passed = attr("tests") - junitFailed - skipped;
  failed = Math.max(junitFailed, bunFailed);
} catch {
  failed = Math.max(bunFailed, 1);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (code !== 0 && failed === 0) failed = 1;
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}\n`);
process.exit(code !== 0 ? code : passed === 0 || failed > 0 ? 1 : 0);
