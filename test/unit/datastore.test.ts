import { test, beforeEach, afterEach } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, dirname } from "node:path";
import { Datastore, DatastoreError, NothingPendingError, DEFAULT_TX, checkTxName } from "../../src/datastore/store.js";

let base: string;
beforeEach(() => {
  base = mkdtempSync(join(tmpdir(), "caisson-ds-"));
});
afterEach(() => {
  rmSync(base, { recursive: true, force: true });
});

const pendingDir = (s: Datastore) => join(s.dir, "pending");
const readLive = (s: Datastore) => JSON.parse(readFileSync(join(s.dir, "live.json"), "utf8")) as Record<string, unknown>;

/** Every file under `dir`, relative to it. */
function walk(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(join(dir, e.name), rel));
    else out.push(rel);
  }
  return out.sort();
}

test("open creates the store: current -> v<version>_<rand>, empty live settings", () => {
  const s = Datastore.open(base, "1.2.0");
  const current = join(base, "current");
  assert.ok(lstatSync(current).isSymbolicLink());
  const target = readlinkSync(current);
  assert.match(target, /^v1\.2\.0_[0-9a-f]{16}$/);
  assert.equal(s.dir, join(base, target));
  assert.equal(s.version, "1.2.0");
  assert.deepEqual(s.liveSettings(), {});
  assert.deepEqual(s.transactions(), []);
  assert.deepEqual(readLive(s), { "datastore-version": "1.2.0", settings: {}, "last-commit": null });
  assert.ok(existsSync(pendingDir(s)));
  assert.deepEqual(readdirSync(base).sort(), ["current", target], "no temporary symlink left");

  // Reopening finds the existing store; the version asked for only applies to creation.
  const again = Datastore.open(base, "9.9.9");
  assert.equal(again.dir, s.dir);
  assert.equal(again.version, "1.2.0");
  assert.equal(readlinkSync(current), target);
});

test("patch merges into the pending settings of a transaction, not into live", () => {
  const s = Datastore.open(base, "1");
  s.patch(DEFAULT_TX, { motd: "one" });
  s.patch(DEFAULT_TX, { kernel: { sysctl: { "vm.max_map_count": "262144" } } });
  s.patch(DEFAULT_TX, { kernel: { sysctl: { "net.ipv4.ip_forward": "1" } }, motd: "two" });
  assert.deepEqual(s.pendingSettings(DEFAULT_TX), {
    motd: "two",
    kernel: { sysctl: { "vm.max_map_count": "262144", "net.ipv4.ip_forward": "1" } },
  });
  assert.deepEqual(s.liveSettings(), {});
  assert.deepEqual(s.transactions(), [DEFAULT_TX]);
  assert.deepEqual(readdirSync(pendingDir(s)), ["default.json"]);
  assert.deepEqual(s.pendingSettings("nope"), {});
});

test("pending transactions survive a reopen", () => {
  const s = Datastore.open(base, "1");
  s.patch("zeta", { motd: "z" });
  s.patch("alpha", { ntp: { "time-servers": ["a.example"] } });
  s.patch("alpha", { ntp: { options: ["iburst"] } });
  const again = Datastore.open(base, "1");
  assert.deepEqual(again.transactions(), ["alpha", "zeta"]);
  assert.deepEqual(again.pendingSettings("alpha"), { ntp: { "time-servers": ["a.example"], options: ["iburst"] } });
  assert.deepEqual(again.pendingSettings("zeta"), { motd: "z" });
  assert.deepEqual(again.liveSettings(), {});
});

test("deleteTx drops the transaction and returns the keys it held", () => {
  const s = Datastore.open(base, "1");
  s.patch("t", { motd: "m", kernel: { sysctl: { "vm.swappiness": "10" }, lockdown: "integrity" } });
  s.patch("keep", { motd: "k" });
  assert.deepEqual(s.deleteTx("t"), ['settings.kernel.lockdown', 'settings.kernel.sysctl."vm.swappiness"', "settings.motd"]);
  assert.deepEqual(s.transactions(), ["keep"]);
  assert.deepEqual(s.pendingSettings("t"), {});
  assert.deepEqual(readdirSync(pendingDir(s)), ["keep.json"]);
  assert.deepEqual(s.deleteTx("t"), [], "deleting an absent transaction is a no-op");
  assert.deepEqual(Datastore.open(base, "1").transactions(), ["keep"]);
});

test("commit makes a transaction live and returns exactly the keys whose values changed", () => {
  const s = Datastore.open(base, "1");
  s.patch("t", { motd: "hello", kernel: { sysctl: { "vm.a": "1", "vm.b": "2" } }, ntp: { "time-servers": ["x.example"] } });
  assert.deepEqual(s.commit("t"), ["settings.kernel.sysctl.\"vm.a\"", 'settings.kernel.sysctl."vm.b"', "settings.motd", 'settings.ntp.time-servers']);

  // Same motd, same vm.a, same list: not reported. vm.b changed, vm.c added, list changed.
  s.patch("t", { motd: "hello", kernel: { sysctl: { "vm.a": "1", "vm.b": "3", "vm.c": "4" } } });
  s.patch("u", { ntp: { "time-servers": ["x.example"] } });
  assert.deepEqual(s.commit("t"), ['settings.kernel.sysctl."vm.b"', 'settings.kernel.sysctl."vm.c"']);
  assert.deepEqual(s.commit("u"), [], "a commit that changes nothing reports nothing");
  assert.deepEqual(s.liveSettings(), { motd: "hello", kernel: { sysctl: { "vm.a": "1", "vm.b": "3", "vm.c": "4" } }, ntp: { "time-servers": ["x.example"] } });
  assert.deepEqual(s.transactions(), []);
  assert.deepEqual(readdirSync(pendingDir(s)), []);

  const live = readLive(s);
  assert.deepEqual(live.settings, s.liveSettings());
  assert.equal((live["last-commit"] as { tx: string }).tx, "u");
  const again = Datastore.open(base, "1");
  assert.deepEqual(again.liveSettings(), s.liveSettings());
  assert.deepEqual(again.transactions(), []);
});

test("commit with nothing pending throws NothingPendingError", () => {
  const s = Datastore.open(base, "1");
  assert.throws(() => s.commit(DEFAULT_TX), NothingPendingError);
  s.patch("empty", {});
  assert.throws(() => s.commit("empty"), NothingPendingError);
  s.patch("t", { motd: "x" });
  s.commit("t");
  assert.throws(() => s.commit("t"), NothingPendingError, "a transaction is consumed by its commit");
  assert.deepEqual(s.liveSettings(), { motd: "x" });
});

test("two transactions are independent", () => {
  const s = Datastore.open(base, "1");
  s.patch("a", { motd: "from a", kernel: { sysctl: { "vm.a": "1" } } });
  s.patch("b", { motd: "from b", kernel: { sysctl: { "vm.b": "2" } } });
  assert.deepEqual(s.commit("a"), ['settings.kernel.sysctl."vm.a"', "settings.motd"]);
  assert.deepEqual(s.liveSettings(), { motd: "from a", kernel: { sysctl: { "vm.a": "1" } } });
  assert.deepEqual(s.transactions(), ["b"]);
  assert.deepEqual(s.pendingSettings("b"), { motd: "from b", kernel: { sysctl: { "vm.b": "2" } } });
  assert.deepEqual(Datastore.open(base, "1").pendingSettings("b"), { motd: "from b", kernel: { sysctl: { "vm.b": "2" } } });
  assert.deepEqual(s.commit("b"), ['settings.kernel.sysctl."vm.b"', "settings.motd"]);
  assert.deepEqual(s.liveSettings(), { motd: "from b", kernel: { sysctl: { "vm.a": "1", "vm.b": "2" } } });
});

test("invalid transaction names are rejected", () => {
  const s = Datastore.open(base, "1");
  for (const bad of ["", "has space", "tab\there", "new\nline", "caf\u00e9", "x".repeat(65), "nul\u0000"]) {
    assert.throws(() => checkTxName(bad), DatastoreError, JSON.stringify(bad));
    assert.throws(() => s.patch(bad, { motd: "x" }), DatastoreError, JSON.stringify(bad));
  }
  assert.deepEqual(readdirSync(pendingDir(s)), []);
  checkTxName("x".repeat(64));
  checkTxName("!~");
});

test("transaction names with dots, slashes and percents round-trip and stay inside pending/", () => {
  const s = Datastore.open(base, "1");
  const names = ["../x", "../../../../etc/passwd", "a.b", "a/b", "/abs", ".", "..", ".hidden", "100%", "%2E", "%2E%2E%2Fx", "a%2Fb", "x.json", "~!*'()", "default"];
  names.forEach((n, i) => s.patch(n, { motd: `m${i}` }));
  const files = walk(base);
  const rel = relative(base, pendingDir(s));
  // Every transaction is one file directly in pending/, and nothing else appeared anywhere.
  assert.deepEqual(files.filter((f) => !f.startsWith(`${rel}/`)), ["current", `${relative(base, s.dir)}/live.json`]);
  const pending = readdirSync(pendingDir(s));
  assert.equal(pending.length, names.length);
  for (const f of pending) {
    assert.ok(!f.startsWith("."), `${f} would be taken for a temporary file`);
    assert.ok(!f.includes("/") && f.endsWith(".json"));
  }
  assert.ok(!existsSync(join(dirname(pendingDir(s)), "x.json")));

  const again = Datastore.open(base, "1");
  assert.deepEqual(again.transactions(), [...names].sort());
  names.forEach((n, i) => assert.deepEqual(again.pendingSettings(n), { motd: `m${i}` }, n));
  assert.deepEqual(again.deleteTx("../x"), ["settings.motd"]);
  assert.deepEqual(again.commit("a/b"), ["settings.motd"]);
  assert.equal(readdirSync(pendingDir(again)).length, names.length - 2);
  assert.deepEqual(Datastore.open(base, "1").transactions(), names.filter((n) => n !== "../x" && n !== "a/b").sort());
});

test("a torn pending file is discarded on open", () => {
  const s = Datastore.open(base, "1");
  s.patch("good", { motd: "ok" });
  writeFileSync(join(pendingDir(s), "torn.json"), '{"id":"abc","settings":{"motd":"hal');
  writeFileSync(join(pendingDir(s), "empty.json"), "");
  const again = Datastore.open(base, "1");
  assert.deepEqual(again.transactions(), ["good"]);
  assert.deepEqual(readdirSync(pendingDir(s)), ["good.json"]);
});

test("stray temporary files are removed on open", () => {
  const s = Datastore.open(base, "1");
  s.patch("good", { motd: "ok" });
  s.patch("t", { motd: "live" });
  s.commit("t");
  writeFileSync(join(pendingDir(s), `.good.json.tmp-${process.pid}-0a1b2c3d`), '{"id":"x","settings":{"motd":"half');
  writeFileSync(join(pendingDir(s), "leftover.tmp"), "junk");
  writeFileSync(join(s.dir, `.live.json.tmp-${process.pid}-deadbeef`), '{"datastore-version":"1","settings":{"mo');
  writeFileSync(join(s.dir, `.live.json.last-good.tmp-${process.pid}-deadbeef`), '{"datastore-version":"1","settings":{"mo');
  const again = Datastore.open(base, "1");
  assert.deepEqual(readdirSync(pendingDir(s)), ["good.json"]);
  assert.deepEqual(readdirSync(s.dir).sort(), ["live.json", "live.json.last-good", "pending"]);
  assert.deepEqual(again.transactions(), ["good"]);
  assert.deepEqual(again.liveSettings(), { motd: "live" });
});

test("recovery: a pending file already consumed by live.json's last commit is deleted on open", () => {
  const s = Datastore.open(base, "1");
  s.patch("t", { motd: "new" });
  s.patch("other", { motd: "other" });
  const saved = join(base, "t.json.saved");
  const tFile = join(pendingDir(s), "t.json");
  copyFileSync(tFile, saved);
  const { id } = JSON.parse(readFileSync(tFile, "utf8")) as { id: string };
  s.commit("t");
  assert.ok(!existsSync(tFile));

  // The state of a crash after live.json's rename, before the pending file's unlink.
  copyFileSync(saved, tFile);
  assert.deepEqual(readLive(s)["last-commit"], { tx: "t", id });
  const again = Datastore.open(base, "1");
  assert.deepEqual(again.transactions(), ["other"]);
  assert.ok(!existsSync(tFile), "the consumed pending file is deleted");
  assert.deepEqual(again.liveSettings(), { motd: "new" });
  assert.throws(() => again.commit("t"), NothingPendingError, "the transaction cannot be committed twice");

  // A pending file with another id (a newer patch of the same tx) is a real transaction: kept.
  again.patch("t", { motd: "newer" });
  const third = Datastore.open(base, "1");
  assert.deepEqual(third.transactions(), ["other", "t"]);
  assert.deepEqual(third.pendingSettings("t"), { motd: "newer" });
  assert.deepEqual(third.commit("t"), ["settings.motd"]);
});

// An unreadable live.json (issue 8): the store opens on the last good copy each commit keeps, or
// on empty settings, says why in `opened`, keeps the bad file, and the next commit repairs it.
const CORRUPTIONS: [string, string][] = [
  ["truncated to nothing", ""],
  ["cut in the middle", '{"datastore-version":"1","settings":{"motd":"tw'],
  ["garbage", "\u0000\u0017garbage\xff"],
  ["the wrong shape", '{"datastore-version":"1","settings":["motd"],"last-commit":null}'],
  ["not an object", "42"],
];

for (const [what, bytes] of CORRUPTIONS) {
  test(`live.json ${what}: open falls back to the last good copy and says why`, () => {
    const s = Datastore.open(base, "1");
    s.patch("a", { motd: "one" });
    s.commit("a");
    s.patch("b", { motd: "two", hostname: "h" });
    s.commit("b");
    assert.deepEqual(JSON.parse(readFileSync(join(s.dir, "live.json.last-good"), "utf8")).settings, { motd: "one" }, "the copy is the settings the last commit replaced");
    writeFileSync(join(s.dir, "live.json"), bytes);

    const again = Datastore.open(base, "1");
    assert.equal(again.opened.state, "last-good");
    assert.match(again.opened.error!, /live\.json (is not valid JSON|holds no JSON object|has no settings table)/);
    assert.deepEqual(again.liveSettings(), { motd: "one" });
    assert.equal(again.version, "1");
    assert.equal(readFileSync(join(s.dir, "live.json.corrupt"), "utf8"), bytes, "the bad file is kept for inspection");

    // The next commit writes a good live.json again.
    again.patch("c", { motd: "three" });
    again.commit("c");
    const third = Datastore.open(base, "1");
    assert.equal(third.opened.state, "ok");
    assert.deepEqual(third.liveSettings(), { motd: "three" });
  });
}

test("live.json and its last good copy both unusable (or no copy yet): empty settings at the directory's version", () => {
  const s = Datastore.open(base, "1.2.3");
  writeFileSync(join(s.dir, "live.json"), "{");
  const noCopy = Datastore.open(base, "9.9.9");
  assert.equal(noCopy.opened.state, "empty");
  assert.deepEqual(noCopy.liveSettings(), {});
  assert.equal(noCopy.version, "1.2.3");

  noCopy.patch("a", { motd: "one" });
  noCopy.commit("a");
  noCopy.patch("b", { motd: "two" });
  noCopy.commit("b");
  writeFileSync(join(s.dir, "live.json"), "");
  writeFileSync(join(s.dir, "live.json.last-good"), "[]");
  const neither = Datastore.open(base, "1.2.3");
  assert.equal(neither.opened.state, "empty");
  assert.match(neither.opened.error!, /last good copy too: .*holds no JSON object/);
  assert.deepEqual(neither.liveSettings(), {});
});

test("a store that cannot be opened at all (current is a directory, not a link) is moved aside whole; a new one opens on defaults, saying why", () => {
  const first = Datastore.open(base, "1.0.0");
  first.patch("t", { motd: "kept aside" });
  first.commit("t");
  // current -> v1.0.0_x becomes a plain directory holding a copy of the store.
  const target = join(base, readlinkSync(join(base, "current")));
  rmSync(join(base, "current"));
  cpSync(target, join(base, "current"), { recursive: true });
  const s = Datastore.open(base, "1.0.0");
  assert.equal(s.opened.state, "empty");
  assert.match(s.opened.error ?? "", /could not be opened .*moved aside whole/);
  assert.ok(s.opened.kept && existsSync(join(s.opened.kept, "current", "live.json")), "the old store is kept whole");
  assert.deepEqual(s.liveSettings(), {});
  // The new store works.
  s.patch("t", { motd: "new" });
  s.commit("t");
  assert.deepEqual(Datastore.open(base, "1.0.0").liveSettings(), { motd: "new" });
});
