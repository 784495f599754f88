// The update agent end to end against a real signed repository served on loopback: the state
// machine through the API (404/409/423), what apply writes (and never touches), the choice
// (waves, ignore-waves, version-lock, max_version), rollback (to the other slot, or to the previous
// version downloaded when the other slot cannot boot) and failed-trial detection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { call, tempDir } from "../helpers/host.js";
import { UpdateAgent } from "../../src/update/agent.js";
import type { UpdateStatus } from "../../src/protocol/types.js";
import { addUpdate, setMaxVersion } from "../../src/repo/repository.js";
import { fakeBuild } from "../helpers/fake-build.js";
import { routes } from "../../src/api/routes.js";
import { entryFileName, entryText, parseEntryName } from "../../src/boot/entries.js";
import { readState, recordHealthFailure, writeState } from "../../src/update/state.js";
import { runApiclient } from "../../src/apiclient/cli.js";
import { env, makeRepo, run, setSettings, slotAFingerprint, slotHolds, isZero, sha256, succeeded, type Env } from "../helpers/update-fixture.js";
import { bootOnce, type Booted } from "../helpers/firmware.js";

const ENTRIES = (root: string) => join(root, "efi/loader/entries");

/**
 * The simulated firmware boots the next entry; the daemon of that boot starts an update agent for
 * the version it booted (from the entry's caisson.version=), attached to the same API.
 */
function reboot(e: Env): Booted & { version: string } {
  const b = bootOnce(e.root);
  const version = /(?:^|\s)caisson\.version=(\S+)/.exec(readFileSync(join(e.root, "proc/cmdline"), "utf8"))?.[1];
  assert.ok(version, "the booted entry names its version");
  e.agent = new UpdateAgent({ root: e.root, variant: "dev", version, settings: () => e.t.host.liveSettings(), log: (m) => e.t.logs.push(m) });
  e.t.host.services.updates = e.agent;
  return { ...b, version };
}

/** systemd-bless-boot: the entry the firmware booted on trial loses its counter. */
function bless(e: Env, b: Booted): void {
  renameSync(join(ENTRIES(e.root), b.entry), join(ENTRIES(e.root), entryFileName({ slot: parseEntryName(b.entry)!.slot })));
}

/** The partition starts with exactly `file`'s bytes (slot a's tail keeps the fixture's filler). */
function startsWith(root: string, label: string, file: string): boolean {
  const want = readFileSync(file);
  return readFileSync(join(root, "dev/disk/by-partlabel", label)).subarray(0, want.length).equals(want);
}

function apiclientIo() {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = new PassThrough().on("data", (c: Buffer) => out.push(c.toString()));
  const stderr = new PassThrough().on("data", (c: Buffer) => err.push(c.toString()));
  return { io: { stdout, stderr, stdin: new PassThrough() }, out, err };
}

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
    await assert.rejects(async () => routes["/actions/refresh-updates"]!.POST!(e.t.host.services, { method: "POST", path: "", query: new URLSearchParams(), body: () => undefined }), (err: { status?: number }) => err.status === 423);
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

test("rollback puts the other slot's entry on trial as the default; a failed trial falls back; nothing to roll back to is 409", async () => {
  const e = await env();
  try {
    // Slot b has never held anything and 1.0.0 is all this host has run.
    const refused = await call(e.t.socket, "POST", "/actions/rollback-update");
    assert.equal(refused.status, 409);
    assert.match(refused.text, /nothing to roll back to: slot b holds no bootable image \(no boot entry\) and no earlier version than the running 1\.0\.0 is known/);
    assert.ok(isZero(e.root, "root-b"));
    // Running 1.1.0 on b after an update; a's blessed 1.0.0 entry is still there.
    writeFileSync(join(e.root, "proc/cmdline"), "caisson.slot=b caisson.version=1.1.0\n");
    writeFileSync(join(e.root, "efi/loader/entries/caisson-b.conf"), entryText({ slot: "b", generation: 2, title: "x", roothash: "00", fsType: "erofs", extra: ["caisson.version=1.1.0"] }));
    // The image's boot tries (usr/share/caisson/boot.json) are the trial's.
    writeFileSync(join(e.root, "usr/share/caisson/boot.json"), JSON.stringify({ "boot-tries": 1 }));
    let s = await run(e, "rollback");
    succeeded(s, "rollback");
    assert.equal(s.active_partition.next_to_boot, false);
    assert.deepEqual(s.staging_partition, { image: { arch: "x86_64", version: "1.0.0", variant: "dev" }, next_to_boot: true });
    assert.deepEqual(readdirSync(ENTRIES(e.root)), ["caisson-a+1.conf", "caisson-b.conf"], "a on trial, b blessed: the fallback");
    assert.match(readFileSync(join(ENTRIES(e.root), "caisson-a+1.conf"), "utf8"), /^version 3$/m);
    assert.ok(readFileSync(join(e.root, "dev/disk/by-partlabel/root-a")).every((b) => b === 0xa5), "a switch downloads nothing");
    assert.ok(!e.t.logs.some((l) => /rollback: .*writing the previous version/.test(l)));
    // The boot of a fails its health gate (never blessed): the firmware falls back to b by itself.
    let boot = bootOnce(e.root);
    assert.deepEqual([boot.slot, boot.counted], ["a", true]);
    boot = bootOnce(e.root);
    assert.deepEqual([boot.slot, boot.counted], ["b", false]);
    // Again from b: refused, a's trial is used up and no other earlier version is known.
    assert.equal((await call(e.t.socket, "POST", "/actions/rollback-update")).status, 409);
    // A blessed rollback is permanent.
    writeFileSync(join(ENTRIES(e.root), "caisson-a.conf"), entryText({ slot: "a", generation: 1, title: "x", roothash: "00", fsType: "erofs", extra: ["caisson.version=1.0.0"] }));
    rmSync(join(ENTRIES(e.root), "caisson-a+0-1.conf"));
    s = await run(e, "rollback");
    succeeded(s, "rollback");
    boot = bootOnce(e.root);
    assert.deepEqual([boot.slot, boot.counted], ["a", true]);
    bless(e, boot);
    assert.deepEqual(readdirSync(ENTRIES(e.root)), ["caisson-a.conf", "caisson-b.conf"]);
    assert.equal(bootOnce(e.root).slot, "a", "blessed: a boots from now on");
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
    // Even when the history says 1.1.0 ran before, rollback never goes to a failed version.
    const st = readState(e.root);
    writeState(e.root, { ...st, history: [{ version: "1.1.0", slot: "b", at: "2030-01-01T00:00:00.000Z" }, ...st.history] });
    const r = await call(e.t.socket, "POST", "/actions/rollback-update");
    assert.equal(r.status, 409);
    assert.match(r.text, /nothing to roll back to: slot b holds no bootable image \(its entry caisson-b\+0-1\.conf has no tries left\).*failed versions are never rolled back to: 1\.1\.0/);
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

test("rollback after a failed update: the previous version is downloaded into the failed slot and boots", async () => {
  const base = tempDir("caisson-update-");
  const repo = await makeRepo(base, ["1.1.0", "1.2.0"]);
  // The repository also keeps 1.0.0, the version the host was installed with.
  fakeBuild(join(base, "build-1.0.0"), { version: "1.0.0", size: 256 * 1024 });
  await addUpdate(repo.dir, { buildDir: join(base, "build-1.0.0"), waves: "none", progress: () => {} });
  repo.builds["1.0.0"] = join(base, "build-1.0.0");
  const e = await env({ base, repo });
  try {
    // 1.0.0 on a → 1.1.0 on b, blessed.
    await setSettings(e.t, { "version-lock": "1.1.0" });
    succeeded(await run(e, "refresh"), "refresh");
    succeeded(await run(e, "prepare"), "prepare");
    succeeded(await run(e, "activate"), "activate");
    let boot = reboot(e);
    assert.deepEqual([boot.slot, boot.version, boot.counted], ["b", "1.1.0", true]);
    bless(e, boot);

    // 1.1.0 → 1.2.0, written to slot a; its trial fails the health gate and uses up its try.
    await setSettings(e.t, { "version-lock": "latest" });
    let s = await run(e, "refresh");
    assert.equal(s.chosen_update?.version, "1.2.0");
    succeeded(await run(e, "prepare"), "prepare");
    succeeded(await run(e, "activate"), "activate");
    assert.ok(startsWith(e.root, "root-a", join(repo.builds["1.2.0"]!, "root.img")));
    boot = reboot(e);
    assert.deepEqual([boot.slot, boot.version, boot.counted], ["a", "1.2.0", true]);
    recordHealthFailure(e.root, "1.2.0", [{ name: "containerd", ok: false, detail: "no answer" }]);
    boot = reboot(e);
    assert.deepEqual([boot.slot, boot.version, boot.counted], ["b", "1.1.0", false], "the firmware falls back to 1.1.0 by itself");
    assert.ok(readdirSync(ENTRIES(e.root)).includes("caisson-a+0-1.conf"), "slot a holds the used-up 1.2.0");

    s = await run(e, "refresh");
    assert.deepEqual(s.failed_updates.map((f) => f.version), ["1.2.0"]);
    assert.match(s.failed_updates[0]!.reason, /containerd: no answer/);
    assert.equal(s.update_state, "Idle");
    assert.deepEqual(s.boot_history.map((r) => `${r.version}@${r.slot}`), ["1.0.0@a", "1.1.0@b", "1.2.0@a", "1.1.0@b"]);

    // One command: apiclient update rollback brings 1.0.0 back into slot a.
    const slotB = sha256(readFileSync(join(e.root, "dev/disk/by-partlabel/root-b")));
    const x = apiclientIo();
    assert.equal(await runApiclient(["-s", e.t.socket, "update", "rollback"], x.io), 0, x.err.join(""));
    await e.agent.idle;
    s = JSON.parse(x.out.join("")) as UpdateStatus;
    succeeded(s, "rollback");
    assert.equal(s.update_state, "Ready");
    assert.deepEqual(s.chosen_update, { arch: "x86_64", version: "1.0.0", variant: "dev" });
    assert.deepEqual(s.staging_partition, { image: { arch: "x86_64", version: "1.0.0", variant: "dev" }, next_to_boot: true });
    assert.deepEqual(s.active_partition, { image: { arch: "x86_64", version: "1.1.0", variant: "dev" }, next_to_boot: false });
    assert.equal(s.progress, null);
    const build = repo.builds["1.0.0"]!;
    assert.ok(startsWith(e.root, "root-a", join(build, "root.img")), "slot a holds 1.0.0's root image exactly");
    assert.ok(startsWith(e.root, "root-a-verity", join(build, "root.verity")));
    assert.deepEqual(readFileSync(join(e.root, "efi/caisson/a/vmlinuz")), readFileSync(join(build, "vmlinuz")));
    assert.deepEqual(readFileSync(join(e.root, "efi/caisson/a/initrd.img")), readFileSync(join(build, "initrd.img")));
    assert.equal(sha256(readFileSync(join(e.root, "dev/disk/by-partlabel/root-b"))), slotB, "the running slot is untouched");
    assert.deepEqual(readdirSync(ENTRIES(e.root)), ["caisson-a+1.conf", "caisson-b.conf"], "slot a on trial, b blessed");
    const text = readFileSync(join(ENTRIES(e.root), "caisson-a+1.conf"), "utf8");
    // The used-up 1.2.0 entry (generation 3) went with the clearing; the new one is above b's 2.
    assert.match(text, /^version 3$/m, "the highest generation: boots next");
    assert.match(text, /caisson\.version=1\.0\.0/);
    assert.ok(existsSync(join(e.root, "var/lib/caisson/updates/cache/targets/migrate_v1.1.0_touch.mjs")), "the hop's migration is cached for the way down");
    assert.ok(e.t.logs.some((l) => /^rollback: slot a holds no bootable image; writing the previous version 1\.0\.0/.test(l)));
    assert.ok(e.t.logs.some((l) => /^rollback: caisson-dev-x86_64-v1\.0\.0-root\.erofs 100%/.test(l)), "progress as for prepare");

    boot = reboot(e);
    assert.deepEqual([boot.slot, boot.version, boot.counted], ["a", "1.0.0", true]);
    s = await run(e, "refresh");
    assert.deepEqual(s.active_partition.image.version, "1.0.0");
    assert.deepEqual(s.boot_history.map((r) => `${r.version}@${r.slot}`), ["1.0.0@a", "1.1.0@b", "1.2.0@a", "1.1.0@b", "1.0.0@a"]);
  } finally {
    await e.close();
  }
});

test("rollback to a previous version the repository no longer lists fails before the slot is touched", async () => {
  const e = await env();
  try {
    const st = readState(e.root);
    writeState(e.root, { ...st, history: [{ version: "0.9.0", slot: "b", at: "2030-01-01T00:00:00.000Z" }, ...st.history] });
    const s = await run(e, "rollback");
    assert.equal(s.most_recent_command?.cmd_status, "Failed");
    assert.match(s.most_recent_command!.stderr, /previous version 0\.9\.0 .* is not in the repository's signed manifest: nothing to roll back to; slot b is untouched/);
    assert.ok(isZero(e.root, "root-b"));
    assert.equal(s.update_state, "Idle");
  } finally {
    await e.close();
  }
});

test("prepare is refused while the running boot is on trial; once blessed it runs", async () => {
  const base = tempDir("caisson-update-");
  const e = await env({ base, repo: await makeRepo(base, ["1.1.0", "1.2.0"]) });
  try {
    await setSettings(e.t, { "version-lock": "1.1.0" });
    succeeded(await run(e, "refresh"), "refresh");
    succeeded(await run(e, "prepare"), "prepare");
    succeeded(await run(e, "activate"), "activate");
    const boot = reboot(e);
    assert.deepEqual([boot.slot, boot.version, boot.counted], ["b", "1.1.0", true]);
    await setSettings(e.t, { "version-lock": "latest" });
    const s = await run(e, "refresh");
    assert.equal(s.chosen_update?.version, "1.2.0");
    const r = await call(e.t.socket, "POST", "/actions/prepare-update");
    assert.equal(r.status, 409);
    assert.match(r.text, /DisallowCommand: the running slot b is still on trial \(entry caisson-b\+0-1\.conf\); wait until it is blessed/);
    assert.ok(readdirSync(ENTRIES(e.root)).includes("caisson-a.conf"), "the fallback is untouched");
    bless(e, boot);
    succeeded(await run(e, "prepare"), "prepare");
  } finally {
    await e.close();
  }
});

test("a prepare from Staged that fails midway leaves Available, nothing staged", async () => {
  const e = await env();
  try {
    succeeded(await run(e, "refresh"), "refresh");
    succeeded(await run(e, "prepare"), "prepare");
    // The root image in the repository goes bad: the next prepare fails after clearing slot b.
    const targets = join(e.repo.dir, "repository/targets");
    const p = join(targets, readdirSync(targets).find((f) => f.endsWith("-root.erofs"))!);
    const b = readFileSync(p);
    b[100] = b[100]! ^ 0xff;
    writeFileSync(p, b);
    const s = await run(e, "prepare");
    assert.equal(s.most_recent_command?.cmd_status, "Failed");
    assert.equal(s.update_state, "Available");
    assert.deepEqual(s.chosen_update, { arch: "x86_64", version: "1.1.0", variant: "dev" });
    assert.equal(s.staging_partition, null);
    assert.equal((await call(e.t.socket, "POST", "/actions/activate-update")).status, 409, "nothing to activate");
  } finally {
    await e.close();
  }
});
