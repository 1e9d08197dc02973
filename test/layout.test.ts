/**
 * The shape of src/ (issue #11), kept by a test rather than by a promise:
 * imports point down the layers (commands -> dump / restore / backup / stash
 * -> io / mesh / events -> identity -> errors), and no source file grows past
 * 400 lines.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const root = join(import.meta.dir, "..");

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mjs)$/.test(e.name))
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

const FEATURES = new Set(["dump", "restore", "backup", "stash"]);
const CORE = new Set(["events", "io", "mesh", "identity"]);
/** What a folder of src/ may not import, besides itself. */
function forbidden(folder: string): Set<string> {
  if (FEATURES.has(folder)) return new Set([...FEATURES, "cli", "commands"]);
  if (CORE.has(folder)) return new Set([...FEATURES, "cli", "commands", ...(folder === "identity" ? ["events", "io", "mesh"] : [])]);
  if (folder === "cli") return new Set(["commands"]);
  return new Set();
}

/** The src/ folder a path is in ("" for src/ itself or outside it). */
const folderOf = (path: string): string => {
  const parts = path.split("/");
  return parts[0] === "src" && parts.length > 2 ? parts[1]! : "";
};

describe("layout", () => {
  test("imports point down the layers: no feature imports another, no core folder a feature or the CLI", () => {
    const wrong: string[] = [];
    for (const file of sources("src")) {
      const folder = folderOf(file);
      const bad = forbidden(folder);
      const text = readFileSync(join(root, file), "utf8");
      for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*["'](\.{1,2}\/[^"']+)["']/g)) {
        const target = relative(root, resolve(dirname(join(root, file)), spec!));
        const to = folderOf(target);
        if (to !== folder && bad.has(to)) wrong.push(`${file} imports ${target}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  test("no file in src/ or workers/ is over 400 lines", () => {
    const long = [...sources("src"), ...sources("workers")]
      .map((file) => ({ file, lines: readFileSync(join(root, file), "utf8").split("\n").length - 1 }))
      .filter((f) => f.lines > 400)
      .map((f) => `${f.file}: ${f.lines}`);
    expect(long).toEqual([]);
  });

  test("the checks see what they check: every folder of the layers has files, and a wrong import would be caught", () => {
    const folders = new Set(sources("src").map(folderOf));
    for (const f of [...FEATURES, ...CORE, "cli", "commands"]) expect(folders.has(f)).toBe(true);
    expect(forbidden("events").has("restore")).toBe(true);
    expect(forbidden("restore").has("backup")).toBe(true);
    expect(forbidden("identity").has("io")).toBe(true);
    expect(forbidden("commands").size).toBe(0);
  });
});
