// The API in workstation mode: Bottlerocket's paths and semantics, JSON errors, nothing changed by
// bad input. Runs the production Host and API server on a real Unix socket.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, statSync, existsSync, writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { call, startHost, type TestHost } from "../helpers/host.js";

let h: TestHost;
const api = (method: string, path: string, body?: string | object) => call(h.socket, method, path, body);
const liveSettings = async () => (await api("GET", "/settings")).json() as Record<string, unknown>;

before(async () => {
  h = await startHost();
});
after(async () => {
  await h.stop();
});

test("socket is mode 0660", () => {
  assert.equal(statSync(h.socket).mode & 0o777, 0o660);
});

test("GET / returns the whole model; prefix filters it", async () => {
  const all = (await api("GET", "/")).json() as Record<string, Record<string, unknown>>;
  assert.deepEqual(Object.keys(all).sort(), ["configuration-files", "os", "services", "settings"]);
  assert.equal(all.settings!.motd, "Welcome to Caisson!");
  assert.equal(all.os!.variant_id, "dev");
  const motd = (await api("GET", "/?prefix=settings.motd")).json();
  assert.deepEqual(motd, { settings: { motd: "Welcome to Caisson!" } });
  const os = (await api("GET", "/?prefix=os")).json() as Record<string, unknown>;
  assert.deepEqual(Object.keys(os), ["os"]);
  assert.equal((await api("GET", "/?prefix=")).status, 400);
});

test("GET /settings with keys= and prefix=", async () => {
  const keys = (await api("GET", "/settings?keys=settings.motd,settings.updates.version-lock")).json();
  assert.deepEqual(keys, { motd: "Welcome to Caisson!", updates: { "version-lock": "latest" } });
  const pre = (await api("GET", "/settings?prefix=ntp")).json();
  assert.deepEqual(pre, { ntp: { "time-servers": ["pool.ntp.org"], options: ["iburst"] } });
  assert.deepEqual((await api("GET", "/settings?prefix=nosuch")).json(), {});
});

test("PATCH → pending; commit makes it live and returns the changed keys", async () => {
  const r = await api("PATCH", "/settings?tx=t1", { motd: "one", kernel: { sysctl: { "vm.max_map_count": "262144" } } });
  assert.equal(r.status, 204);
  assert.deepEqual((await api("GET", "/tx/list")).json(), ["t1"]);
  assert.deepEqual((await api("GET", "/tx?tx=t1")).json(), { motd: "one", kernel: { sysctl: { "vm.max_map_count": "262144" } } });
  assert.equal((await liveSettings()).motd, "Welcome to Caisson!", "pending is not live");
  const c = await api("POST", "/tx/commit?tx=t1");
  assert.equal(c.status, 200);
  assert.deepEqual(c.json(), ["settings.kernel.sysctl.\"vm.max_map_count\"", "settings.motd"]);
  assert.equal((await liveSettings()).motd, "one");
  assert.deepEqual((await api("GET", "/tx/list")).json(), []);
});

test("commit with nothing pending is 422 with a JSON message", async () => {
  const r = await api("POST", "/tx/commit?tx=empty");
  assert.equal(r.status, 422);
  assert.match((r.json() as { message: string }).message, /no pending settings/);
  assert.equal((await api("POST", "/tx/commit_and_apply?tx=empty")).status, 422);
});

test("PATCH /settings/keypair types values by schema and takes quoted keys", async () => {
  const r = await api("PATCH", "/settings/keypair?tx=kp", {
    request_payload: ["motd=42", 'settings.kernel.sysctl."net.ipv4.ip_forward"=1', "updates.seed=7", "updates.ignore-waves=true", 'dns.name-servers=["1.1.1.1"]'],
  });
  assert.equal(r.status, 204, r.text);
  assert.deepEqual((await api("GET", "/tx?tx=kp")).json(), {
    motd: "42",
    kernel: { sysctl: { "net.ipv4.ip_forward": "1" } },
    updates: { seed: 7, "ignore-waves": true },
    dns: { "name-servers": ["1.1.1.1"] },
  });
  const del = await api("DELETE", "/tx?tx=kp");
  assert.equal(del.status, 200);
  assert.equal((del.json() as string[]).length, 5);
  assert.deepEqual((await api("GET", "/tx/list")).json(), []);
});

test("bad input: clear 4xx JSON errors, nothing pending, nothing live changed", async () => {
  const before = await liveSettings();
  const cases: [string, string, string | object, number, RegExp][] = [
    ["PATCH", "/settings?tx=bad", "{not json", 400, /malformed JSON/],
    ["PATCH", "/settings?tx=bad", { motdd: "x" }, 400, /unknown setting 'settings\.motdd'/],
    ["PATCH", "/settings?tx=bad", { kernel: { lockdown: "sometimes" } }, 400, /settings\.kernel\.lockdown.*expected "none" or "integrity" or "confidentiality"/],
    ["PATCH", "/settings?tx=bad", { updates: { seed: 4096 } }, 400, /settings\.updates\.seed.*integer in \[0, 2047\]/],
    ["PATCH", "/settings?tx=bad", { motd: "ok", network: { hostname: "bad host!" } }, 400, /settings\.network\.hostname/],
    ["PATCH", "/settings?tx=bad", { kubernetes: { "cluster-name": "x" } }, 400, /unknown setting 'settings\.kubernetes'/],
    ["PATCH", "/settings?tx=bad", [1, 2], 400, /JSON object/],
    ["PATCH", "/settings?tx=bad", {}, 400, /empty/],
    ["PATCH", "/settings/keypair?tx=bad", { request_payload: ["nokey"] }, 400, /key=value/],
    ["PATCH", "/settings/keypair?tx=bad", { request_payload: ["updates.seed=abc"] }, 400, /settings\.updates\.seed/],
    ["PATCH", "/settings/keypair?tx=bad", { request_payload: ['kernel.sysctl."unterminated=1'] }, 400, /quote/],
    ["GET", "/nope", "", 404, /no such path/],
    ["DELETE", "/settings", "", 405, /not allowed/],
    ["GET", "/metadata/affected-services", "", 400, /keys/],
  ];
  for (const [m, p, b, status, re] of cases) {
    const r = await api(m, p, b === "" ? undefined : b);
    assert.equal(r.status, status, `${m} ${p} ${JSON.stringify(b)} → ${r.status} ${r.text}`);
    assert.equal(r.text.length > 0, true);
    assert.match((r.json() as { message: string }).message, re);
  }
  assert.deepEqual((await api("GET", "/tx/list")).json(), []);
  assert.deepEqual(await liveSettings(), before);
});

test("bad value names the key and what was expected in the JSON body", async () => {
  const r = await api("PATCH", "/settings", { ntp: { "time-servers": "pool.ntp.org" } });
  assert.equal(r.status, 400);
  const b = r.json() as { key: string; expected: string };
  assert.equal(b.key, "settings.ntp.time-servers");
  assert.match(b.expected, /list of string/);
});

test("body too large is 413 and changes nothing", async () => {
  const r = await api("PATCH", "/settings?tx=big", { motd: "x".repeat(2 * 1024 * 1024) });
  assert.equal(r.status, 413);
  assert.deepEqual((await api("GET", "/tx/list")).json(), []);
});

test("commit_and_apply rewrites only the affected file and restarts only its services", async () => {
  const motdPath = join(h.root, "etc/motd");
  const chrony = join(h.root, "etc/chrony/chrony.conf");
  const chronyBefore = statSync(chrony).mtimeMs;
  h.restarts.restarted.length = 0;
  await api("PATCH", "/settings?tx=ca", { motd: "applied" });
  const r = await api("POST", "/tx/commit_and_apply?tx=ca");
  assert.equal(r.status, 200);
  assert.deepEqual(r.json(), ["settings.motd"]);
  assert.equal(readFileSync(motdPath, "utf8").trim(), "applied");
  assert.equal(statSync(chrony).mtimeMs, chronyBefore, "unrelated file untouched");
  assert.deepEqual(h.restarts.restarted, [], "motd has no service to restart");

  await api("PATCH", "/settings?tx=ca", { ntp: { "time-servers": ["time.example.com"] } });
  await api("POST", "/tx/commit_and_apply?tx=ca");
  assert.match(readFileSync(chrony, "utf8"), /time\.example\.com/);
  assert.deepEqual(h.restarts.restarted, [["chrony.service"]]);
});

test("dry run shows the diff and restarts, and changes nothing", async () => {
  const motdPath = join(h.root, "etc/motd");
  const before = readFileSync(motdPath, "utf8");
  await api("PATCH", "/settings?tx=dry", { motd: "would be" });
  const r = await api("POST", "/tx/commit_and_apply?tx=dry&dry-run=true");
  assert.equal(r.status, 200, r.text);
  const plan = r.json() as { "changed-keys": string[]; files: { path: string; diff: string }[]; "restart-units": string[] };
  assert.deepEqual(plan["changed-keys"], ["settings.motd"]);
  assert.equal(plan.files[0]!.path, "/etc/motd");
  assert.match(plan.files[0]!.diff, /^\+would be$/m);
  assert.equal(readFileSync(motdPath, "utf8"), before);
  assert.deepEqual((await api("GET", "/tx/list")).json(), ["dry"], "still pending, for the caller to drop or commit");
  await api("DELETE", "/tx?tx=dry");
});

test("POST /tx/apply re-renders files", async () => {
  type Applied = { keys: string[] | "all"; files: string[]; "restart-units": string[] };
  const lastApply = async () => ((await api("GET", "/applier/history")).json() as Applied[])[0];
  const motdPath = join(h.root, "etc/motd");
  const chrony = join(h.root, "etc/chrony/chrony.conf");
  // Bring every file in line with the live settings (earlier tests commit without applying).
  assert.equal((await api("POST", "/tx/apply")).status, 204);
  const motd = readFileSync(motdPath, "utf8");
  const chronyConf = readFileSync(chrony, "utf8");
  assert.match(motd, /\S/, "motd rendered at start");
  writeFileSync(motdPath, "tampered\n");
  rmSync(chrony);
  h.restarts.restarted.length = 0;

  // keys=: only the files of those keys are rendered again.
  const one = await api("POST", "/tx/apply?keys=settings.motd");
  assert.equal(one.status, 204, one.text);
  assert.equal(readFileSync(motdPath, "utf8"), motd, "motd rendered again from the live settings");
  assert.equal(existsSync(chrony), false, "a file of another key is left alone");
  const first = (await lastApply())!;
  assert.deepEqual([first.keys, first.files, first["restart-units"]], [["settings.motd"], ["/etc/motd"], []], "the applier history lists the file");

  // All: whatever differs from its rendering is rewritten, and only its services restarted.
  const all = await api("POST", "/tx/apply");
  assert.equal(all.status, 204, all.text);
  assert.equal(readFileSync(chrony, "utf8"), chronyConf, "chrony.conf rendered again");
  assert.equal(readFileSync(motdPath, "utf8"), motd);
  const last = (await lastApply())!;
  assert.equal(last.keys, "all");
  assert.deepEqual(last.files, ["/etc/chrony/chrony.conf"], "only the file that differed is rewritten");
  assert.deepEqual(h.restarts.restarted, [["chrony.service"]]);

  // Nothing differs: nothing written, nothing restarted.
  assert.equal((await api("POST", "/tx/apply")).status, 204);
  assert.deepEqual((await lastApply())!.files, []);
  assert.deepEqual(h.restarts.restarted, [["chrony.service"]]);
});

test("metadata: affected services, generators, templates; services and configuration files", async () => {
  const aff = (await api("GET", "/metadata/affected-services?keys=settings.motd,settings.ntp.time-servers")).json() as Record<string, string[]>;
  assert.deepEqual(aff["settings.motd"], ["motd"]);
  assert.ok(aff["settings.ntp.time-servers"]!.length >= 1);
  const gens = (await api("GET", "/metadata/setting-generators")).json() as Record<string, string>;
  assert.equal(gens["settings.updates.seed"], "seed");
  assert.equal(gens["settings.network.hostname"], "hostname");
  const tpl = (await api("GET", "/metadata/templates?keys=settings.motd")).json() as Record<string, string[]>;
  assert.ok(tpl["settings.motd"]!.length === 1);
  const svcs = (await api("GET", "/services?names=motd")).json() as Record<string, unknown>;
  assert.deepEqual(Object.keys(svcs), ["motd"]);
  const files = (await api("GET", "/configuration-files")).json() as Record<string, { path: string }>;
  assert.ok(Object.values(files).some((f) => f.path === "/etc/motd"));
  const os = (await api("GET", "/os")).json() as Record<string, string>;
  assert.deepEqual(Object.keys(os).sort(), ["arch", "build_id", "pretty_name", "variant_id", "version_id"]);
});

test("boot status says user data was absent and settings applied", async () => {
  const s = (await api("GET", "/boot-status")).json() as { "user-data": { state: string }; "settings-applied": boolean; generated: string[] };
  assert.equal(s["user-data"].state, "absent");
  assert.equal(s["settings-applied"], true);
  assert.deepEqual(s.generated.sort(), ["settings.network.hostname", "settings.updates.seed"]);
  assert.ok(existsSync(join(h.root, "etc/hostname")));
});

// Issue 8: bounded inputs. Values are base64 (host-containers' user-data takes any base64 up to the
// value limit), so each PATCH adds 48 KiB to one transaction.
const big = (i: number) => ({ "host-containers": { [`c${i}`]: { "user-data": "QUFB".repeat(12 * 1024) } } });

test("one value over 64 KiB is a 413 naming the limit and the key; nothing changes", async () => {
  const before = await liveSettings();
  const r = await api("PATCH", "/settings?tx=big", { motd: "x".repeat(64 * 1024 + 1) });
  assert.equal(r.status, 413, r.text);
  const b = r.json() as { message: string; limit: string; key: string };
  assert.equal(b.limit, "value-bytes");
  assert.equal(b.key, "settings.motd");
  assert.match(b.message, /over the limit of 64 KiB for one value/);
  const k = await api("PATCH", "/settings/keypair?tx=big", { request_payload: [`motd=${"y".repeat(70 * 1024)}`] });
  assert.equal(k.status, 413, k.text);
  assert.deepEqual((await api("GET", "/tx/list")).json(), []);
  assert.deepEqual(await liveSettings(), before);
});

// Leaves host containers c0... in live settings (nothing deletes a key): keep it the last test.
test("repeated PATCHes cannot grow a transaction past 1 MiB, nor commits grow live settings past it", async () => {
  try {
    let i = 0;
    let r;
    for (; i < 40; i++) {
      r = await api("PATCH", "/settings?tx=grow", big(i));
      if (r.status !== 204) break;
    }
    assert.ok(i >= 15 && i < 40, `refused after ${i} PATCHes`);
    assert.equal(r!.status, 413, r!.text);
    assert.match((r!.json() as { message: string }).message, /^transaction 'grow' with these settings is \d+ bytes as JSON, over the limit of 1 MiB/);
    const pending = (await api("GET", "/tx?tx=grow")).json() as { "host-containers": Record<string, unknown> };
    assert.equal(Object.keys(pending["host-containers"]).length, i, "the refused PATCH changed nothing");
    assert.equal((await api("POST", "/tx/commit?tx=grow")).status, 200);

    // Live is now near the limit: a second transaction of the same size fits on its own, not merged with live.
    for (let j = 0; j < i; j++) assert.equal((await api("PATCH", "/settings?tx=more", big(100 + j))).status, 204);
    const live = await liveSettings();
    for (const commit of ["/tx/commit?tx=more", "/tx/commit_and_apply?tx=more", "/tx/commit_and_apply?tx=more&dry-run=true"]) {
      const c = await api("POST", commit);
      assert.equal(c.status, 413, `${commit}: ${c.text}`);
      assert.match((c.json() as { message: string }).message, /^live settings with transaction 'more' is \d+ bytes as JSON, over the limit of 1 MiB/);
    }
    assert.deepEqual(await liveSettings(), live, "nothing committed");
    assert.ok(((await api("GET", "/tx/list")).json() as string[]).includes("more"), "the refused transaction is still pending");
  } finally {
    await api("DELETE", "/tx?tx=grow");
    await api("DELETE", "/tx?tx=more");
  }
});
