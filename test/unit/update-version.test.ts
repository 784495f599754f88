// Version helpers (src/update/version.ts, over the `semver` package): semver precedence for the
// manifest, the hop keys and version-lock; the repository tool's strict X.Y.Z[-pre].
import { test } from "node:test";
import assert from "node:assert/strict";
import { assertSemver, compareVersions, isSemver, maxVersion, normalizeVersion } from "../../src/update/version.js";

test("compareVersions is semver precedence", () => {
  assert.equal(compareVersions("1.0.0", "1.0.0"), 0);
  assert.equal(compareVersions("1.2.0", "1.10.0"), -1);
  assert.equal(compareVersions("1.10.0", "1.9.0"), 1);
  assert.equal(compareVersions("2.0.0", "1.99.99"), 1);
  assert.equal(compareVersions("1.0.0-rc.1", "1.0.0"), -1);
  assert.equal(compareVersions("1.0.0-rc.2", "1.0.0-rc.10"), -1);
  assert.equal(compareVersions("1.0.0-1", "1.0.0-alpha"), -1);
  assert.equal(compareVersions("1.0.0-alpha", "1.0.0-alpha.1"), -1);
  assert.equal(["1.10.0", "1.0.0", "1.2.0-rc.1", "1.2.0"].sort(compareVersions).join(" "), "1.0.0 1.2.0-rc.1 1.2.0 1.10.0");
});

test("compareVersions: a leading v and build metadata are accepted, build metadata does not order", () => {
  assert.equal(compareVersions("v1.2.3", "1.2.3"), 0);
  assert.equal(compareVersions(" 1.2.3 ", "1.2.3"), 0);
  assert.equal(compareVersions("1.2.3+a", "1.2.3+b"), 0);
  assert.equal(compareVersions("1.2.3-rc.1+a", "1.2.3"), -1);
});

test("compareVersions refuses what is not a version", () => {
  assert.throws(() => compareVersions("1.0", "1.0.0"), /not a semantic version \(X\.Y\.Z\): '1\.0'/);
  assert.throws(() => compareVersions("1.0.0", "latest"), /not a semantic version \(X\.Y\.Z\): 'latest'/);
  assert.throws(() => compareVersions("1.0.0", ""), /not a semantic version/);
});

test("maxVersion", () => {
  assert.equal(maxVersion("1.2.0", "1.10.0"), "1.10.0");
  assert.equal(maxVersion("1.0.0", "1.0.0-rc.1"), "1.0.0");
  assert.equal(maxVersion("1.0.0", "1.0.0"), "1.0.0");
});

test("assertSemver: exactly X.Y.Z or X.Y.Z-pre (what the repository tool publishes)", () => {
  for (const v of ["1.0.0", "0.1.0", "10.20.30", "1.0.0-rc.1", "1.0.0-alpha-1.x"]) {
    assert.ok(isSemver(v), v);
    assert.doesNotThrow(() => assertSemver(v));
  }
  for (const v of ["1.0", "one", "v1.0.0", "1.0.0+build.5", " 1.0.0", "1.0.0-", ""]) assert.equal(isSemver(v), false, v);
  assert.throws(() => assertSemver("1.3"), /^Error: version "1\.3" is not a semantic version \(X\.Y\.Z or X\.Y\.Z-pre\)$/);
  assert.throws(() => assertSemver("x", "max version"), /max version "x" is not a semantic version/);
});

test("normalizeVersion drops version-lock's leading v", () => {
  assert.equal(normalizeVersion("v1.2.3"), "1.2.3");
  assert.equal(normalizeVersion(" 1.2.3 "), "1.2.3");
  assert.equal(normalizeVersion("1.2.3-rc.1"), "1.2.3-rc.1");
});
