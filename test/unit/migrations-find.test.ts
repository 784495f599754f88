// find_migrations over manifest hops (reference §5.6) and the helper library
// migration modules receive.
import { test } from "node:test";
import assert from "node:assert/strict";
import { findMigrations, MissingMigrationError } from "../../src/migrations/find.js";
import { addSettings, addValue, chain, get, remove, rename, renameSetting, replaceList, replaceString, set } from "../../src/migrations/helpers.js";
import type { JsonObject } from "../../src/settings/keys.js";

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

const tree = (): JsonObject => ({ motd: "hi", kernel: { sysctl: { "vm.max_map_count": "262144" } } });

test("helpers are pure and do not assume keys exist", () => {
  const t = tree();
  const frozen = JSON.stringify(t);
  assert.deepEqual(set(t, 'settings.kernel.sysctl."net.core.somaxconn"', "1024"), { motd: "hi", kernel: { sysctl: { "vm.max_map_count": "262144", "net.core.somaxconn": "1024" } } });
  assert.deepEqual(set({}, "network.hostname", "h"), { network: { hostname: "h" } });
  assert.deepEqual(remove(t, 'kernel.sysctl."vm.max_map_count"'), { motd: "hi" }, "emptied tables go too");
  assert.equal(remove(t, "network.hostname"), t, "absent key: same tree");
  assert.deepEqual(rename(t, "motd", "network.hostname"), { kernel: t.kernel, network: { hostname: "hi" } });
  assert.deepEqual(rename({}, "motd", "network.hostname"), {});
  assert.equal(get(t, "settings.motd"), "hi");
  assert.equal(JSON.stringify(t), frozen, "input mutated");
});

test("Bottlerocket-style migrations round-trip", () => {
  const t = tree();
  const key = 'kernel.sysctl."net.ipv4.tcp_keepalive_time"';
  const add = addValue(key, "600");
  assert.equal(get(add.forward(t), key), "600");
  assert.deepEqual(add.backward(add.forward(t)), t);
  assert.deepEqual(add.backward(set(t, key, "30")), set(t, key, "30"), "a user's own value survives a downgrade");
  assert.equal(get(add.forward(set(t, key, "30")), key), "30", "a user's own value is not overwritten");

  const added = addSettings(["network.https-proxy"]);
  assert.equal(added.forward(t), t);
  assert.deepEqual(added.backward(set(t, "network.https-proxy", "http://p:3128")), t);

  const rs = replaceString("motd", "hi", "hello");
  assert.equal(rs.forward(t).motd, "hello");
  assert.deepEqual(rs.backward(rs.forward(t)), t);
  assert.equal(rs.forward(set(t, "motd", "mine")).motd, "mine");

  const rl = replaceList("ntp.options", ["iburst"], ["iburst", "minpoll 4"]);
  assert.deepEqual(get(rl.forward({ ntp: { options: ["iburst"] } }), "ntp.options"), ["iburst", "minpoll 4"]);
  assert.deepEqual(rl.forward({ ntp: { options: ["x"] } }), { ntp: { options: ["x"] } });

  const both = chain(renameSetting("motd", "network.hostname"), rs);
  assert.deepEqual(both.backward(both.forward(t)), t);
});
