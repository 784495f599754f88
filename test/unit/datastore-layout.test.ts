// The datastore's layout (src/datastore/layout.ts): the `current` link and its data directories, as
// the store and the migrator share them. Crashes inside the flip: test/integration/migrations.test.ts.
import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createStore, currentVersion, flipCurrent, pruneOldDirs, readCurrent, removeLeftovers, writeVersionDir } from "../../src/datastore/layout.js";
import { Datastore } from "../../src/datastore/store.js";

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "caisson-layout-"));
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

test("no store: readCurrent and currentVersion say undefined", () => {
  assert.equal(readCurrent(base), undefined);
  assert.equal(currentVersion(base), undefined);
  assert.equal(readCurrent(join(base, "absent")), undefined);
});

test("writeVersionDir builds a whole directory beside current; flipCurrent points current at it", () => {
  createStore(base, "1.0.0");
  const first = readCurrent(base)!;
  assert.equal(first.version, "1.0.0");
  assert.deepEqual(first.settings, {});
  assert.deepEqual(first.opened, { state: "ok" });

  const name = writeVersionDir(base, "1.1.0", { motd: "hi" });
  assert.match(name, /^v1\.1\.0_[0-9a-f]{16}$/);
  assert.deepEqual(readdirSync(join(base, name)).sort(), ["live.json", "pending"]);
  assert.deepEqual(JSON.parse(readFileSync(join(base, name, "live.json"), "utf8")), { "datastore-version": "1.1.0", settings: { motd: "hi" }, "last-commit": null });
  assert.equal(statSync(join(base, name)).mode & 0o777, 0o700);
  assert.equal(statSync(join(base, name, "live.json")).mode & 0o777, 0o600);
  assert.equal(readCurrent(base)!.version, "1.0.0", "not the store until flipped");

  flipCurrent(base, name);
  assert.equal(readlinkSync(join(base, "current")), name);
  assert.equal(currentVersion(base), "1.1.0");
  assert.deepEqual(readCurrent(base)!.settings, { motd: "hi" });
  assert.deepEqual(readdirSync(base).filter((f) => f.startsWith(".")), [], "no temporary left");

  // The store opens what the layout wrote.
  assert.deepEqual(Datastore.open(base, "9.9.9").liveSettings(), { motd: "hi" });
});

test("readCurrent checks the link: a symlink, to a v<version>_<id> directory, whose live.json holds that version", () => {
  mkdirSync(join(base, "v1.0.0_ab"));
  writeFileSync(join(base, "current"), "not a link");
  assert.throws(() => readCurrent(base), /current is not a symbolic link/);
  rmSync(join(base, "current"));
  symlinkSync("elsewhere", join(base, "current"));
  assert.throws(() => readCurrent(base), /points at 'elsewhere', not at a v<version>_<id> directory/);
  rmSync(join(base, "current"));
  symlinkSync("v1.0.0_ab", join(base, "current"));
  writeFileSync(join(base, "v1.0.0_ab", "live.json"), JSON.stringify({ "datastore-version": "2.0.0", settings: {}, "last-commit": null }));
  assert.throws(() => readCurrent(base), /holds datastore version 2\.0\.0, but its directory is named for 1\.0\.0/);
  assert.equal(currentVersion(base), "1.0.0", "currentVersion reads the link's name only");
});

test("readCurrent on an unreadable live.json: the store's fallback, and says so", () => {
  createStore(base, "1.0.0");
  const dir = readCurrent(base)!.dir;
  writeFileSync(join(dir, "live.json"), "{");
  const cur = readCurrent(base)!;
  assert.equal(cur.opened.state, "empty");
  assert.match(cur.opened.error!, /is not valid JSON/);
  assert.equal(cur.version, "1.0.0");
  assert.deepEqual(cur.settings, {});
});

test("removeLeftovers clears what a crash in the flip leaves; pruneOldDirs keeps current and the newest others", () => {
  createStore(base, "1.0.0");
  const names = ["1.1.0", "1.2.0", "1.3.0"].map((v) => writeVersionDir(base, v, {}));
  // Oldest first, by mtime.
  names.forEach((n, i) => utimesSync(join(base, n), new Date(1000 * (i + 1)), new Date(1000 * (i + 1))));
  const cur = readlinkSync(join(base, "current"));
  utimesSync(join(base, cur), new Date(0), new Date(0));
  mkdirSync(join(base, ".tmp-v2.0.0_00"));
  symlinkSync("v2.0.0_00", join(base, ".current-0000"));
  removeLeftovers(base);
  assert.deepEqual(readdirSync(base).filter((f) => f.startsWith(".")), []);
  removeLeftovers(join(base, "absent"));

  pruneOldDirs(base, 1);
  assert.deepEqual(readdirSync(base).sort(), ["current", cur, names[2]!].sort());
});
