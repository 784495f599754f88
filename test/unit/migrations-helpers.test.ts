// The helper library migration modules receive (src/migrations/helpers.ts); split from the former
// test/unit/migrations-find.test.ts when findMigrations moved to src/update/manifest.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { addSettings, addValue, chain, get, remove, rename, renameSetting, replaceList, replaceString, set } from "../../src/migrations/helpers.js";
import type { JsonObject } from "../../src/settings/keys.js";

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
