// The manifest module (src/update/manifest.ts): findMigrations, Bottlerocket's find_migrations
// over the manifest's "(FROM, TO)" hops (moved here from test/unit/migrations-find.test.ts with the
// function), and parseManifest's checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { findMigrations, MissingMigrationError, ManifestError, parseManifest } from "../../src/update/manifest.js";

const manifest = {
  migrations: {
    "(1.0.0, 1.1.0)": ["migrate_v1.1.0_a.mjs", "migrate_v1.1.0_b.mjs"],
    "(1.1.0, 1.2.0)": [],
    "(1.2.0, 1.3.0)": ["migrate_v1.3.0_c.mjs"],
    // A shortcut that skips 1.2.0 and 1.3.0: preferred whenever it does not overshoot.
    "(1.1.0, 1.4.0)": ["migrate_v1.4.0_d.mjs"],
    "(1.4.0, 1.5.0)": ["migrate_v1.5.0_e.mjs"],
  },
};

test("same version: nothing to run", () => {
  assert.deepEqual(findMigrations("1.1.0", "1.1.0", manifest), []);
});

test("forward: each hop's list in order, an empty hop still counts", () => {
  assert.deepEqual(findMigrations("1.0.0", "1.1.0", manifest), [
    { name: "migrate_v1.1.0_a.mjs", direction: "forward" },
    { name: "migrate_v1.1.0_b.mjs", direction: "forward" },
  ]);
  assert.deepEqual(findMigrations("1.1.0", "1.2.0", manifest), []);
  assert.deepEqual(
    findMigrations("1.0.0", "1.3.0", manifest).map((m) => m.name),
    ["migrate_v1.1.0_a.mjs", "migrate_v1.1.0_b.mjs", "migrate_v1.3.0_c.mjs"],
  );
});

test("forward: takes the hop that goes furthest without passing the target", () => {
  assert.deepEqual(
    findMigrations("1.0.0", "1.5.0", manifest).map((m) => m.name),
    ["migrate_v1.1.0_a.mjs", "migrate_v1.1.0_b.mjs", "migrate_v1.4.0_d.mjs", "migrate_v1.5.0_e.mjs"],
  );
});

test("backward: the upward list reversed, each module run backward", () => {
  assert.deepEqual(findMigrations("1.3.0", "1.0.0", manifest), [
    { name: "migrate_v1.3.0_c.mjs", direction: "backward" },
    { name: "migrate_v1.1.0_b.mjs", direction: "backward" },
    { name: "migrate_v1.1.0_a.mjs", direction: "backward" },
  ]);
});

test("either direction covers the same modules (what the update agent caches for the migrator)", () => {
  const m = { migrations: { "(1.0.0, 1.1.0)": ["m1"], "(1.1.0, 1.2.0)": ["m2", "m3"], "(1.0.0, 1.0.5)": ["x"] } };
  assert.deepEqual(findMigrations("1.0.0", "1.2.0", m).map((p) => p.name), ["m1", "m2", "m3"]);
  assert.deepEqual(findMigrations("1.2.0", "1.0.0", m).map((p) => p.name), ["m3", "m2", "m1"]);
  assert.throws(() => findMigrations("1.0.0", "1.3.0", m), /no migration hop from 1\.2\.0/);
});

test("missing hop: MissingMigration naming where the walk stopped", () => {
  assert.throws(() => findMigrations("1.0.0", "2.0.0", manifest), (e: Error) => e instanceof MissingMigrationError && /from 1\.5\.0 towards 2\.0\.0/.test(e.message));
  assert.throws(() => findMigrations("0.9.0", "1.1.0", manifest), MissingMigrationError);
  // 1.1.0 -> 1.3.5: 1.1.0 -> 1.2.0 -> 1.3.0, then nothing from 1.3.0 that stays <= 1.3.5.
  assert.throws(() => findMigrations("1.1.0", "1.3.5", manifest), /from 1\.3\.0 towards 1\.3\.5/);
  assert.throws(() => findMigrations("1.1.0", "1.0.0", { migrations: {} }), MissingMigrationError);
});

test("malformed or duplicate hop keys are refused", () => {
  assert.throws(() => findMigrations("1.0.0", "1.1.0", { migrations: { "1.0.0 -> 1.1.0": [] } }), /is not "\(FROM, TO\)"/);
  assert.throws(() => findMigrations("1.0.0", "1.1.0", { migrations: { "(1.0.0, 1.1.0)": [], "(1.0.0,1.1.0)": [] } }), /appears twice/);
});

test("parseManifest checks the shape and names the offending field", () => {
  const u = {
    variant: "dev", arch: "x86_64", version: "1.1.0", max_version: "1.1.0", roothash: "ab", waves: {},
    images: { root: "r", hash: "h", kernel: "k", initrd: "i" }, "kernel-parameters": [], "boot-tries": 1,
  };
  assert.deepEqual(parseManifest(JSON.stringify({ updates: [u] })), { updates: [u], migrations: {} });
  assert.throws(() => parseManifest("{"), (e: Error) => e instanceof ManifestError && /not JSON/.test(e.message));
  assert.throws(() => parseManifest(JSON.stringify({ updates: {} })), /'updates' must be an array/);
  assert.throws(() => parseManifest(JSON.stringify({ updates: [{ ...u, roothash: 1 }] })), /updates\[0\]\.roothash must be a string/);
  assert.throws(() => parseManifest(JSON.stringify({ updates: [{ ...u, "boot-tries": 0 }] })), /boot-tries must be a positive integer/);
  assert.throws(() => parseManifest(JSON.stringify({ updates: [u], migrations: { "(1.0.0, 1.1.0)": [1] } })), /'migrations' must map/);
});
