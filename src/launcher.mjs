#!/usr/bin/env node
/**
 * The package's bin: `npx nara-backup` on a machine with only Node.js, and
 * `bunx nara-backup`. The CLI (src/cli.ts) needs Bun; this file needs only
 * Node. It runs the CLI with the Bun that npm installed as our dependency
 * (or, failing that, the `bun` on PATH), passing arguments, stdin, stdout,
 * stderr, signals and the exit code through unchanged.
 *
 * Plain JavaScript on purpose: Node runs it as it is, before Bun is found.
 */
import { spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const cli = fileURLToPath(new URL("./cli.ts", import.meta.url));
const args = process.argv.slice(2);

if (process.versions.bun) {
  // Already Bun (bunx, `bun src/launcher.mjs`): no second process.
  const { main } = await import("./cli.ts");
  process.exitCode = await main(args);
} else {
  run(findBun());
}

/** Where npm's `bun` package put the binary, else the platform package it came from, else PATH. */
function findBun() {
  const real = (file) => {
    try {
      // Bun's postinstall replaces a placeholder of a few bytes with the real binary.
      return statSync(file).size > 1_000_000;
    } catch {
      return false;
    }
  };
  let pkgDir;
  try {
    pkgDir = dirname(createRequire(import.meta.url).resolve("bun/package.json"));
  } catch {
    return "bun";
  }
  const installed = join(pkgDir, "bin", "bun.exe");
  if (real(installed)) return installed;
  // With --ignore-scripts the binary stays in the platform package.
  const os = process.platform === "win32" ? "windows" : process.platform;
  const arch = process.arch === "arm64" ? "aarch64" : process.arch;
  // Node reports the glibc it runs on; none on Linux means musl (Alpine).
  const musl = process.platform === "linux" && !process.report?.getReport?.().header?.glibcVersionRuntime;
  const suffixes = musl ? ["-musl", "-musl-baseline", "", "-baseline"] : ["", "-baseline", "-musl", "-musl-baseline"];
  const from = createRequire(join(pkgDir, "package.json"));
  for (const suffix of suffixes) {
    try {
      const dir = dirname(from.resolve(`@oven/bun-${os}-${arch}${suffix}/package.json`));
      const file = join(dir, "bin", process.platform === "win32" ? "bun.exe" : "bun");
      if (real(file)) return file;
    } catch {}
  }
  return "bun";
}

function run(bun) {
  const child = spawn(bun, [cli, ...args], { stdio: "inherit" });
  // A signal sent to this process goes to the CLI, which decides what to do (exit 130 after cleaning up).
  const signals = ["SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR2"];
  const relay = (signal) => {
    // Ctrl-C and Ctrl-\ reach the terminal's whole foreground process group, the CLI included: relaying them
    // would deliver them twice (restore-events takes a second Ctrl-C as "quit at once").
    if ((signal === "SIGINT" || signal === "SIGQUIT") && inTerminalForeground()) return;
    try {
      child.kill(signal);
    } catch {}
  };
  for (const s of signals) process.on(s, relay);
  child.on("error", (err) => {
    const missing = err.code === "ENOENT";
    process.stderr.write(
      `error: cannot start Bun to run nara-backup (${missing ? "no bun binary found" : err.message})\n` +
        "hint: reinstall without --ignore-scripts (npm install nara-backup installs Bun), or install Bun: https://bun.sh\n",
    );
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    for (const s of signals) process.off(s, relay);
    if (signal) {
      // Die of the same signal, so our parent sees what the CLI's parent would have seen.
      process.kill(process.pid, signal);
      // Only if that signal does not end a process by default.
      setImmediate(() => process.exit(128 + (constants.signals[signal] ?? 0)));
      return;
    }
    process.exit(code ?? 1);
  });
}

/** Linux: this process is in the foreground process group of its controlling terminal (/proc/self/stat pgrp = tpgid). */
function inTerminalForeground() {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // Fields after the command name in parentheses: state ppid pgrp session tty_nr tpgid ...
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[5]) > 0 && f[2] === f[5];
  } catch {
    return false;
  }
}
