// The update choice (src/update/choose.ts): Bottlerocket's updog rules plus our failed versions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { applicableUpdates, chooseUpdate, type ChoiceInput } from "../../src/update/choose.js";
import type { Manifest, Update } from "../../src/update/manifest.js";

const NOW = new Date("2030-01-01T00:00:00Z");

function u(version: string, max = "9.9.9", extra: Partial<Update> = {}): Update {
  return {
    variant: "dev",
    arch: "x86_64",
    version,
    max_version: max,
    waves: {},
    images: { root: "r", hash: "h", kernel: "k", initrd: "i" },
    roothash: "00",
    "kernel-parameters": [],
    "boot-tries": 1,
    ...extra,
  };
}

function input(updates: Update[], o: Partial<ChoiceInput> = {}): ChoiceInput {
  const manifest: Manifest = { updates, migrations: {} };
  return { manifest, variant: "dev", arch: "x86_64", running: "1.0.0", seed: 100, now: NOW, ignoreWaves: false, versionLock: "latest", failed: new Set(), ...o };
}

test("applicable: same variant and arch, within max_version, sorted newest first", () => {
  const list = applicableUpdates(input([u("1.1.0"), u("1.3.0", "1.2.0"), u("1.2.0"), u("2.0.0", "9.9.9", { variant: "other" }), u("2.1.0", "9.9.9", { arch: "aarch64" })]));
  assert.deepEqual(list.map((x) => x.version), ["1.2.0", "1.1.0"]);
});

test("latest takes the newest above the running version; nothing when up to date", () => {
  assert.equal(chooseUpdate(input([u("1.1.0"), u("1.2.0"), u("0.9.0")]))?.version, "1.2.0");
  assert.equal(chooseUpdate(input([u("1.0.0"), u("0.9.0")])), undefined);
});

test("a lowered max_version pulls a host above it down to the highest allowed", () => {
  const updates = [u("1.0.0", "1.0.0"), u("1.1.0", "1.0.0")];
  assert.equal(chooseUpdate(input(updates, { running: "1.1.0" }))?.version, "1.0.0");
});

test("waves gate unless ignore-waves; a seed before the wave start waits", () => {
  const later = u("1.1.0", "9.9.9", { waves: { "0": "2031-01-01T00:00:00Z", "2048": "2031-01-02T00:00:00Z" } });
  assert.equal(chooseUpdate(input([later])), undefined);
  assert.equal(chooseUpdate(input([later], { ignoreWaves: true }))?.version, "1.1.0");
  const past = u("1.1.0", "9.9.9", { waves: { "0": "2029-01-01T00:00:00Z", "2048": "2029-01-02T00:00:00Z" } });
  assert.equal(chooseUpdate(input([past]))?.version, "1.1.0");
});

test("version-lock takes exactly that version (with or without v), up or down, none if running", () => {
  const updates = [u("0.9.0"), u("1.1.0"), u("1.2.0")];
  assert.equal(chooseUpdate(input(updates, { versionLock: "v1.1.0" }))?.version, "1.1.0");
  assert.equal(chooseUpdate(input(updates, { versionLock: "0.9.0" }))?.version, "0.9.0");
  assert.equal(chooseUpdate(input([u("1.0.0")], { versionLock: "1.0.0" })), undefined);
  assert.equal(chooseUpdate(input(updates, { versionLock: "3.0.0" })), undefined);
});

test("a failed version is skipped by latest but taken when locked explicitly", () => {
  const updates = [u("1.1.0"), u("1.2.0")];
  const failed = new Set(["1.2.0"]);
  assert.equal(chooseUpdate(input(updates, { failed }))?.version, "1.1.0");
  assert.equal(chooseUpdate(input(updates, { failed, versionLock: "1.2.0" }))?.version, "1.2.0");
});
