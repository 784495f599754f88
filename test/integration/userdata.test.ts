// First boot with user data: applied as one transaction, read once; invalid user data is rejected
// whole, the host comes up on defaults, and the boot status and the log say why.
import { test } from "node:test";
import assert from "node:assert/strict";
import { gzipSync } from "node:zlib";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { call, startHost } from "../helpers/host.js";

const GOOD = `
[settings]
motd = "from user data"
[settings.kernel.sysctl]
"vm.max_map_count" = "262144"
[settings.container-registry]
credentials = [{ registry = "r.example", username = "u", password = "hunter2-secret" }]
[settings.updates]
seed = 100
`;

test("valid user data is applied and rendered; secrets stay out of the log", async () => {
  const h = await startHost({ userData: GOOD });
  try {
    const s = (await call(h.socket, "GET", "/settings")).json() as Record<string, Record<string, unknown>>;
    assert.equal(s.motd as unknown, "from user data");
    assert.deepEqual(s.kernel!.sysctl, { "vm.max_map_count": "262144" });
    assert.equal(s.updates!.seed, 100, "a generator never overrides user data");
    assert.equal(readFileSync(join(h.root, "etc/motd"), "utf8").trim(), "from user data");
    assert.match(readFileSync(join(h.root, "etc/sysctl.d/90-caisson.conf"), "utf8"), /vm\.max_map_count\s*=\s*262144/);
    const st = (await call(h.socket, "GET", "/boot-status")).json() as { "user-data": { state: string; sources: string[] } };
    assert.equal(st["user-data"].state, "applied");
    assert.equal(st["user-data"].sources.length, 1);
    const log = h.logs.join("\n");
    assert.ok(log.includes("r.example"), "settings are logged");
    assert.ok(!log.includes("hunter2-secret"), "but not the secret");
  } finally {
    await h.stop();
  }
});

test("gzipped user data is accepted", async () => {
  const h = await startHost({ userData: gzipSync(Buffer.from(GOOD)) });
  try {
    const s = (await call(h.socket, "GET", "/settings?keys=settings.motd")).json();
    assert.deepEqual(s, { motd: "from user data" });
  } finally {
    await h.stop();
  }
});

const invalid: [string, string, RegExp, { line?: number; key?: string }][] = [
  ["malformed TOML", `[settings]\nmotd = "ok"\nthis is not toml\n`, /line 3, column/, { line: 3 }],
  ["an unknown key", `[settings]\nmotd = "ok"\n[settings.kernel]\nlockdwn = "none"\n`, /settings\.kernel\.lockdwn/, { key: "settings.kernel.lockdwn" }],
  ["a wrong type", `[settings]\nmotd = "ok"\n[settings.updates]\nseed = "high"\n`, /settings\.updates\.seed.*integer/, { key: "settings.updates.seed" }],
  ["no [settings] table", `motd = "ok"\n`, /only \[settings\]|no \[settings\]/, {}],
];
for (const [what, text, re, where] of invalid) {
  test(`user data with ${what}: nothing applied, host up on defaults, status says why`, async () => {
    const h = await startHost({ userData: text });
    try {
      const s = (await call(h.socket, "GET", "/settings?keys=settings.motd")).json();
      assert.deepEqual(s, { motd: "Welcome to Caisson!" }, "the valid part (motd) was not applied either");
      const st = (await call(h.socket, "GET", "/boot-status")).json() as {
        "user-data": { state: string; error: { message: string; line?: number; key?: string } };
        "settings-applied": boolean;
      };
      assert.equal(st["user-data"].state, "rejected");
      assert.match(st["user-data"].error.message, re);
      if (where.line) assert.equal(st["user-data"].error.line, where.line);
      if (where.key) assert.equal(st["user-data"].error.key, where.key);
      assert.equal(st["settings-applied"], true);
      assert.ok(h.logs.some((l) => /user data rejected/.test(l) && re.test(l)), "the log says why");
    } finally {
      await h.stop();
    }
  });
}

test("restart: settings, generated seed and changes persist; user data is not read again", async () => {
  const h1 = await startHost({ userData: `[settings]\nmotd = "first"\n` });
  const root = h1.root;
  await call(h1.socket, "PATCH", "/settings?tx=x", { motd: "changed by API" });
  await call(h1.socket, "POST", "/tx/commit_and_apply?tx=x");
  const seed1 = ((await call(h1.socket, "GET", "/settings?prefix=updates")).json() as { updates: { seed: number } }).updates.seed;
  assert.ok(Number.isInteger(seed1) && seed1 >= 0 && seed1 < 2048);
  await call(h1.socket, "PATCH", "/settings?tx=left-pending", { motd: "never committed" });
  await h1.stop();

  const h2 = await startHost({ root, userData: `[settings]\nmotd = "second user data is ignored"\n` });
  try {
    const s = (await call(h2.socket, "GET", "/settings")).json() as { motd: string; updates: { seed: number } };
    assert.equal(s.motd, "changed by API");
    assert.equal(s.updates.seed, seed1);
    assert.deepEqual((await call(h2.socket, "GET", "/tx/list")).json(), [], "pending transactions do not outlive a restart");
    assert.equal(readFileSync(join(root, "etc/motd"), "utf8").trim(), "changed by API");
    const st = (await call(h2.socket, "GET", "/boot-status")).json() as { "user-data": { state: string } };
    assert.equal(st["user-data"].state, "applied", "reports the first boot's user data");
  } finally {
    await h2.stop();
  }
});

test("k8s variant has kubernetes settings with defaults; lockdown default differs by variant", async () => {
  const h = await startHost({ variant: "k8s", userData: `[settings.kubernetes]\ncluster-name = "c1"\n[settings.kubernetes.node-labels]\n"example.com/role" = "worker"\n` });
  try {
    const s = (await call(h.socket, "GET", "/settings?prefix=kubernetes")).json() as { kubernetes: Record<string, unknown> };
    assert.equal(s.kubernetes["cluster-name"], "c1");
    assert.equal(s.kubernetes["cluster-domain"], "cluster.local");
    assert.deepEqual(s.kubernetes["node-labels"], { "example.com/role": "worker" });
    const k = (await call(h.socket, "GET", '/settings?keys=settings.kernel.lockdown,settings.kubernetes.node-labels."example.com/role"')).json();
    assert.deepEqual(k, { kernel: { lockdown: "integrity" }, kubernetes: { "node-labels": { "example.com/role": "worker" } } });
  } finally {
    await h.stop();
  }
});

// Issue 8: user data had no size cap (a gzip bomb took the daemon to 2.1 GiB RSS; a 100 MiB motd was
// accepted, rendered and logged). Each limit is refused at first boot with the limit named.
const oversized: [string, () => Buffer, RegExp][] = [
  ["a gzip bomb (64 MiB of zeros)", () => gzipSync(Buffer.concat([Buffer.from('[settings]\nmotd = "'), Buffer.alloc(64 * 1024 * 1024)])), /decompresses to more than the limit of 1 MiB \(decompressed\)/],
  ["a 100 KiB gzip holding a 100 MiB motd", () => gzipSync(`[settings]\nmotd = "${"x".repeat(100 * 1024 * 1024)}"\n`), /decompresses to more than the limit of 1 MiB/],
  ["a 100 KiB motd", () => Buffer.from(`[settings]\nmotd = "${"x".repeat(100 * 1024)}"\n`), /'settings\.motd' is 102400 bytes, over the limit of 64 KiB for one value/],
  ["over 1 MiB raw", () => Buffer.from(`[settings]\nmotd = "ok"\n${"#".repeat(1024 * 1024)}\n`), /over the limit of 1 MiB \(raw/],
  ["200000 levels of dotted keys", () => Buffer.from(`[settings]\nmotd = "ok"\n${"a.".repeat(200_000)}b = 1\n`), /nested deeper than the limit of 32/],
];
for (const [what, bytes, re] of oversized) {
  test(`user data with ${what}: refused with the limit named, nothing applied, host up on defaults`, async () => {
    const h = await startHost({ userData: bytes() });
    try {
      assert.deepEqual((await call(h.socket, "GET", "/settings?keys=settings.motd")).json(), { motd: "Welcome to Caisson!" });
      assert.equal(readFileSync(join(h.root, "etc/motd"), "utf8").trim(), "Welcome to Caisson!");
      const st = (await call(h.socket, "GET", "/boot-status")).json() as { "user-data": { state: string; error: { message: string } } };
      assert.equal(st["user-data"].state, "rejected");
      assert.match(st["user-data"].error.message, re);
      assert.ok(h.logs.some((l) => /user data rejected/.test(l) && re.test(l)), "the log says which limit");
      assert.ok(h.logs.every((l) => l.length < 64 * 1024), "no huge log line");
    } finally {
      await h.stop();
    }
  });
}
