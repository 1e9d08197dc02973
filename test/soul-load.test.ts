import { afterEach, describe, expect, test } from "bun:test";
import { thrown as failure } from "./helpers/errors.ts";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ExitCode } from "../src/errors.ts";
import { loadIdentity, loadSoul } from "../src/identity/load.ts";

type SoulVector = { name: string; soul: string; nara_id: string; public_key: string };
type InvalidVector = { name: string; soul: string; error_class: string };
const vectors = (await Bun.file(join(import.meta.dir, "../../shared/vectors/souls.json")).json()) as {
  valid: SoulVector[];
  invalid: InvalidVector[];
};
const alice = vectors.valid.find((v) => v.name === "alice")!;
const bob = vectors.valid.find((v) => v.name === "bob")!;
/** Strings long enough that finding one in a message means the soul leaked. */
const allSouls = [...vectors.valid, ...vectors.invalid].map((v) => v.soul.trim()).filter((s) => s.length >= 20);
/** Whitespace around a soul is trimmed on load (the vectors' "trailing newline" cases are valid for us). */
const invalidAfterTrim = vectors.invalid.filter((v) => v.soul === v.soul.trim());

const dirs: string[] = [];
afterEach(() => {
  while (dirs.length) rmSync(dirs.pop()!, { recursive: true, force: true });
});

function soulFile(content: string, mode = 0o600): string {
  const dir = mkdtempSync(join(tmpdir(), "nara-soul-"));
  dirs.push(dir);
  const path = join(dir, "soul");
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

/** Collects what loadIdentity logs, to prove the soul never reaches the log. */
function recorder() {
  const lines: string[] = [];
  return {
    lines,
    log: {
      warn: (m: string) => lines.push(`warn ${m}`),
      info: (m: string) => lines.push(`info ${m}`),
      debug: (m: string) => lines.push(`debug ${m}`),
    },
  };
}

function expectNoSoul(text: string) {
  for (const soul of allSouls) expect(text).not.toContain(soul);
}

describe("loadSoul precedence: --soul, then NARA_SOUL, then --soul-file", () => {
  test("the flag wins over env and file, and earns a hint", () => {
    const file = soulFile(bob.soul);
    const got = loadSoul({ soul: alice.soul, soulFile: file, env: { NARA_SOUL: bob.soul } });
    expect(got.source).toBe("flag");
    expect(got.soul).toBe(alice.soul);
    expect(got.hint).toContain("NARA_SOUL");
    expect(got.hint).toContain("--soul-file");
    expectNoSoul(got.hint!);
  });

  test("NARA_SOUL wins over the file, and is trimmed", () => {
    const got = loadSoul({ soulFile: soulFile(bob.soul), env: { NARA_SOUL: ` ${alice.soul}\n` } });
    expect(got).toEqual({ soul: alice.soul, source: "env", looseFileMode: false });
  });

  test("an empty NARA_SOUL counts as unset", () => {
    const got = loadSoul({ soulFile: soulFile(`${bob.soul}\n`), env: { NARA_SOUL: "  " } });
    expect(got.source).toBe("file");
    expect(got.soul).toBe(bob.soul);
  });

  test("a soul file is read and trimmed; mode 600 is quiet", () => {
    const got = loadSoul({ soulFile: soulFile(`\n${alice.soul}\r\n`), env: {} });
    expect(got).toEqual({ soul: alice.soul, source: "file", looseFileMode: false, hint: undefined });
  });

  test("a group- or world-readable soul file is flagged with a chmod hint", () => {
    const path = soulFile(alice.soul, 0o644);
    const got = loadSoul({ soulFile: path, env: {} });
    expect(got.looseFileMode).toBe(true);
    expect(got.hint).toBe(`other users can read ${path}: chmod 600 ${path}`);
    expect(loadSoul({ soulFile: soulFile(alice.soul, 0o640), env: {} }).looseFileMode).toBe(true);
  });

  test("no soul anywhere is a usage error listing the three ways", () => {
    const err = failure(() => loadSoul({ env: {} }));
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.hint).toContain("NARA_SOUL");
    expect(err.hint).toContain("--soul-file");
    expect(err.hint).toContain("--soul ");
  });

  test("an empty flag, a missing file and an empty file are usage errors", () => {
    expect(failure(() => loadSoul({ soul: " ", env: {} })).exitCode).toBe(ExitCode.usage);
    const missing = failure(() => loadSoul({ soulFile: "/nonexistent/soul", env: {} }));
    expect(missing.exitCode).toBe(ExitCode.usage);
    expect(missing.message).toContain("no such file");
    expect(failure(() => loadSoul({ soulFile: soulFile("\n\n"), env: {} })).message).toContain("empty");
  });
});

describe("loadIdentity", () => {
  test("a valid soul from the env gives the identity of the vectors", () => {
    const { log, lines } = recorder();
    const got = loadIdentity({ name: "alice" }, log, { NARA_SOUL: alice.soul });
    expect(got.identity.naraId).toBe(alice.nara_id);
    expect(got.identity.publicKey).toBe(alice.public_key);
    expect(got.source).toBe("env");
    expect(lines).toEqual(["debug soul from NARA_SOUL"]);
  });

  test("--soul logs its hint; a loose file logs a warning; the soul is never logged", () => {
    const flag = recorder();
    loadIdentity({ name: "bob", soul: bob.soul }, flag.log, {});
    expect(flag.lines[0]).toStartWith("info --soul");
    const file = recorder();
    loadIdentity({ name: "alice", "soul-file": soulFile(alice.soul, 0o604) }, file.log, {});
    expect(file.lines[0]).toStartWith("warn other users can read");
    expectNoSoul([...flag.lines, ...file.lines].join("\n"));
  });

  test("a soul bonded to another name is a usage error that does not show the soul", () => {
    const { log, lines } = recorder();
    const err = failure(() => loadIdentity({ name: "bob", soul: alice.soul }, log, {}));
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.message).toContain('"bob"');
    expectNoSoul(`${err.message}\n${err.hint}\n${err.stack}\n${lines.join("\n")}`);
  });

  test.each(invalidAfterTrim.map((v) => [v.error_class, v.soul, v.name] as const))(
    "invalid soul (%s) is a usage error that never shows it",
    (_cls, soul, name) => {
      const err = failure(() => loadIdentity({ name }, recorder().log, { NARA_SOUL: soul }));
      expect(err.exitCode).toBe(ExitCode.usage);
      expectNoSoul(`${err.message}\n${err.hint}\n${String(err)}`);
    },
  );

  test("whitespace around a soul is trimmed, as when read from a file", () => {
    const padded = vectors.invalid.filter((v) => v.soul !== v.soul.trim());
    expect(padded.length).toBe(2);
    for (const v of padded) {
      expect(loadIdentity({ name: v.name }, recorder().log, { NARA_SOUL: v.soul }).identity.naraId).toBe(alice.nara_id);
    }
  });

  test("--name is required", () => {
    const err = failure(() => loadIdentity({ soul: alice.soul }, recorder().log, {}));
    expect(err.exitCode).toBe(ExitCode.usage);
    expect(err.message).toContain("--name");
  });
});
