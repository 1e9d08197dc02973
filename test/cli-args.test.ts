import { describe, expect, test } from "bun:test";
import { parseArgs, type ArgsDef } from "citty";
import { ExitCode, NaraError } from "../src/errors.ts";
import {
  discoveryArgs,
  identityArgs,
  normalizeArgv,
  outputArgs,
  outputOptions,
  parseDuration,
  parseIntArg,
} from "../src/cli/args.ts";

const defs = {
  ...identityArgs,
  ...discoveryArgs,
  ...outputArgs,
  output: { type: "string", alias: "o" },
  timeout: { type: "string" },
  "nara-url": { type: "string" },
} as const satisfies ArgsDef;

const norm = (...argv: string[]) => normalizeArgv(argv, defs);

function usageFailure(fn: () => unknown): NaraError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NaraError);
    expect((err as NaraError).exitCode).toBe(ExitCode.usage);
    return err as NaraError;
  }
  throw new Error("expected a usage error");
}

describe("normalizeArgv", () => {
  test("the documented single-dash long forms become double-dash", () => {
    expect(norm("-name", "alice", "-soul", "X", "-verbose")).toEqual(["--name=alice", "--soul=X", "--verbose"]);
    expect(norm("-timeout", "5m", "-nara-url", "http://127.0.0.1:8080")).toEqual([
      "--timeout=5m",
      "--nara-url=http://127.0.0.1:8080",
    ]);
  });

  test("-name=alice and --name=alice", () => {
    expect(norm("-name=alice")).toEqual(["--name=alice"]);
    expect(norm("--name=alice", "--name", "bob")).toEqual(["--name=alice", "--name=bob"]);
  });

  test("a value starting with '-' after a value flag stays a value", () => {
    expect(norm("-soul", "-abc", "-name", "-verbose")).toEqual(["--soul=-abc", "--name=-verbose"]);
    expect(norm("--peers", "--json")).toEqual(["--peers=--json"]);
    const parsed = parseArgs<typeof defs>(norm("-soul", "-name", "-verbose"), defs);
    expect(parsed.soul).toBe("-name");
    expect(parsed.name).toBeUndefined();
    expect(parsed.verbose).toBe(true);
  });

  test("short aliases keep their meaning and are not taken for long names", () => {
    expect(norm("-o", "-")).toEqual(["--output=-"]);
    expect(norm("-o", "out.jsonl", "-q")).toEqual(["--output=out.jsonl", "--quiet"]);
    expect(parseArgs<typeof defs>(norm("-o", "-"), defs).output).toBe("-");
    usageFailure(() => norm("-n", "alice")); // no single-letter alias n
  });

  test("camelCase and kebab spellings map to the canonical name", () => {
    expect(norm("--peersFile", "p.txt", "-peers-file", "q.txt")).toEqual(["--peers-file=p.txt", "--peers-file=q.txt"]);
    expect(parseArgs<typeof defs>(norm("-peers-file", "q.txt"), defs)["peers-file"]).toBe("q.txt");
  });

  test("booleans: negation and explicit values pass through", () => {
    expect(norm("--no-verbose", "-json=false")).toEqual(["--no-verbose", "--json=false"]);
    expect(parseArgs<typeof defs>(norm("-json=false"), defs).json).toBe(false);
  });

  test("positionals, '-' and everything after '--' are left alone", () => {
    expect(norm("file.jsonl", "-", "--", "-name", "--bogus")).toEqual(["file.jsonl", "-", "--", "-name", "--bogus"]);
  });

  test("help flags are known", () => {
    expect(norm("-help")).toEqual(["--help"]);
    expect(norm("-h")).toEqual(["--help"]);
  });

  test("unknown options are usage errors that never echo their value", () => {
    expect(usageFailure(() => norm("-nmae", "alice")).message).toBe("unknown option -nmae");
    const err = usageFailure(() => norm("--sould=SECRETSOUL"));
    expect(err.message).toBe("unknown option --sould");
    expect(err.message + (err.hint ?? "")).not.toContain("SECRETSOUL");
    usageFailure(() => norm("-vq"));
  });

  test("a value flag at the end without a value is a usage error", () => {
    expect(usageFailure(() => norm("-name", "alice", "-soul")).message).toBe("--soul needs a value");
  });
});

describe("parseDuration", () => {
  test.each([
    ["3m", 180_000],
    ["30s", 30_000],
    ["500ms", 500],
    ["1h", 3_600_000],
    ["90", 90_000],
    ["1.5s", 1500],
    ["1m30s", 90_000],
    ["0", 0],
    [" 5m ", 300_000],
  ])("%p is %p ms", (text, ms) => {
    expect(parseDuration(text, "--timeout")).toBe(ms);
  });

  test.each(["", "5x", "m", "-1s", "1d", "5 m", "1m-3s"])("%p is a usage error naming the flag", (text) => {
    const err = usageFailure(() => parseDuration(text, "--timeout"));
    expect(err.message).toStartWith("--timeout:");
  });
});

describe("parseIntArg", () => {
  test("whole numbers within range", () => {
    expect(parseIntArg("10", "--page-size", { min: 1, max: 5000 })).toBe(10);
    expect(parseIntArg("5000", "--page-size", { min: 1, max: 5000 })).toBe(5000);
    expect(parseIntArg("-3", "--n")).toBe(-3);
  });

  test("rejects non-integers and out-of-range values, naming the flag", () => {
    expect(usageFailure(() => parseIntArg("abc", "--concurrency")).message).toContain("--concurrency");
    usageFailure(() => parseIntArg("1.5", "--concurrency"));
    usageFailure(() => parseIntArg("", "--concurrency"));
    expect(usageFailure(() => parseIntArg("0", "--page-size", { min: 1, max: 5000 })).message).toBe(
      "--page-size: 0 is out of range (1..5000)",
    );
    expect(usageFailure(() => parseIntArg("9", "--x", { max: 8 })).message).toContain("at most 8");
    expect(usageFailure(() => parseIntArg("0", "--x", { min: 1 })).message).toContain("at least 1");
  });
});

test("outputOptions rejects --verbose with --quiet", () => {
  expect(outputOptions({ verbose: true })).toEqual({ verbose: true, quiet: false, json: false });
  usageFailure(() => outputOptions({ verbose: true, quiet: true }));
});
