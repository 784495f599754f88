// Signed updates end to end under QEMU: three releases built from one cached package tree and
// published with `caisson repo`; a host on 1.0.0 updates itself to 1.1.0 (with its migrations),
// survives a power cut in the middle of writing the update and one right after activating it, falls back by itself from a broken
// 1.2.0 (its migration fails the health gate), and rolls back to 1.0.0 in one command (the
// backward migrations run). One host, one overlay disk, each boot serving many assertions.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/fsutil/package-root.js";
import { launch, stop, instanceClient, type Instance } from "../../src/launch/instances.js";
import { addUpdate, initRepository, readRepository } from "../../src/repo/repository.js";
import { BOOT_TIMEOUT, consoleOf, json, log, nextBoot, settled, sleep, type BootStatus } from "../helpers/e2e.js";

const ROOT = packageRoot();
const CAISSON = join(ROOT, "dist/src/cli/caisson.js");
const WORK = process.env.CAISSON_E2E_UPDATE_DIR ?? join(ROOT, ".cache/e2e/update");
const STATE = mkdtempSync(join(tmpdir(), "caisson-e2e-update-"));
process.env.CAISSON_STATE = STATE;
const NAME = "e2e-update";
const REPO = join(STATE, "repo");
const build = (v: string) => join(WORK, v);
/** The releases: 1.0.0 as a disk (what the host first boots), the others as slot images. */
const VERSIONS = [["1.0.0", true], ["1.1.0", false], ["1.2.0", false]] as const;
let server: ChildProcess | undefined;
let inst: Instance;

interface UpdateStatus {
  update_state: string;
  available_updates: string[];
  chosen_update: { version: string } | null;
  active_partition: { image: { version: string } };
  failed_updates: { version: string; reason: string }[];
  progress: { target: string; bytes: number; total: number } | null;
  most_recent_command: { cmd_type: string; cmd_status: string; stderr: string } | null;
}

/** `caisson apiclient --name NAME ...`, asynchronously (the test process keeps serving nothing itself). */
function apiclient(...args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(process.execPath, [CAISSON, "apiclient", "--name", NAME, ...args], { env: process.env, maxBuffer: 16 * 2 ** 20 }, (err, stdout, stderr) =>
      err ? reject(new assert.AssertionError({ message: `apiclient ${args.join(" ")}: ${stderr || err.message}` })) : resolve(stdout),
    ),
  );
}

/** `caisson repo serve` in its own process, as an operator runs it; resolves with its port. */
function serve(): Promise<number> {
  return new Promise((resolve, reject) => {
    server = spawn(process.execPath, [CAISSON, "repo", "serve", REPO, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    server.stdout!.on("data", (b: Buffer) => {
      out += b.toString();
      const m = /metadata-base-url = "http:\/\/10\.0\.2\.2:(\d+)\/metadata"/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    server.once("exit", (code) => reject(new Error(`caisson repo serve exited (${code}): ${out}`)));
  });
}

const c = () => instanceClient(NAME);
const os = async () => (await json(c(), "GET", "/os")) as Record<string, string>;
const settingsOf = async () => (await json(c(), "GET", "/settings")) as { motd: string; kernel?: { sysctl?: Record<string, string> } };

before(async () => {
  // Three releases from one cached package tree, each trusting the repository's root. The keys and
  // first metadata are kept beside the builds, so CAISSON_E2E_REBUILD=0 can reuse both.
  const pristine = join(WORK, "repo-pristine");
  const reuse = process.env.CAISSON_E2E_REBUILD === "0" && existsSync(pristine) && VERSIONS.every(([v]) => existsSync(join(build(v), "build.json")));
  if (!reuse) {
    rmSync(pristine, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });
    await initRepository(pristine);
    for (const [v, disk] of VERSIONS) {
      const r = spawnSync(process.execPath, [CAISSON, "build", "--version", v, "--out", build(v), "--boot-tries", "1", "--update-root", readRepository(pristine).rootJson, ...(disk ? [] : ["--slot-only"])], {
        stdio: ["ignore", "inherit", "inherit"],
      });
      assert.equal(r.status, 0, `caisson build ${v} failed`);
    }
  }
  cpSync(pristine, REPO, { recursive: true });
  // Published as a release train: 1.0.0, then 1.1.0 with two migrations (1.2.0 comes later).
  await addUpdate(REPO, { buildDir: build("1.0.0"), waves: "none" });
  await addUpdate(REPO, { buildDir: build("1.1.0"), waves: "none", migrationsDir: join(ROOT, "examples/migrations") });
  const port = await serve();
  const userData = join(STATE, "user-data.toml");
  writeFileSync(
    userData,
    `[settings]\nmotd = "kept across updates"\n[settings.updates]\n` +
      // The guest reaches the workstation's loopback at 10.0.2.2 (QEMU user-mode network).
      `metadata-base-url = "http://10.0.2.2:${port}/metadata"\ntargets-base-url = "http://10.0.2.2:${port}/targets"\nignore-waves = true\n`,
  );
  const t0 = Date.now();
  inst = await launch({ image: join(build("1.0.0"), "disk.img"), name: NAME, memoryMiB: 1024, accel: "auto", timeoutMs: BOOT_TIMEOUT, userData, log });
  log(`${NAME}: API up ${((Date.now() - t0) / 1000).toFixed(0)} s after launch`);
});

after(async () => {
  await stop(NAME, 0).catch(() => undefined);
  server?.kill("SIGTERM");
  // The host's overlay disk and the repository are GBs (CAISSON_E2E_KEEP=1 keeps them).
  if (process.env.CAISSON_E2E_KEEP !== "1") rmSync(STATE, { recursive: true, force: true });
});

test("1.0.0 sees 1.1.0 in the signed repository", async () => {
  assert.equal((await os()).version_id, "1.0.0");
  const s = await settled(c());
  assert.equal(s.health.state, "healthy", JSON.stringify(s.health));
  const status = JSON.parse(await apiclient("update", "check")) as UpdateStatus;
  assert.equal(status.update_state, "Available");
  assert.equal(status.chosen_update?.version, "1.1.0");
  assert.deepEqual(status.available_updates, ["1.1.0", "1.0.0"]);
  assert.equal(status.active_partition.image.version, "1.0.0");
});

test("a power cut while the update is written: slot A still boots, nothing is lost, and the update can be tried again", async () => {
  const before1 = await settled(c());
  assert.equal((await c().request("POST", "/actions/prepare-update")).status, 204);
  // Pull the plug once a good part of the root image is on the inactive slot.
  const t0 = Date.now();
  for (;;) {
    const st = (await json(c(), "GET", "/updates/status")) as UpdateStatus;
    if (st.progress && st.progress.target.endsWith("-root.erofs") && st.progress.bytes > st.progress.total / 4) break;
    assert.notEqual(st.most_recent_command?.cmd_status, "Failed", st.most_recent_command?.stderr);
    assert.ok(Date.now() - t0 < 300_000, "the write never got a quarter of the way");
    await sleep(200);
  }
  await stop(NAME, 0); // QMP quit: the VM stops dead, no shutdown, no flush inside the guest
  log("power cut during the slot write");
  inst = await launch({ image: join(build("1.0.0"), "disk.img"), name: NAME, memoryMiB: 1024, accel: "auto", timeoutMs: BOOT_TIMEOUT, fresh: false, log });
  const s = await settled(c());
  assert.notEqual(s["started-at"], before1["started-at"]);
  assert.equal(s.boot.slot, "a");
  assert.equal(s.health.state, "healthy");
  assert.deepEqual(s.boot.entries, ["caisson-a.conf"], "the half-written slot B has no boot entry");
  assert.equal(s.boot["machine-id"], before1.boot["machine-id"]);
  assert.equal((await settingsOf()).motd, "kept across updates");
});

test("apply, then a power cut right after activation: 1.1.0 boots from slot B, settings kept, its migrations ran", async () => {
  const before1 = await settled(c());
  const out = JSON.parse(await apiclient("update", "apply", "--check")) as UpdateStatus;
  assert.equal(out.update_state, "Ready");
  // No clean reboot: the plug is pulled the moment activate reports done, so the new entry must
  // already be durable on the ESP for the firmware to find it.
  await stop(NAME, 0); // QMP quit: the VM stops dead, no shutdown, no flush inside the guest
  log("power cut right after activate");
  inst = await launch({ image: join(build("1.0.0"), "disk.img"), name: NAME, memoryMiB: 1024, accel: "auto", timeoutMs: BOOT_TIMEOUT, fresh: false, log });
  const s = await nextBoot(c(), before1["started-at"]);
  assert.equal((await os()).version_id, "1.1.0");
  assert.equal(s.boot.slot, "b");
  assert.equal(s.health.state, "healthy", JSON.stringify(s.health));
  assert.deepEqual(s.migration?.ran, ["migrate_v1.1.0_add-tcp-keepalive.mjs (forward)", "migrate_v1.1.0_motd-1.1.mjs (forward)"]);
  const settings = await settingsOf();
  assert.equal(settings.motd, "kept across updates", "a value the user set survives the motd migration");
  assert.equal(settings.kernel?.sysctl?.["net.ipv4.tcp_keepalive_time"], "600", "the add-tcp-keepalive migration ran");
  // Blessed once its gate passed: both slots now have plain (counted-out) entries.
  const blessed = await nextBlessed();
  assert.deepEqual(blessed, ["caisson-a.conf", "caisson-b.conf"]);
});

/** The ESP's entries once systemd-bless-boot has renamed the trial entry (after boot-complete.target). */
async function nextBlessed(): Promise<string[]> {
  let entries: string[] = [];
  for (let i = 0; i < 60; i++) {
    entries = ((await json(c(), "GET", "/boot-status")) as BootStatus).boot.entries ?? [];
    if (!entries.some((e) => e.includes("+"))) break;
    await sleep(2000);
  }
  return entries;
}

test("a broken 1.2.0 (its migration fails the health gate) falls back to 1.1.0 by itself; the agent says why and does not pick it again", async () => {
  const failing = join(STATE, "migrations-1.2.0");
  mkdirSync(failing, { recursive: true });
  writeFileSync(
    join(failing, "break-on-purpose.mjs"),
    `export const description = "e2e: a migration that fails, so 1.2.0 never passes its health gate";\n` +
      `export function forward() { throw new Error("1.2.0 migration fails on purpose"); }\nexport function backward(s) { return s; }\n`,
  );
  await addUpdate(REPO, { buildDir: build("1.2.0"), waves: "none", migrationsDir: failing });
  const before1 = await settled(c());
  const out = JSON.parse(await apiclient("update", "apply", "--check", "--reboot")) as UpdateStatus;
  assert.equal(out.chosen_update?.version, "1.2.0");
  // 1.2.0 boots on trial from slot A, fails its gate, reboots; systemd-boot then picks slot B again.
  const s = await nextBoot(c(), before1["started-at"], (b) => b.boot.slot === "b");
  const text = consoleOf(inst);
  assert.match(text, /CAISSON-HEALTH FAIL slot=a entry=caisson-a\+1\.conf: migration/, "1.2.0 booted on trial and failed its gate");
  assert.equal((await os()).version_id, "1.1.0");
  assert.equal(s.health.state, "healthy");
  assert.ok(s.boot.entries?.includes("caisson-a+0-1.conf"), JSON.stringify(s.boot.entries));
  assert.equal((await settingsOf()).motd, "kept across updates", "the failed migration left the data as it was");
  const status = JSON.parse(await apiclient("update", "check")) as UpdateStatus;
  const failed = status.failed_updates.find((f) => f.version === "1.2.0");
  assert.ok(failed, JSON.stringify(status.failed_updates));
  assert.match(failed.reason, /migration/);
  assert.equal(status.chosen_update, null, "the agent does not pick a failed version again by itself");
  assert.equal(status.update_state, "Idle");
});

test("rollback: one command and one reboot take the host to 1.0.0, running the backward migrations", async () => {
  const before1 = await settled(c());
  await apiclient("update", "rollback", "--reboot");
  const s = await nextBoot(c(), before1["started-at"]);
  assert.equal((await os()).version_id, "1.0.0");
  assert.equal(s.boot.slot, "a");
  assert.equal(s.health.state, "healthy", JSON.stringify(s.health));
  assert.equal(s.migration?.state, "done");
  assert.equal(s.migration?.from, "1.1.0");
  assert.deepEqual(s.migration?.ran, ["migrate_v1.1.0_motd-1.1.mjs (backward)", "migrate_v1.1.0_add-tcp-keepalive.mjs (backward)"]);
  const settings = await settingsOf();
  assert.equal(settings.kernel?.sysctl?.["net.ipv4.tcp_keepalive_time"], undefined, "the backward migration removed what 1.1.0 added");
  assert.equal(settings.motd, "kept across updates");
  assert.doesNotMatch(consoleOf(inst), /avc: {1,2}denied/, "no SELinux denial through all the updates");
});
