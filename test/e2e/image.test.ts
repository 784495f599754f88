// End to end under QEMU: the real image, built from the cached package tree, booted under UEFI
// (and once with a direct kernel boot, where boot counting is not what is tested). Boots are few
// and each serves many assertions. Slow by nature (TCG): about 8 minutes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/fsutil/package-root.js";
import { launch, stop, instanceClient, readInstance, type Instance } from "../../src/launch/instances.js";
import { makeInstanceTls } from "../../src/launch/tls.js";
import { readBuildRecord } from "../../src/image/build.js";
import { corruptSlot, listEntries, stageSlot, writeEspFile } from "../helpers/offline.js";
import { BOOT_TIMEOUT, consoleOf, json, log, nextBoot, onSlot, settled, type BootStatus } from "../helpers/e2e.js";

const ROOT = packageRoot();
const OUT = process.env.CAISSON_E2E_IMAGE_DIR ?? join(ROOT, ".cache/e2e/image");
const STATE = mkdtempSync(join(tmpdir(), "caisson-e2e-"));
process.env.CAISSON_STATE = STATE;
const started: string[] = [];

const USER_DATA = `
[settings]
motd = "e2e motd from user data"
[settings.kernel.sysctl]
"vm.max_map_count" = "262144"
[settings.ntp]
time-servers = ["ntp.example.org"]
[settings.bootstrap-commands.e2e]
mode = "once"
essential = true
commands = [["apiclient", "set", 'kernel.sysctl."net.core.somaxconn"=1024']]
`;

async function up(name: string, image: string, extra: Partial<Parameters<typeof launch>[0]> = {}): Promise<Instance> {
  started.push(name);
  const t0 = Date.now();
  const i = await launch({ image, name, memoryMiB: 1024, accel: "auto", timeoutMs: BOOT_TIMEOUT, log, ...extra });
  log(`${name}: API up ${((Date.now() - t0) / 1000).toFixed(0)} s after launch`);
  return i;
}

before(() => {
  // The image under test: built by the production pipeline, with one boot try so fallbacks are quick.
  if (!existsSync(join(OUT, "disk.img")) || process.env.CAISSON_E2E_REBUILD !== "0") {
    const r = spawnSync(process.execPath, [join(ROOT, "dist/src/cli/caisson.js"), "build", "--out", OUT, "--boot-tries", "1"], { stdio: ["ignore", "inherit", "inherit"] });
    assert.equal(r.status, 0, "caisson build failed");
  }
});

after(async () => {
  for (const n of started) await stop(n, 0).catch(() => undefined);
  // Each boot's overlay and the trial disks are GBs: a CI machine running this again and again
  // must not fill up (CAISSON_E2E_KEEP=1 keeps them for a post-mortem).
  if (process.env.CAISSON_E2E_KEEP !== "1") rmSync(STATE, { recursive: true, force: true });
});

test("reproducible: the same cached package tree assembled again gives the same root image and root hash", () => {
  const again = mkdtempSync(join(tmpdir(), "caisson-e2e-rebuild-"));
  const r = spawnSync(process.execPath, [join(ROOT, "dist/src/cli/caisson.js"), "build", "--out", again, "--boot-tries", "1", "--slot-only"], { stdio: ["ignore", "ignore", "inherit"] });
  assert.equal(r.status, 0);
  assert.equal(readBuildRecord(again).roothash, readBuildRecord(OUT).roothash);
  const sha = (d: string) => readBuildRecord(d).files.root!.sha256;
  assert.equal(sha(again), sha(OUT));
  rmSync(again, { recursive: true, force: true });
});

test("first boot: user data applied over fw_cfg, API over mTLS only, files rendered, only affected units restarted, SELinux enforcing with no denial", async () => {
  const userData = join(STATE, "user-data.toml");
  writeFileSync(userData, USER_DATA);
  // A 4 GiB disk for a 2.7 GiB image: the data partition grows into the rest at first boot.
  const inst = await up("e2e-main", join(OUT, "disk.img"), { userData, diskGiB: 4 });
  const c = instanceClient("e2e-main");

  const motd = (await json(c, "GET", "/settings?keys=settings.motd")) as { motd: string };
  assert.equal(motd.motd, "e2e motd from user data");
  const os = (await json(c, "GET", "/os")) as Record<string, string>;
  const build = readBuildRecord(OUT);
  assert.equal(os.version_id, build.version);
  assert.equal(os.variant_id, "dev");
  assert.match(os.pretty_name!, /^Caisson /);

  const s = await settled(c);
  assert.equal(s["user-data"].state, "applied");
  assert.deepEqual(s["user-data"].sources, ["QEMU fw_cfg opt/caisson/launch-user-data", "QEMU fw_cfg opt/caisson/user-data"]);
  assert.equal(s["settings-applied"], true);
  assert.equal(s.health.state, "healthy", JSON.stringify(s.health));
  // The bootstrap command ran through apiclient against the host's own API before the verdict.
  assert.deepEqual(s["bootstrap-commands"]?.map((b) => [b.name, b.state]), [["e2e", "ok"]]);
  assert.ok(s.health.checks.some((c) => c.name === "bootstrap-commands" && c.ok), JSON.stringify(s.health.checks));
  assert.deepEqual(await json(c, "GET", '/settings?keys=settings.kernel.sysctl.%22net.core.somaxconn%22,settings.bootstrap-commands.e2e.mode'), {
    kernel: { sysctl: { "net.core.somaxconn": "1024" } },
    "bootstrap-commands": { e2e: { mode: "off" } },
  });
  assert.equal(s.boot.slot, "a");
  assert.equal(s.boot.counted, false);
  assert.deepEqual(s.boot.entries, ["caisson-a.conf"]);
  assert.equal(s.boot.selinux, "enforcing");
  assert.match(s.boot["machine-id"] ?? "", /^[0-9a-f]{32}$/);
  const data = s["data-partition"];
  assert.ok(data && !("error" in data), `data partition: ${JSON.stringify(data)}`);
  // 4096 MiB disk - 1 MiB GPT - ESP - two slots: what is left is the data partition's, filesystem included.
  const l = readBuildRecord(OUT).layout;
  const expected = 4096 - 1 - l.espMiB - 2 * (l.rootMiB + l.verityMiB);
  assert.equal(data["disk-mib"], 4096);
  assert.ok(data["partition-mib"] >= expected - 2, `data partition ${data["partition-mib"]} MiB, expected ~${expected}`);
  assert.ok(data["filesystem-mib"] > 0.9 * data["partition-mib"], `filesystem ${data["filesystem-mib"]} MiB on a ${data["partition-mib"]} MiB partition`);
  assert.deepEqual(data.grown, ["filesystem"], "systemd-repart grew the partition, the daemon its filesystem");

  // The rendered /etc/motd holds the user data's value: the dry-run diff is against the file on the host.
  const dry = spawnSync(process.execPath, [join(ROOT, "dist/src/cli/caisson.js"), "apiclient", "--name", "e2e-main", "set", "--dry-run", "motd=next"], { encoding: "utf8", env: process.env });
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /^-e2e motd from user data$/m);
  assert.match(dry.stdout, /^\+next$/m);

  // A change re-renders its file and restarts only the service that reads it.
  await json(c, "PATCH", "/settings?tx=e2e", JSON.stringify({ ntp: { "time-servers": ["time.example.net"] } }));
  assert.deepEqual(await json(c, "POST", "/tx/commit_and_apply?tx=e2e"), ["settings.ntp.time-servers"]);
  const [last] = (await json(c, "GET", "/applier/history")) as { files: string[]; "restart-units": string[] }[];
  assert.deepEqual(last!.files, ["/etc/chrony/chrony.conf"]);
  assert.deepEqual(last!["restart-units"], ["chrony.service"]);
  await json(c, "PATCH", "/settings?tx=e2e", JSON.stringify({ motd: "changed live" }));
  await json(c, "POST", "/tx/commit_and_apply?tx=e2e");

  // Wrong or missing client certificates never get an answer.
  const i = readInstance("e2e-main");
  const other = await makeInstanceTls(join(STATE, "other-ca"), "other");
  const attempt = (opts: Record<string, unknown>) =>
    new Promise<string>((resolve) => {
      const req = httpsRequest({ host: "127.0.0.1", port: i.apiPort, path: "/settings", ca: readFileSync(join(i.dir, "tls/ca.pem")), servername: "localhost", agent: false, ...opts }, (res) =>
        resolve(`HTTP ${res.statusCode}`),
      );
      req.on("error", (e) => resolve(`refused: ${e.message}`));
      // A server that accepts and never answers must fail the test, not hang it (nor pass as refused).
      req.setTimeout(20_000, () => {
        resolve("no answer within 20 s");
        req.destroy();
      });
      req.end();
    });
  assert.match(await attempt({}), /^refused/);
  assert.match(await attempt({ cert: readFileSync(other.clientCert), key: readFileSync(other.clientKey) }), /^refused/);

  const consoleText = consoleOf(inst);
  assert.match(consoleText, /enforcing=1/);
  assert.doesNotMatch(consoleText, /avc: {1,2}denied/, "the boot logged an SELinux denial");
  assert.match(consoleText, /Caisson \S+ \(dev\) slot a at \S+: healthy, API up/);
});

test("reboot keeps settings and the machine ID; user data is not applied again", async () => {
  const c = instanceClient("e2e-main");
  const before1 = (await json(c, "GET", "/boot-status")) as BootStatus;
  const r = await c.request("POST", "/actions/reboot");
  assert.equal(r.status, 204, r.body);
  const t0 = Date.now();
  const after1 = await nextBoot(c, before1["started-at"]);
  log(`e2e-main: back after reboot in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  assert.equal(after1.boot["machine-id"], before1.boot["machine-id"]);
  assert.equal(after1["user-data"].at, before1["user-data"].at, "user data is read at first boot only");
  // Grown once: the next boot finds the partition already filling the disk.
  assert.deepEqual(after1["data-partition"], { ...before1["data-partition"], grown: [] });
  assert.deepEqual(await json(c, "GET", "/settings?keys=settings.motd"), { motd: "changed live" });
  await stop("e2e-main", 0);
});

test("an unhealthy blessed slot stays up, degraded, and says so; malformed user data leaves the host on defaults, saying why (direct kernel boot: no try counter)", async () => {
  const bad = join(STATE, "bad-user-data.toml");
  writeFileSync(bad, '[settings]\nmotd = "never applied"\n[settings.kernel]\nlockdwn = "none"\n');
  const inst = await up("e2e-degraded", join(OUT, "disk.img"), { directKernelArgs: ["caisson.test.fail-health"], userData: bad });
  const s = await settled(instanceClient("e2e-degraded"));
  const ud = s["user-data"] as unknown as { state: string; sources: string[]; error: { message: string; key: string } };
  assert.equal(ud.state, "rejected");
  assert.equal(ud.error.key, "settings.kernel.lockdwn");
  assert.deepEqual(ud.sources, ["QEMU fw_cfg opt/caisson/launch-user-data"], "the launch's own user data still applied");
  assert.deepEqual(await json(instanceClient("e2e-degraded"), "GET", "/settings?keys=settings.motd"), { motd: "Welcome to Caisson!" });
  assert.equal(s.health.state, "unhealthy");
  assert.equal(s.health.degraded, true);
  assert.equal(s.boot.counted, false);
  assert.ok(s.health.checks.some((c) => c.name === "test-knob" && !c.ok));
  // The gate reports and does not reboot: the API keeps answering.
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal((await instanceClient("e2e-degraded").request("GET", "/os")).status, 200);
  const text = consoleOf(inst);
  assert.match(text, /DEGRADED/);
  assert.doesNotMatch(text, /rebooting to use up this try/);
  await stop("e2e-degraded", 0);
});

/** A raw copy of the built disk with slot B on trial (the build's tries: one, for speed), booted fresh. */
async function bootWithTrialSlot(name: string, prepare: (disk: string) => void, extra: string[]): Promise<Instance> {
  const build = readBuildRecord(OUT);
  const disk = join(STATE, `${name}.img`);
  copyFileSync(join(OUT, "disk.img"), disk);
  await stageSlot(
    disk,
    build.layout,
    { root: join(OUT, "root.img"), verity: join(OUT, "root.verity"), vmlinuz: join(OUT, "vmlinuz"), initrd: join(OUT, "initrd.img") },
    { slot: "b", generation: 2, title: `Caisson ${build.version} (trial)`, roothash: build.roothash, fsType: "erofs", extra: [...build["kernel-parameters"], ...extra] },
    build["boot-tries"],
  );
  assert.deepEqual(await listEntries(disk, build.layout), ["caisson-a.conf", "caisson-b+1.conf"]);
  prepare(disk);
  return up(name, disk);
}

test("a slot on trial whose health gate fails uses up its try, and the other slot boots by itself", async () => {
  const inst = await bootWithTrialSlot("e2e-trial", () => {}, ["caisson.test.fail-health"]);
  const s = await onSlot(instanceClient("e2e-trial"), "a");
  const text = consoleOf(inst);
  // systemd-boot reports the entry by the name it had when chosen (before counting the try).
  assert.match(text, /CAISSON-HEALTH FAIL slot=b entry=caisson-b\+1\.conf: test-knob/, "slot b booted on trial and failed its gate");
  assert.equal(s.boot.slot, "a");
  assert.deepEqual(s.boot.entries, ["caisson-a.conf", "caisson-b+0-1.conf"]);
  assert.equal(s.health.state, "healthy");
  await stop("e2e-trial", 0);
});

test("one flipped byte in a block the trial slot reads at boot: dm-verity resets the machine and the other slot boots", async () => {
  const build = readBuildRecord(OUT);
  // Offset 1024: the erofs superblock, the first block mounting the root reads.
  const inst = await bootWithTrialSlot("e2e-verity", (disk) => corruptSlot(disk, build.layout, "b", 1024 + 8), []);
  const s = await onSlot(instanceClient("e2e-verity"), "a");
  const text = consoleOf(inst);
  assert.match(text, /device-mapper: verity: .*(data|metadata) block \d+ is corrupted/);
  assert.match(text, /dm-verity device corrupted/);
  assert.equal(s.boot.slot, "a");
  assert.deepEqual(s.boot.entries, ["caisson-a.conf", "caisson-b+0-1.conf"]);
  await stop("e2e-verity", 0);
});

test("a trial slot whose kernel fails to load: the firmware runs systemd-boot again, the other slot boots in the same power-on, and the failed entry is not blessed", async () => {
  const build = readBuildRecord(OUT);
  // A truncated kernel on the ESP: systemd-boot counts b's try, fails to load it and returns to the
  // firmware; OVMF falls to its shell, whose startup.nsh (on the ESP) runs systemd-boot again; b
  // is spent, so a boots in the same power-on, with LoaderBootCountPath still naming b's entry.
  const inst = await bootWithTrialSlot("e2e-noload", (disk) => writeEspFile(disk, build.layout, "/caisson/b/vmlinuz", readFileSync(join(OUT, "vmlinuz")).subarray(0, 4096)), []);
  const c = instanceClient("e2e-noload");
  const s = await onSlot(c, "a");
  assert.equal(s.health.state, "healthy", JSON.stringify(s.health));
  assert.match(consoleOf(inst), /Error loading \\caisson\\b\\vmlinuz/, "b's kernel failed to load");
  assert.match(consoleOf(inst), /Caisson: the boot loader returned to the firmware; running it again/);
  // systemd-bless-boot runs after boot-complete.target: wait until it has acted (or declined).
  const entries = async () => ((await json(c, "GET", "/boot-status")) as BootStatus).boot.entries ?? [];
  const t0 = Date.now();
  while (!/CAISSON-BLESS/.test(consoleOf(inst)) && !(await entries()).includes("caisson-b.conf") && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 2000));
  // The defect: b's spent entry renamed to the blessed caisson-b.conf, so every later power-on picks it and stalls.
  assert.deepEqual(await entries(), ["caisson-a.conf", "caisson-b+0-1.conf"], "b keeps its spent counter, so no later power-on picks it");
  assert.match(consoleOf(inst), /CAISSON-BLESS refused: LoaderBootCountPath names \S*caisson-b\+0-1\.conf but caisson-a\.conf booted/);
  const b = s.boot;
  assert.match(b["count-path"] ?? "", /caisson-b\+0-1\.conf$/, "systemd-boot counted b's try in this power-on");
  assert.equal(b.counted, false, "the boot of a (blessed) is not a counted boot");
  await stop("e2e-noload", 0);
});
