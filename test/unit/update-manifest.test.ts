// The manifest module (src/update/manifest.ts): findMigrations, Bottlerocket's find_migrations
// over the manifest's "(FROM, TO)" hops (moved here from test/unit/migrations-find.test.ts with the
// function), parseManifest's checks, and the repository tool's rules for changing the manifest
// (addUpdate, setCeiling, addHop, previousVersion; moved from src/repo/repository.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  addHop,
  addUpdate,
  checkAddable,
  findMigrations,
  MissingMigrationError,
  ManifestError,
  parseManifest,
  previousVersion,
  serializeManifest,
  setCeiling,
  type Manifest,
  type Update,
} from "../../src/update/manifest.js";

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

/** An update as the repository tool adds it (no max_version: addUpdate decides it). */
function entry(version: string, o: Partial<Update> = {}): Omit<Update, "max_version"> & { max_version?: string } {
  return {
    variant: "dev",
    arch: "x86_64",
    version,
    waves: {},
    images: { root: `r-${version}`, hash: `h-${version}`, kernel: `k-${version}`, initrd: `i-${version}` },
    roothash: "ab",
    "kernel-parameters": [],
    "boot-tries": 3,
    ...o,
  };
}

const empty = (): Manifest => ({ updates: [], migrations: {} });
const ceilings = (m: Manifest) => m.updates.map((u) => [u.variant, u.arch, u.version, u.max_version]);

test("addUpdate: the first update is its own ceiling; a newer one raises every ceiling of its variant+arch", () => {
  const m1 = addUpdate(empty(), entry("1.0.0")).manifest;
  assert.deepEqual(ceilings(m1), [["dev", "x86_64", "1.0.0", "1.0.0"]]);
  const { manifest: m2, update } = addUpdate(m1, entry("1.1.0"));
  assert.equal(update.max_version, "1.1.0");
  assert.deepEqual(ceilings(m2), [
    ["dev", "x86_64", "1.1.0", "1.1.0"],
    ["dev", "x86_64", "1.0.0", "1.1.0"],
  ]);
  // Pure: the input manifest is unchanged.
  assert.deepEqual(ceilings(m1), [["dev", "x86_64", "1.0.0", "1.0.0"]]);
});

test("addUpdate: an older update takes the current ceiling; an explicit max_version overrides it (and lowers it)", () => {
  let m = addUpdate(empty(), entry("1.2.0")).manifest;
  m = addUpdate(m, entry("1.1.0")).manifest;
  assert.deepEqual(ceilings(m).map((c) => c[3]), ["1.2.0", "1.2.0"]);
  m = addUpdate(m, entry("1.3.0", { max_version: "1.1.0" })).manifest;
  assert.deepEqual(ceilings(m).map((c) => c[3]), ["1.1.0", "1.1.0", "1.1.0"]);
});

test("addUpdate: other variants and arches keep their ceilings; the list is newest first, then variant, then arch", () => {
  let m = addUpdate(empty(), entry("1.0.0", { variant: "prod" })).manifest;
  m = addUpdate(m, entry("1.0.0", { arch: "aarch64" })).manifest;
  m = addUpdate(m, entry("1.0.0")).manifest;
  m = addUpdate(m, entry("2.0.0")).manifest;
  assert.deepEqual(ceilings(m), [
    ["dev", "x86_64", "2.0.0", "2.0.0"],
    ["dev", "aarch64", "1.0.0", "1.0.0"],
    ["dev", "x86_64", "1.0.0", "2.0.0"],
    ["prod", "x86_64", "1.0.0", "1.0.0"],
  ]);
  // Keys in the wire order: max_version right after version.
  assert.deepEqual(Object.keys(m.updates[0]!), ["variant", "arch", "version", "max_version", "waves", "images", "roothash", "kernel-parameters", "boot-tries"]);
});

test("addUpdate: a published version is refused unless replaced; replacing keeps the ceiling it counted", () => {
  let m = addUpdate(empty(), entry("1.0.0")).manifest;
  m = setCeiling(m, { variant: "dev", maxVersion: "2.0.0" }).manifest;
  assert.throws(() => addUpdate(m, entry("1.0.0")), (e: Error) => e instanceof ManifestError && /dev x86_64 1\.0\.0 is already published; pass replace/.test(e.message));
  assert.throws(() => checkAddable(m, { variant: "dev", arch: "x86_64", version: "1.0.0" }), ManifestError);
  checkAddable(m, { variant: "dev", arch: "aarch64", version: "1.0.0" });
  checkAddable(m, { variant: "dev", arch: "x86_64", version: "1.0.0" }, { replace: true });
  const r = addUpdate(m, entry("1.0.0", { roothash: "cd" }), { replace: true }).manifest;
  assert.equal(r.updates.length, 1);
  assert.equal(r.updates[0]!.roothash, "cd");
  assert.equal(r.updates[0]!.max_version, "2.0.0");
});

test("setCeiling: every update of the variant (and arch, when given); none matching is an error", () => {
  let m = addUpdate(empty(), entry("1.0.0")).manifest;
  m = addUpdate(m, entry("1.1.0")).manifest;
  m = addUpdate(m, entry("1.1.0", { arch: "aarch64" })).manifest;
  const all = setCeiling(m, { variant: "dev", maxVersion: "1.0.0" });
  assert.equal(all.updated, 3);
  assert.deepEqual(all.manifest.updates.map((u) => u.max_version), ["1.0.0", "1.0.0", "1.0.0"]);
  const one = setCeiling(m, { variant: "dev", arch: "aarch64", maxVersion: "1.0.0" });
  assert.equal(one.updated, 1);
  assert.deepEqual(ceilings(one.manifest), [
    ["dev", "aarch64", "1.1.0", "1.0.0"],
    ["dev", "x86_64", "1.1.0", "1.1.0"],
    ["dev", "x86_64", "1.0.0", "1.1.0"],
  ]);
  assert.deepEqual(m.updates.map((u) => u.max_version), ["1.1.0", "1.1.0", "1.1.0"], "input unchanged");
  assert.throws(() => setCeiling(m, { variant: "prod", maxVersion: "1.0.0" }), /no update of variant prod is published/);
  assert.throws(() => setCeiling(m, { variant: "dev", arch: "riscv64", maxVersion: "1.0.0" }), /no update of variant dev \(riscv64\) is published/);
});

test("previousVersion and addHop: a new hop starts at the highest lower version of the variant; an empty hop still counts", () => {
  let m = addUpdate(empty(), entry("1.0.0")).manifest;
  m = addUpdate(m, entry("1.2.0")).manifest;
  m = addUpdate(m, entry("1.5.0", { variant: "prod" })).manifest;
  assert.equal(previousVersion(m, "dev", "1.3.0"), "1.2.0");
  assert.equal(previousVersion(m, "dev", "1.2.0"), "1.0.0");
  assert.equal(previousVersion(m, "dev", "1.0.0"), undefined);
  const h = addHop(addHop(m, "1.0.0", "1.2.0", []), "1.2.0", "1.3.0", ["migrate_v1.3.0_a.mjs"]);
  assert.deepEqual(h.migrations, { "(1.0.0, 1.2.0)": [], "(1.2.0, 1.3.0)": ["migrate_v1.3.0_a.mjs"] });
  assert.deepEqual(m.migrations, {}, "input unchanged");
  assert.deepEqual(findMigrations("1.0.0", "1.3.0", h), [{ name: "migrate_v1.3.0_a.mjs", direction: "forward" }]);
});

test("serializeManifest round-trips through parseManifest", () => {
  const m = addHop(addUpdate(empty(), entry("1.0.0")).manifest, "0.9.0", "1.0.0", ["migrate_v1.0.0_x.mjs"]);
  const bytes = serializeManifest(m);
  assert.ok(bytes.toString().endsWith("}\n"));
  assert.deepEqual(parseManifest(bytes.toString()), m);
});
