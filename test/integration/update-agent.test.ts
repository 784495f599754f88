// The update agent end to end against a real signed repository served on loopback: the state
// machine through the API (404/409/423), what apply writes (and never touches), the choice
// (waves, ignore-waves, version-lock, max_version), rollback and failed-trial detection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { call, tempDir } from "../helpers/host.js";
import type { UpdateStatus } from "../../src/update/agent.js";
import { addUpdate, setMaxVersion } from "../../src/repo/repository.js";
import { fakeBuild } from "../helpers/fake-build.js";
import { routes } from "../../src/api/routes.js";
import { entryFileName, entryText } from "../../src/boot/entries.js";
import { recordHealthFailure } from "../../src/update/state.js";
import { runApiclient } from "../../src/apiclient/cli.js";
import { env, makeRepo, run, setSettings, slotAFingerprint, slotHolds, isZero, succeeded } from "../helpers/update-fixture.js";

test("check, apply, cancel: the state machine, what is written and what is never touched", async () => {
  const e = await env();
  try {
    const api = (m: string, p: string) => call(e.t.socket, m, p);
    const before = await api("GET", "/updates/status");
    assert.equal(before.status, 404);
    assert.match(before.text, /UninitializedUpdateStatus/);
    assert.equal((await api("POST", "/actions/prepare-update")).status, 409, "prepare before anything is chosen");

    let s = await run(e, "refresh");
    succeeded(s, "refresh");
    assert.equal(s.update_state, "Available");
    assert.deepEqual(s.available_updates, ["1.1.0"]);
    assert.deepEqual(s.chosen_update, { arch: "x86_64", version: "1.1.0", variant: "dev" });
    assert.deepEqual(s.active_partition, { image: { arch: "x86_64", version: "1.0.0", variant: "dev" }, next_to_boot: true });
    assert.equal(s.staging_partition, null);
    assert.deepEqual(s.failed_updates, []);
    assert.equal((await api("POST", "/actions/activate-update")).status, 409);
    assert.equal((await api("POST", "/actions/deactivate-update")).status, 409);

    const slotA = slotAFingerprint(e.root);
    // One command at a time: a second one while prepare runs is 423 Locked.
    e.agent.command("prepare");
    await assert.rejects(async () => routes["/actions/refresh-updates"]!.POST!(e.t.host, { method: "POST", path: "", query: new URLSearchParams(), body: () => undefined }), (err: { status?: number }) => err.status === 423);
    await e.agent.idle;
    s = (await api("GET", "/updates/status")).json() as UpdateStatus;
    succeeded(s, "prepare");
    assert.equal(s.update_state, "Staged");
    assert.deepEqual(s.staging_partition, { image: { arch: "x86_64", version: "1.1.0", variant: "dev" }, next_to_boot: false });
    assert.equal(s.progress, null);
    const build = e.repo.builds["1.1.0"]!;
    assert.ok(slotHolds(e.root, "root-b", join(build, "root.img")), "slot b root holds the image exactly");
    assert.ok(slotHolds(e.root, "root-b-verity", join(build, "root.verity")));
    assert.deepEqual(readFileSync(join(e.root, "efi/caisson/b/vmlinuz")), readFileSync(join(build, "vmlinuz")));
    assert.deepEqual(readFileSync(join(e.root, "efi/caisson/b/initrd.img")), readFileSync(join(build, "initrd.img")));
    assert.deepEqual(readdirSync(join(e.root, "efi/loader/entries")), ["caisson-a.conf"], "staged, not bootable");
    const cache = join(e.root, "var/lib/caisson/updates/cache");
    assert.ok(existsSync(join(cache, "targets/manifest.json")));
    assert.ok(existsSync(join(cache, "targets/migrate_v1.1.0_touch.mjs")), "the hop's migration is cached");
    for (const f of ["root.json", "timestamp.json", "snapshot.json", "targets.json"]) assert.ok(existsSync(join(cache, "metadata", f)), f);
    assert.equal(slotAFingerprint(e.root), slotA);

    s = await run(e, "activate");
    succeeded(s, "activate");
    assert.equal(s.update_state, "Ready");
    assert.equal(s.active_partition.next_to_boot, false);
    assert.equal(s.staging_partition?.next_to_boot, true);
    const entries = readdirSync(join(e.root, "efi/loader/entries"));
    assert.deepEqual(entries, ["caisson-a.conf", "caisson-b+1.conf"]);
    const text = readFileSync(join(e.root, "efi/loader/entries/caisson-b+1.conf"), "utf8");
    assert.match(text, /^version 2$/m, "a generation above slot a's");
    assert.match(text, /caisson\.version=1\.1\.0/);
    assert.equal(slotAFingerprint(e.root), slotA);

    s = await run(e, "deactivate");
    succeeded(s, "deactivate");
    assert.equal(s.update_state, "Staged");
    assert.deepEqual(readdirSync(join(e.root, "efi/loader/entries")), ["caisson-a.conf"]);
    // Prepare is idempotent: again from Staged, same result.
    s = await run(e, "prepare");
    succeeded(s, "prepare");
    s = await run(e, "activate");
    assert.equal(s.update_state, "Ready");
    assert.equal((await api("POST", "/actions/rollback-update")).status, 409, "in Ready, cancel instead of rolling back");
    assert.equal(slotAFingerprint(e.root), slotA);
  } finally {
    await e.close();
  }
});

test("apiclient update apply --check and update cancel print the status; a failed command exits 1", async () => {
  const e = await env();
  try {
    const io = () => {
      const out: string[] = [];
      const err: string[] = [];
      const stdout = new PassThrough().on("data", (c: Buffer) => out.push(c.toString()));
      const stderr = new PassThrough().on("data", (c: Buffer) => err.push(c.toString()));
      return { io: { stdout, stderr, stdin: new PassThrough() }, out, err };
    };
    let x = io();
    assert.equal(await runApiclient(["-s", e.t.socket, "update", "apply", "--check"], x.io), 0, x.err.join(""));
    assert.equal((JSON.parse(x.out.join("")) as UpdateStatus).update_state, "Ready");
    x = io();
    assert.equal(await runApiclient(["-s", e.t.socket, "update", "cancel"], x.io), 0, x.err.join(""));
    assert.equal((JSON.parse(x.out.join("")) as UpdateStatus).update_state, "Staged");
    await setSettings(e.t, { "metadata-base-url": "http://127.0.0.1:1/nothing/" });
    x = io();
    assert.equal(await runApiclient(["-s", e.t.socket, "update", "check"], x.io), 1);
    assert.match(x.err.join(""), /update refresh failed: .*metadata/);
    x = io();
    assert.equal(await runApiclient(["-s", e.t.socket, "update", "apply", "--reboot", "--check", "x"], x.io), 2);
  } finally {
    await e.close();
  }
});

test("the choice: waves, ignore-waves, version-lock, a lowered max_version", async () => {
  const base = tempDir("caisson-update-");
  const repo = await makeRepo(base, ["1.1.0"]);
  // 1.2.0 in waves whose first starts in an hour: seed 100 is not due yet.
  fakeBuild(join(base, "b120"), { version: "1.2.0" });
  await addUpdate(repo.dir, { buildDir: join(base, "b120"), waves: "default", progress: () => {} });
  const e = await env({ base, repo });
  try {
    let s = await run(e, "refresh");
    assert.deepEqual(s.available_updates, ["1.1.0"], "1.2.0 waits for its wave");
    assert.equal(s.chosen_update?.version, "1.1.0");
    await setSettings(e.t, { "ignore-waves": true });
    s = await run(e, "refresh");
    assert.deepEqual(s.available_updates, ["1.2.0", "1.1.0"]);
    assert.equal(s.chosen_update?.version, "1.2.0");
    await setSettings(e.t, { "version-lock": "v1.1.0" });
    s = await run(e, "refresh");
    assert.equal(s.chosen_update?.version, "1.1.0");
    await setSettings(e.t, { "version-lock": "1.0.0" });
    s = await run(e, "refresh");
    assert.equal(s.chosen_update, null, "locked to the running version: nothing to do");
    assert.equal(s.update_state, "Idle");
  } finally {
    await e.close();
  }
  // A host running 1.2.0 when max_version is lowered to 1.1.0 is taken down to 1.1.0.
  await setMaxVersion(repo.dir, { variant: "dev", maxVersion: "1.1.0" });
  const repo2 = { ...repo, served: await (await import("../../src/repo/repository.js")).serveRepository(repo.dir, 0) };
  const e2 = await env({ base: tempDir("caisson-update-"), repo: repo2, running: "1.2.0" });
  try {
    await setSettings(e2.t, { "ignore-waves": true });
    const s = await run(e2, "refresh");
    assert.deepEqual(s.available_updates, ["1.1.0"]);
    assert.equal(s.chosen_update?.version, "1.1.0");
  } finally {
    await e2.close();
  }
});

test("rollback makes the other slot's entry the default; nothing to roll back to is 409", async () => {
  const e = await env();
  try {
    assert.equal((await call(e.t.socket, "POST", "/actions/rollback-update")).status, 409);
    // Running b after an update; a's blessed entry is still there.
    writeFileSync(join(e.root, "proc/cmdline"), "caisson.slot=b\n");
    writeFileSync(join(e.root, "efi/loader/entries/caisson-b.conf"), entryText({ slot: "b", generation: 2, title: "x", roothash: "00", fsType: "erofs", extra: ["caisson.version=1.0.0"] }));
    const s = await run(e, "rollback");
    succeeded(s, "rollback");
    assert.equal(s.active_partition.next_to_boot, false);
    assert.equal(s.staging_partition?.next_to_boot, true);
    assert.match(readFileSync(join(e.root, "efi/loader/entries/caisson-a.conf"), "utf8"), /^version 3$/m);
  } finally {
    await e.close();
  }
});

test("a failed trial is recorded with the health gate's reason and not chosen again unless locked", async () => {
  const e = await env();
  try {
    writeFileSync(
      join(e.root, "efi/loader/entries", entryFileName({ slot: "b", triesLeft: 0, triesDone: 1 })),
      entryText({ slot: "b", generation: 2, title: "x", roothash: "00", fsType: "erofs", extra: ["caisson.version=1.1.0"] }),
    );
    recordHealthFailure(e.root, "1.1.0", [{ name: "containerd", ok: false, detail: "no answer" }, { name: "api", ok: true, detail: "" }]);
    let s = await run(e, "refresh");
    assert.equal(s.failed_updates.length, 1);
    assert.equal(s.failed_updates[0]!.version, "1.1.0");
    assert.match(s.failed_updates[0]!.reason, /containerd: no answer/);
    assert.equal(s.chosen_update, null);
    assert.equal(s.update_state, "Idle");
    await setSettings(e.t, { "version-lock": "1.1.0" });
    s = await run(e, "refresh");
    assert.equal(s.chosen_update?.version, "1.1.0");
    assert.equal(s.failed_updates.length, 1, "recorded once");
  } finally {
    await e.close();
  }
});

test("slot b untouched when refresh fails", async () => {
  const e = await env();
  try {
    await setSettings(e.t, { "metadata-base-url": "http://127.0.0.1:1/" });
    const s = await run(e, "refresh");
    assert.equal(s.most_recent_command?.cmd_status, "Failed");
    assert.equal(s.most_recent_command?.exit_status, 1);
    assert.ok(isZero(e.root, "root-b"));
  } finally {
    await e.close();
  }
});
