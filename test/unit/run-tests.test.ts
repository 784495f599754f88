// The test harness itself (scripts/run-tests.mjs) must fail loudly: a missing or empty suite, a run
// with no tests, a test file with no tests and a suite over its time budget are failures, with a
// message saying which, and the time ledger is printed whatever happened. Runs the script against a
// throwaway checkout (--root) holding fake compiled suites.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = fileURLToPath(new URL("../../../scripts/run-tests.mjs", import.meta.url));

const PASSING = `import { test } from "node:test";\ntest("passes", () => {});\n`;
const FAILING = `import { test } from "node:test";\nimport assert from "node:assert";\ntest("fails", () => assert.equal(1, 2));\n`;
const NO_TESTS = `export {};\n`;
// Hangs, with a grandchild in its process group that must die with it.
const HANGING = `import { test } from "node:test";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
test("hangs", () => new Promise(() => {
  const c = spawn("sleep", ["600"], { stdio: "ignore" });
  writeFileSync(process.env.GRANDCHILD_PID_FILE, String(c.pid));
  setInterval(() => {}, 1000);
}));
`;

interface Run {
  status: number | null;
  out: string;
  root: string;
}

/** Lay out `suites` (suite → file name → source; null: no directory) under a fake root and run the script. */
function run(suites: Record<string, Record<string, string> | null>, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const root = mkdtempSync(join(tmpdir(), "caisson-run-tests-"));
  for (const [suite, files] of Object.entries(suites)) {
    if (files === null) continue;
    const dir = join(root, "dist/test", suite);
    mkdirSync(dir, { recursive: true });
    for (const [name, src] of Object.entries(files)) writeFileSync(join(dir, name), src);
  }
  const r = spawnSync(process.execPath, [SCRIPT, ...args, "--root", root, "--runtime", "workstation"], {
    encoding: "utf8",
    env: { ...process.env, ...env },
    timeout: 60_000, // the harness's own deadline: a hang here is a failure, not a stuck run
  });
  assert.equal(r.error, undefined, `run-tests did not finish: ${r.error?.message}`);
  return { status: r.status, out: r.stdout + r.stderr, root };
}

function ledgerOf(r: Run): { suite: string; ok: boolean; budget: number; reason?: string; tests?: number }[] {
  return JSON.parse(readFileSync(join(r.root, ".cache/test-ledger.json"), "utf8")) as ReturnType<typeof ledgerOf>;
}

function withRun(r: Run, check: (r: Run) => void): void {
  try {
    check(r);
  } finally {
    rmSync(r.root, { recursive: true, force: true });
  }
}

test("control: a suite whose tests pass exits 0, with the budget in the ledger", () => {
  withRun(run({ unit: { "a.test.js": PASSING } }, ["unit"]), (r) => {
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /Time ledger\n.*budget.*\n\s+pass\s+[\d.]+ s\s+600 s\s+1\s+unit \(workstation/);
    const [l] = ledgerOf(r);
    assert.equal(l!.ok, true);
    assert.equal(l!.tests, 1);
    assert.equal(l!.budget, 600);
  });
});

test("a failing test fails the run, and the ledger is printed", () => {
  withRun(run({ unit: { "a.test.js": FAILING } }, ["unit"]), (r) => {
    assert.notEqual(r.status, 0);
    assert.match(r.out, /Time ledger/);
    assert.match(r.out, /FAIL .*unit \(workstation.*exited with 1 \(1 failed\)/);
  });
});

test("a selected suite with no directory fails, naming it", () => {
  withRun(run({ unit: null }, ["unit"]), (r) => {
    assert.notEqual(r.status, 0);
    assert.match(r.out, /FAIL unit: no directory dist\/test\/unit/);
    assert.match(r.out, /Time ledger/);
  });
});

test("a selected suite with no test files fails, naming it", () => {
  withRun(run({ integration: { "helper.js": NO_TESTS } }, ["integration"]), (r) => {
    assert.notEqual(r.status, 0);
    assert.match(r.out, /FAIL integration: no test files \(\*\.test\.js\) in dist\/test\/integration/);
  });
});

test("'all' fails when one of its suites is missing, though the others pass", () => {
  withRun(run({ unit: { "a.test.js": PASSING }, integration: { "b.test.js": PASSING } }, ["all"]), (r) => {
    assert.notEqual(r.status, 0);
    assert.match(r.out, /FAIL e2e: no directory dist\/test\/e2e/);
    assert.deepEqual(
      ledgerOf(r).map((l) => [l.suite.split(" ")[0], l.ok]),
      [["unit", true], ["integration", true], ["e2e", false]],
    );
  });
});

test("a run where node --test reports 0 tests fails", () => {
  withRun(run({ unit: { "a.test.js": NO_TESTS, "b.test.js": NO_TESTS } }, ["unit"]), (r) => {
    assert.notEqual(r.status, 0);
    assert.match(r.out, /node --test reported 0 tests in 2 files/);
  });
});

test("a test file that registers no tests fails the run, naming the file", () => {
  withRun(run({ unit: { "a.test.js": PASSING, "b.test.js": NO_TESTS } }, ["unit"]), (r) => {
    assert.notEqual(r.status, 0);
    assert.match(r.out, /test files registering no tests: dist\/test\/unit\/b\.test\.js/);
  });
});

test("a suite over its budget is killed with its process group and fails, saying which and how long", () => {
  const pidDir = mkdtempSync(join(tmpdir(), "caisson-run-tests-pid-"));
  const pidFile = join(pidDir, "pid");
  const t0 = Date.now();
  try {
    withRun(run({ unit: { "a.test.js": PASSING, "hang.test.js": HANGING } }, ["unit", "--budget", "5"], { GRANDCHILD_PID_FILE: pidFile }), (r) => {
      const secs = (Date.now() - t0) / 1000;
      assert.notEqual(r.status, 0);
      assert.match(r.out, /unit \(workstation [^)]*\) still running after its budget of 5 s: killing its process group/);
      assert.match(r.out, /FAIL .*unit \(workstation.*killed after [\d.]+ s: over its budget of 5 s/);
      assert.ok(secs < 30, `the budget was not enforced: the run took ${secs} s`);
      assert.ok(existsSync(pidFile), "the hanging test never started");
      const pid = Number(readFileSync(pidFile, "utf8"));
      // Killed; possibly a zombie not yet reaped by whoever inherited it.
      let state = "gone";
      try {
        state = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /, "")[0]!;
      } catch {
        // gone
      }
      assert.ok(state === "gone" || state === "Z", `the suite's grandchild ${pid} survived (state ${state})`);
    });
  } finally {
    rmSync(pidDir, { recursive: true, force: true });
  }
});

test("bad arguments are refused", () => {
  withRun(run({}, ["nosuch"]), (r) => {
    assert.equal(r.status, 2);
    assert.match(r.out, /unknown suite 'nosuch'/);
  });
  withRun(run({}, ["unit", "--budget", "soon"]), (r) => {
    assert.equal(r.status, 2);
    assert.match(r.out, /--budget must be a positive number/);
  });
});

test("e2e files run one by one, each within its own budget; a file without a budget, or a budgeted file that is gone, fails", () => {
  withRun(run({ e2e: { "image.test.js": PASSING, "new-scenario.test.js": PASSING } }, ["e2e"]), (r) => {
    assert.notEqual(r.status, 0);
    const l = ledgerOf(r);
    const image = l.find((e) => e.suite.startsWith("e2e image.test.js"));
    assert.ok(image?.ok, JSON.stringify(l));
    assert.equal(image.budget, 22 * 60);
    assert.match(r.out, /FAIL e2e new-scenario\.test\.js: no time budget: declare it in SUITES\.e2e\.files/);
    assert.match(r.out, /FAIL e2e update\.test\.js: budgeted in SUITES\.e2e\.files but not found in dist\/test\/e2e/);
    assert.match(r.out, /pass .* 1320 s .* e2e image\.test\.js/);
  });
});
