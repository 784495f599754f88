import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  KeyError,
  MAX_KEY_LENGTH,
  changedKeys,
  deepEqual,
  deepMerge,
  formatKey,
  getPath,
  parseKey,
  parseSettingsKey,
  pathsOverlap,
  setPath,
  type JsonObject,
} from "../../src/settings/keys.js";

test("parseKey and formatKey round-trip bare and quoted segments", () => {
  const cases: [string, string[]][] = [
    ["motd", ["motd"]],
    ["settings.motd", ["settings", "motd"]],
    ['settings.kernel.sysctl."vm.max_map_count"', ["settings", "kernel", "sysctl", "vm.max_map_count"]],
    ['kubernetes.node-labels."example.com/role"', ["kubernetes", "node-labels", "example.com/role"]],
    ["settings.host-containers.admin.user-data", ["settings", "host-containers", "admin", "user-data"]],
    ['a."b c".d', ["a", "b c", "d"]],
    ['"x.y"', ["x.y"]],
    ["a/b.c_d", ["a/b", "c_d"]],
    ['oci-defaults."caf\u00e9"', ["oci-defaults", "caf\u00e9"]],
  ];
  for (const [key, segs] of cases) {
    assert.deepEqual(parseKey(key), segs, key);
    assert.equal(formatKey(segs), key, key);
  }
  // Quoting a segment that needs none is accepted; formatting drops the quotes.
  assert.deepEqual(parseKey('settings."motd"'), ["settings", "motd"]);
  assert.equal(formatKey(parseKey('settings."motd"')), "settings.motd");
  assert.deepEqual(parseKey("x".repeat(MAX_KEY_LENGTH)), ["x".repeat(MAX_KEY_LENGTH)]);
});

test("parseSettingsKey strips an optional settings. prefix", () => {
  assert.deepEqual(parseSettingsKey("settings.motd"), ["motd"]);
  assert.deepEqual(parseSettingsKey("motd"), ["motd"]);
  assert.deepEqual(parseSettingsKey('kernel.sysctl."vm.swappiness"'), ["kernel", "sysctl", "vm.swappiness"]);
  assert.deepEqual(parseSettingsKey("settings"), []);
});

test("parseKey rejects malformed keys with a KeyError naming the problem", () => {
  const bad: [string, RegExp][] = [
    ["", /empty key/],
    ['settings."vm.max', /unterminated quote/],
    ['"', /unterminated quote/],
    ["a..b", /empty segment/],
    [".a", /empty segment/],
    ['a.""', /empty quoted segment/],
    ["a.", /ends with '\.'/],
    ['"a".', /ends with '\.'/],
    ['"a"b', /expected '\.' after segment/],
    ["kernel.sysctl.vm max", /invalid segment 'vm max'.*quote segments/],
    ["a.b:c", /invalid segment 'b:c'/],
    ["caf\u00e9", /invalid segment/],
    ["x".repeat(MAX_KEY_LENGTH + 1), /longer than 255/],
  ];
  for (const [key, re] of bad) {
    assert.throws(
      () => parseKey(key),
      (e: unknown) => e instanceof KeyError && re.test(e.message) && e.key === key,
      `${JSON.stringify(key.slice(0, 30))} should fail with ${re}`,
    );
  }
});

test("property: formatKey then parseKey gives the segments back (any segments without a quote)", () => {
  const unit = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom("a", "Z", "0", "-", "_", "/", ".", " ", ":", "=", "*", "\\", "'", "\u00e9", "\u{1F600}") },
    { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }) },
  );
  const segment = fc.string({ unit, minLength: 1, maxLength: 12 }).filter((s) => !s.includes('"'));
  fc.assert(
    fc.property(fc.array(segment, { minLength: 1, maxLength: 8 }), (segs) => {
      const key = formatKey(segs);
      fc.pre(key.length <= MAX_KEY_LENGTH);
      assert.deepEqual(parseKey(key), segs);
      assert.equal(formatKey(parseKey(key)), key);
    }),
    { numRuns: 500 },
  );
});

test("deepMerge merges tables key by key; anything else replaces; inputs are not mutated", () => {
  const base: JsonObject = { motd: "a", kernel: { sysctl: { "vm.a": "1", "vm.b": "2" }, lockdown: "none" }, ntp: { "time-servers": ["x", "y"] }, n: null };
  const patch: JsonObject = { kernel: { sysctl: { "vm.b": "3", "vm.c": "4" } }, ntp: { "time-servers": ["z"] }, n: { now: "table" }, motd: "b" };
  const before = structuredClone(base);
  const patchBefore = structuredClone(patch);
  assert.deepEqual(deepMerge(base, patch), {
    motd: "b",
    kernel: { sysctl: { "vm.a": "1", "vm.b": "3", "vm.c": "4" }, lockdown: "none" },
    ntp: { "time-servers": ["z"] }, // lists replace, never concatenate
    n: { now: "table" },
  });
  assert.deepEqual(base, before);
  assert.deepEqual(patch, patchBefore);
  assert.deepEqual(deepMerge({ a: { b: 1 } }, { a: "scalar" }), { a: "scalar" });
  assert.deepEqual(deepMerge({ a: "scalar" }, { a: { b: 1 } }), { a: { b: 1 } });
  assert.deepEqual(deepMerge({ a: 1 }, { a: null }), { a: null });
  assert.deepEqual(deepMerge({ a: 1 }, {}), { a: 1 });
});

test("getPath, setPath and deepEqual", () => {
  const t: JsonObject = { a: { b: { c: 1 } }, l: [1, 2] };
  assert.equal(getPath(t, ["a", "b", "c"]), 1);
  assert.equal(getPath(t, ["a", "x"]), undefined);
  assert.equal(getPath(t, ["l", "0"]), undefined, "lists are leaves");
  assert.equal(getPath(t, ["a", "toString"]), undefined, "inherited properties are not keys");
  const u = setPath(t, ["a", "b", "d"], 2);
  assert.deepEqual(u, { a: { b: { c: 1, d: 2 } }, l: [1, 2] });
  assert.deepEqual(t, { a: { b: { c: 1 } }, l: [1, 2] });
  assert.deepEqual(setPath({}, ["x", "y"], "z"), { x: { y: "z" } });
  assert.ok(deepEqual({ a: [1, { b: null }] }, { a: [1, { b: null }] }));
  assert.ok(!deepEqual({ a: 1 }, { a: 1, b: undefined as never }));
  assert.ok(!deepEqual([1, 2], [2, 1]));
  assert.ok(!deepEqual({ a: 1 }, { b: 1 }));
  assert.ok(!deepEqual("1", 1));
});

test("changedKeys lists the formatted leaf keys whose values differ", () => {
  const before: JsonObject = { motd: "a", kernel: { sysctl: { "vm.a": "1", "vm.b": "2" } }, ntp: { "time-servers": ["x"] } };
  const after: JsonObject = { motd: "a", kernel: { sysctl: { "vm.a": "1", "vm.b": "3" }, lockdown: "none" }, ntp: { "time-servers": ["x", "y"] } };
  assert.deepEqual(changedKeys(before, after), ["settings.kernel.lockdown", 'settings.kernel.sysctl."vm.b"', "settings.ntp.time-servers"]);
  assert.deepEqual(changedKeys(after, before), ["settings.kernel.lockdown", 'settings.kernel.sysctl."vm.b"', "settings.ntp.time-servers"], "removed keys count too");
  assert.deepEqual(changedKeys(before, structuredClone(before)), []);
  assert.deepEqual(changedKeys({}, { "node-labels": { "example.com/role": "w" } }), ['settings.node-labels."example.com/role"']);
  assert.deepEqual(changedKeys({ a: 1 }, { a: "1" }), ["settings.a"], "type changes count");
});

test("pathsOverlap is true when one path is a prefix of the other", () => {
  assert.ok(pathsOverlap(["kernel", "sysctl"], ["kernel", "sysctl", "vm.a"]));
  assert.ok(pathsOverlap(["kernel", "sysctl", "vm.a"], ["kernel"]));
  assert.ok(pathsOverlap(["motd"], ["motd"]));
  assert.ok(pathsOverlap([], ["anything"]));
  assert.ok(!pathsOverlap(["kernel", "sysctl"], ["kernel", "lockdown"]));
  assert.ok(!pathsOverlap(["network", "host"], ["network", "hostname"]), "segments compare whole, not as string prefixes");
  assert.ok(!pathsOverlap(["a"], ["b", "a"]));
});
