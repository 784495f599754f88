// The bounds of src/settings/limits.ts and their use by user data parsing: sizes raw and
// decompressed, one value, a whole tree, nesting depth — each refused with the limit named.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  LimitError,
  MAX_DEPTH,
  MAX_SETTINGS_BYTES,
  MAX_USER_DATA_BYTES,
  MAX_VALUE_BYTES,
  checkDepth,
  checkJsonTextDepth,
  checkSettingsSize,
} from "../../src/settings/limits.js";
import { parseUserData, readBounded, UserDataError } from "../../src/userdata/userdata.js";
import { changedKeys, deepEqual, leafPaths } from "../../src/settings/keys.js";

const nested = (depth: number, leaf: unknown = 1): unknown => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
};

test("checkSettingsSize: within limits passes; one value over 64 KiB is a 413 naming the key and the limit", () => {
  checkSettingsSize({ motd: "x".repeat(MAX_VALUE_BYTES), kernel: { sysctl: { "a.b": "1" } } }, "t");
  assert.throws(
    () => checkSettingsSize({ kernel: { sysctl: { "a.b": "é".repeat(MAX_VALUE_BYTES / 2 + 1) } } }, "the settings to set"),
    (e: unknown) =>
      e instanceof LimitError && e.status === 413 && e.limit === "value-bytes" && e.key === 'settings.kernel.sysctl."a.b"' && /64 KiB for one value/.test(e.message) && !e.message.includes("éé"),
  );
  assert.throws(() => checkSettingsSize({ dns: { "name-servers": ["1", "y".repeat(MAX_VALUE_BYTES + 1)] } }, "t"), /'settings\.dns\.name-servers' is 65537 bytes/);
  assert.throws(() => checkSettingsSize({ kernel: { sysctl: { ["k".repeat(MAX_VALUE_BYTES + 1)]: "1" } } }, "t"), /a name at 'settings\.kernel\.sysctl'/);
});

test("checkSettingsSize: a tree over 1 MiB as JSON is a 413 naming the limit", () => {
  const wide: Record<string, string> = {};
  for (let i = 0; i < 20; i++) wide[`k${i}`] = "x".repeat(60 * 1024);
  assert.throws(
    () => checkSettingsSize({ kernel: { sysctl: wide } }, "transaction 'x' with these settings"),
    (e: unknown) => e instanceof LimitError && e.status === 413 && e.limit === "settings-bytes" && /^transaction 'x' with these settings is \d+ bytes as JSON, over the limit of 1 MiB/.test(e.message),
  );
  assert.equal(MAX_SETTINGS_BYTES, 1024 * 1024);
});

test("depth: MAX_DEPTH levels pass, one more is a 400; 100000 levels are checked without overflowing the stack", () => {
  checkDepth(nested(MAX_DEPTH), "t");
  checkSettingsSize(nested(MAX_DEPTH), "t");
  assert.throws(() => checkDepth(nested(MAX_DEPTH + 1), "the body"), (e: unknown) => e instanceof LimitError && e.status === 400 && e.limit === "depth" && /limit of 32 levels/.test(e.message));
  assert.throws(() => checkSettingsSize(nested(100_000), "t"), /nested deeper than the limit/);
  const text = (d: number) => "[".repeat(d) + "]".repeat(d);
  checkJsonTextDepth(text(MAX_DEPTH), "t");
  checkJsonTextDepth(`{"a":"${"[".repeat(1000)}"}`, "t"); // brackets inside strings do not count
  checkJsonTextDepth(`{"a":"\\"${"{".repeat(1000)}"}`, "t");
  assert.throws(() => checkJsonTextDepth(text(MAX_DEPTH + 1), "the body"), /nested deeper than the limit of 32/);
  assert.throws(() => checkJsonTextDepth(text(1_000_000), "the body"), LimitError);
});

test("keys.ts walks deep trees without overflowing the stack (leafPaths, deepEqual, changedKeys)", () => {
  const deepObj = (d: number) => {
    const root: Record<string, unknown> = {};
    let cur = root;
    for (let i = 0; i < d; i++) cur = cur.a = {} as Record<string, unknown>;
    cur.leaf = 1;
    return root as never;
  };
  const deepArr = (d: number) => {
    let v: unknown = 1;
    for (let i = 0; i < d; i++) v = [v];
    return v as never;
  };
  assert.equal(leafPaths(deepObj(100_000)).length, 1);
  assert.equal(deepEqual(deepArr(100_000), deepArr(100_000)), true);
  assert.equal(deepEqual(deepArr(100_000), deepArr(99_999)), false);
  assert.equal(changedKeys(deepObj(50_000), deepObj(50_000)).length, 0);
  assert.deepEqual(leafPaths({ a: { b: 1, c: {} }, d: [1] } as never), [["a", "b"], ["a", "c"], ["d"]]);
});

// ---- user data ----

const refuses = (bytes: Buffer | string, re: RegExp) =>
  assert.throws(() => parseUserData(Buffer.from(bytes), "test"), (e: unknown) => e instanceof UserDataError && re.test(e.message), `expected ${re}`);

test("user data: a gzip bomb (64 KiB of gzip, 64 MiB of zeros) is refused with the decompressed limit named, without RSS blowing up", () => {
  const bomb = gzipSync(Buffer.concat([Buffer.from('[settings]\nmotd = "'), Buffer.alloc(64 * 1024 * 1024)]), { level: 9 });
  const before = process.memoryUsage().rss;
  refuses(bomb, /decompresses to more than the limit of 1 MiB \(decompressed\)/);
  const grew = process.memoryUsage().rss - before;
  assert.ok(grew < 32 * 1024 * 1024, `RSS grew by ${grew} bytes`);
});

test("user data: over 1 MiB raw is refused with the raw limit named", () => {
  refuses(Buffer.alloc(MAX_USER_DATA_BYTES + 1, 0x20), /over the limit of 1 MiB \(raw/);
});

test("user data: a 100 KiB motd is refused with the value limit named, and so is a tree over 1 MiB", () => {
  refuses(`[settings]\nmotd = "${"x".repeat(100 * 1024)}"\n`, /'settings\.motd' is 102400 bytes, over the limit of 64 KiB/);
  const gz = gzipSync(`[settings]\nmotd = "${"x".repeat(100 * 1024 * 1024)}"\n`);
  assert.ok(gz.length < 200 * 1024);
  refuses(gz, /decompresses to more than the limit/);
  // Under 1 MiB of TOML, over 1 MiB as JSON (a literal string's " is \" in JSON).
  let many = "[settings.kernel.sysctl]\n";
  for (let i = 0; i < 16; i++) many += `"k.${i}" = '${'"'.repeat(60 * 1024)}'\n`;
  assert.ok(many.length < MAX_USER_DATA_BYTES);
  refuses(many, /over the limit of 1 MiB for a settings tree/);
});

test("user data: deep nesting is refused (inline lists, dotted keys, table headers) without a stack overflow", () => {
  refuses(`[settings]\nmotd = ${"[".repeat(5000)}${"]".repeat(5000)}\n`, /excessively nested|nested deeper/);
  refuses(`[settings]\nmotd = ${"[".repeat(40)}${"]".repeat(40)}\n`, /excessively nested|nested deeper/);
  refuses(`[settings]\n${"a.".repeat(200_000)}b = 1\n`, /nested deeper than the limit of 32/);
  refuses(`[settings.${"a.".repeat(200_000)}b]\nc = 1\n`, /nested deeper than the limit of 32/);
});

test("user data: bytes that are not UTF-8 are refused, not replaced", () => {
  refuses(Buffer.concat([Buffer.from('[settings]\nmotd = "'), Buffer.from([0xff, 0xfe]), Buffer.from('"\n')]), /not valid UTF-8/);
});

test("readBounded reads at most max + 1 bytes and refuses what is not a regular file", () => {
  const dir = mkdtempSync(join(tmpdir(), "caisson-limits-"));
  const f = join(dir, "ud");
  writeFileSync(f, Buffer.alloc(5000, 0x61));
  assert.equal(readBounded(f, 100).length, 101);
  assert.equal(readBounded(f, 10_000).length, 5000);
  assert.throws(() => readBounded(dir, 100), /not a regular file/);
});
