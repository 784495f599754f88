// Settings migrations end to end, in workstation mode: a signed repository (src/repo) with 1.0.0
// and 1.1.0 (examples/migrations as 1.1.0's modules), a cache filled the way the update agent
// fills it (tuf-js' Updater with metadataDir = cache/metadata, targets into cache/targets), then
// the host started at another version migrates its datastore at start.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Updater } from "tuf-js";
import { Metadata, MetadataKind } from "@tufjs/models";
import { addUpdate, initRepository, repoPaths, rotateRoot, serveRepository, type Expiries } from "../../src/repo/repository.js";
import { updatePaths, type Manifest } from "../../src/update/manifest.js";
import { migrateDatastore, MigrationError } from "../../src/migrations/migrator.js";
import { readCurrent } from "../../src/datastore/layout.js";
import { verifyCache } from "../../src/migrations/verify.js";
import { startHost as startRunningHost } from "../../src/host/host.js";
import { evaluateHealth } from "../../src/host/health.js";
import { RecordingServiceManager } from "../../src/applier/service-manager.js";
import { imageDataDir, packageRoot } from "../../src/fsutil/package-root.js";
import { createApiServer, listenOnSocket } from "../../src/api/server.js";
import { call } from "../helpers/host.js";
import { fakeBuild } from "../helpers/fake-build.js";

const EXAMPLES = join(packageRoot(), "examples", "migrations");
const KEEPALIVE = "net.ipv4.tcp_keepalive_time";
const quiet = () => {};

interface Setup {
  dir: string;
  repo: string;
  root: string;
  cache: string;
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), "caisson-migr-"));
}

/** A directory of migration modules from source texts. */
function modules(dir: string, files: Record<string, string>): string {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** A repository with 1.0.0 and 1.1.0 (with `migrations`), and a host root shipping its root.json. */
async function publish(o: { migrations?: string; expires?: Expiries } = {}): Promise<Setup> {
  const dir = tmp();
  const repo = join(dir, "repo");
  await initRepository(repo, { expires: o.expires });
  fakeBuild(join(dir, "b100"), { version: "1.0.0", size: 1024 });
  await addUpdate(repo, { buildDir: join(dir, "b100"), version: "1.0.0", waves: "none", progress: quiet });
  fakeBuild(join(dir, "b110"), { version: "1.1.0", size: 1024 });
  await addUpdate(repo, { buildDir: join(dir, "b110"), version: "1.1.0", waves: "none", migrationsDir: o.migrations ?? EXAMPLES, progress: quiet });
  const root = join(dir, "root");
  shipAnchor(repo, root);
  return { dir, repo, root, cache: join(root, updatePaths.cache) };
}

/** The trust anchor the image ships: the repository's root as of now. */
function shipAnchor(repo: string, root: string): void {
  mkdirSync(join(root, "usr/share/caisson/updates"), { recursive: true });
  copyFileSync(repoPaths(repo).rootJson, join(root, updatePaths.trustedRoot));
}

/** What the update agent's prepare does: tuf-js refreshes into cache/metadata, then downloads. */
async function fillCache(s: Setup, extra: string[] = []): Promise<Manifest> {
  const metadataDir = join(s.cache, "metadata");
  const targetDir = join(s.cache, "targets");
  mkdirSync(metadataDir, { recursive: true });
  mkdirSync(targetDir, { recursive: true });
  if (!existsSync(join(metadataDir, "root.json"))) copyFileSync(join(s.root, updatePaths.trustedRoot), join(metadataDir, "root.json"));
  const served = await serveRepository(s.repo, 0);
  try {
    const updater = new Updater({ metadataDir, metadataBaseUrl: served.metadataUrl, targetBaseUrl: served.targetsUrl, targetDir });
    await updater.refresh();
    const get = async (name: string) => {
      const info = await updater.getTargetInfo(name);
      assert.ok(info, `${name} is not a target`);
      await updater.downloadTarget(info, join(targetDir, name));
    };
    await get("manifest.json");
    const manifest = JSON.parse(readFileSync(join(targetDir, "manifest.json"), "utf8")) as Manifest;
    for (const name of [...Object.values(manifest.migrations).flat(), ...extra]) await get(name);
    return manifest;
  } finally {
    await served.close();
  }
}

function startHost(root: string, version: string) {
  const logs: string[] = [];
  return startRunningHost({
    root,
    variant: "dev",
    version,
    imageDir: imageDataDir(),
    serviceManager: new RecordingServiceManager(),
    userDataSources: [],
    log: (m: string) => logs.push(m),
  }).then((host) => ({ host, logs }));
}

const datastore = (root: string) => join(root, updatePaths.datastore);
const sysctl = (settings: unknown) => ((settings as { kernel?: { sysctl?: Record<string, string> } }).kernel?.sysctl ?? {})[KEEPALIVE];

test("1.0.0 -> 1.1.0 runs the example migrations at host start; 1.1.0 -> 1.0.0 reverses them", async () => {
  const s = await publish();
  try {
    const manifest = await fillCache(s);
    assert.deepEqual(manifest.migrations["(1.0.0, 1.1.0)"], ["migrate_v1.1.0_add-tcp-keepalive.mjs", "migrate_v1.1.0_motd-1.1.mjs"]);

    // First boot of 1.0.0: the store is created at 1.0.0, nothing to migrate.
    const first = await startHost(s.root, "1.0.0");
    assert.equal(first.host.bootStatus().migration.state, "none");
    assert.equal(first.host.liveSettings().motd, "Welcome to Caisson!");
    const oldDir = readlinkSync(join(datastore(s.root), "current"));

    // The host now runs 1.1.0.
    const up = await startHost(s.root, "1.1.0");
    const m = up.host.bootStatus().migration;
    assert.equal(m.state, "done", JSON.stringify(m));
    assert.deepEqual(m.ran, ["migrate_v1.1.0_add-tcp-keepalive.mjs (forward)", "migrate_v1.1.0_motd-1.1.mjs (forward)"]);
    assert.equal(m.from, "1.0.0");
    assert.equal(up.host.liveSettings().motd, "Welcome to Caisson 1.1!");
    assert.equal(sysctl(up.host.liveSettings()), "600");
    assert.equal(readFileSync(join(s.root, "etc/motd"), "utf8").trim(), "Welcome to Caisson 1.1!", "rendered from the migrated settings");
    assert.equal(readCurrent(datastore(s.root))?.version, "1.1.0");
    assert.ok(existsSync(join(datastore(s.root), oldDir, "live.json")), "the old data directory is kept");

    // Started again at 1.1.0: nothing more to do.
    assert.equal((await startHost(s.root, "1.1.0")).host.bootStatus().migration.state, "none");

    // Back to 1.0.0 (a rollback): each module backward, in reverse order.
    const down = await startHost(s.root, "1.0.0");
    const b = down.host.bootStatus().migration;
    assert.equal(b.state, "done", JSON.stringify(b));
    assert.deepEqual(b.ran, ["migrate_v1.1.0_motd-1.1.mjs (backward)", "migrate_v1.1.0_add-tcp-keepalive.mjs (backward)"]);
    assert.equal(down.host.liveSettings().motd, "Welcome to Caisson!");
    assert.equal(sysctl(down.host.liveSettings()), undefined);
    assert.deepEqual(down.host.liveSettings(), first.host.liveSettings(), "forward then backward gives back the 1.0.0 settings");
    // current + at most 2 old data directories.
    assert.ok(readdirSync(datastore(s.root)).filter((f) => f.startsWith("v")).length <= 3);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test("a user's own value survives: the migration only fills what is not set", async () => {
  const s = await publish();
  try {
    await fillCache(s);
    const first = await startHost(s.root, "1.0.0");
    first.host.settings.patch("t", { motd: "mine", kernel: { sysctl: { [KEEPALIVE]: "30" } } });
    await first.host.settings.commit("t");
    const up = await startHost(s.root, "1.1.0");
    assert.equal(up.host.bootStatus().migration.state, "done");
    assert.equal(up.host.liveSettings().motd, "mine");
    assert.equal(sysctl(up.host.liveSettings()), "30");
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test("expired cached metadata still verifies offline", async () => {
  // Roles that expire 2 s after signing; the cache is filled while they are fresh.
  const s = await publish({ expires: { timestamp: 2, snapshot: 2, targets: 2 } });
  try {
    await fillCache(s);
    await startHost(s.root, "1.0.0");
    const ts = Metadata.fromJSON(MetadataKind.Timestamp, JSON.parse(readFileSync(join(s.cache, "metadata/timestamp.json"), "utf8")));
    const wait = new Date(ts.signed.expires).getTime() - Date.now() + 1100;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    assert.ok(ts.signed.isExpired(), "the cached timestamp has expired");
    const r = await migrateDatastore({ root: s.root, toVersion: "1.1.0", variant: "dev", log: quiet });
    assert.equal(r?.ran.length, 2);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test("a rotated root is followed from the image's anchor", async () => {
  const s = await publish();
  try {
    await rotateRoot(s.repo); // root 2, signed by root 1's keys and its own
    await fillCache(s);
    assert.equal(JSON.parse(readFileSync(join(s.cache, "metadata/root.json"), "utf8")).signed.version, 2);
    const v = await verifyCache(s.root, () => []);
    assert.ok(v.manifest.updates.length === 2);

    // Rotated twice: root 3 is signed by root 2's keys only. tuf-js keeps only root.json (3), so
    // the step 2.root.json must be in the cache for an image that trusts root 1.
    await rotateRoot(s.repo);
    await fillCache(s);
    await assert.rejects(verifyCache(s.root, () => []), /root\.json: root metadata not signed by a threshold of root version 1's keys/);
    copyFileSync(join(repoPaths(s.repo).metadata, "2.root.json"), join(s.cache, "metadata/2.root.json"));
    await verifyCache(s.root, () => []);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test("a tampered cached module is refused and never executed", async () => {
  const s = await publish();
  try {
    await fillCache(s);
    await startHost(s.root, "1.0.0");
    const before = readlinkSync(join(datastore(s.root), "current"));
    const marker = join(s.dir, "pwned");
    const evil = `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "ran");\n` + `export const forward = (s) => s; export const backward = (s) => s;\n`;
    const file = join(s.cache, "targets", "migrate_v1.1.0_motd-1.1.mjs");
    writeFileSync(file, evil);

    await assert.rejects(
      migrateDatastore({ root: s.root, toVersion: "1.1.0", variant: "dev", log: quiet }),
      (e: Error) => e instanceof MigrationError && e.message.includes(file) && /does not match targets\.json/.test(e.message),
    );
    assert.equal(existsSync(marker), false, "the tampered module ran");
    assert.equal(readlinkSync(join(datastore(s.root), "current")), before, "current moved");
    // Control: the marker mechanism works, so its absence above means something.
    await import(`data:text/javascript;base64,${Buffer.from(evil).toString("base64")}`);
    assert.equal(existsSync(marker), true);

    // A tampered targets.json (a hash swapped) fails its signature.
    const tgPath = join(s.cache, "metadata", "targets.json");
    const tg = JSON.parse(readFileSync(tgPath, "utf8"));
    const name = "migrate_v1.1.0_motd-1.1.mjs";
    tg.signed.targets[name].hashes.sha256 = "0".repeat(64);
    writeFileSync(tgPath, JSON.stringify(tg));
    await assert.rejects(migrateDatastore({ root: s.root, toVersion: "1.1.0", variant: "dev", log: quiet }), /targets\.json: targets metadata not signed/);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

test("a failing migration leaves the old store; the host comes up on it and the health gate fails", async () => {
  const dir = tmp();
  const bad = modules(join(dir, "bad"), {
    "a-fine.mjs": `export const forward = (s, h) => h.set(s, "motd", "touched"); export const backward = (s) => s;`,
    "b-throws.mjs": `export const forward = () => { throw new Error("cannot migrate this"); }; export const backward = (s) => s;`,
  });
  const s = await publish({ migrations: bad });
  try {
    await fillCache(s);
    const first = await startHost(s.root, "1.0.0");
    const before = readlinkSync(join(datastore(s.root), "current"));
    const oldSettings = first.host.liveSettings();

    const up = await startHost(s.root, "1.1.0");
    const m = up.host.bootStatus().migration;
    assert.equal(m.state, "failed");
    assert.equal(m.from, "1.0.0");
    assert.match(m.error ?? "", /migrate_v1\.1\.0_b-throws\.mjs \(forward\) failed: cannot migrate this/);
    assert.equal(readlinkSync(join(datastore(s.root), "current")), before, "current moved");
    assert.equal(readCurrent(datastore(s.root))?.version, "1.0.0");
    assert.deepEqual(up.host.liveSettings(), oldSettings, "the host runs on the old settings");
    assert.equal(up.host.bootStatus()["settings-applied"], true, "rendered, so the host is usable");
    assert.ok(up.logs.some((l) => l.includes("migration FAILED")));

    // The API reports it, and the health gate fails with a "migration" check.
    const server = createApiServer(up.host.services, quiet);
    const socket = join(s.dir, "api.sock");
    await listenOnSocket(server, socket);
    try {
      const r = await call(socket, "GET", "/boot-status");
      assert.equal(r.status, 200);
      assert.equal((r.json() as { migration: { state: string } }).migration.state, "failed");
    } finally {
      await new Promise((r) => server.close(() => r(undefined)));
    }
    const health = await evaluateHealth({
      settingsApplied: true,
      migration: m,
      boot: { counted: true, cmdline: "" },
      containerdSocket: join(s.dir, "no.sock"),
      timeoutMs: 0,
    });
    assert.equal(health.state, "unhealthy");
    const check = health.checks.find((c) => c.name === "migration");
    assert.equal(check?.ok, false);
    assert.match(check?.detail ?? "", /b-throws/);
    // A done migration is a passing check.
    const ok = await evaluateHealth({ settingsApplied: true, migration: { state: "done", from: "1.0.0", to: "1.1.0" }, boot: { counted: true, cmdline: "" }, containerdSocket: join(s.dir, "no.sock"), timeoutMs: 0 });
    assert.equal(ok.checks.find((c) => c.name === "migration")?.ok, true);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test("output that is not a settings table, or does not fit the schema, fails the migration", async () => {
  const dir = tmp();
  for (const [body, why] of [
    [`export const forward = () => [1];`, /returned a list, not a settings table/],
    [`export const forward = (s) => ({ ...s, motd: 5 });`, /do not fit the dev settings of 1\.1\.0/],
    [`export const backward = (s) => s;`, /exports no forward function/],
  ] as const) {
    const s = await publish({ migrations: modules(join(dir, String(Math.random())), { "x.mjs": body }) });
    try {
      await fillCache(s);
      await startHost(s.root, "1.0.0");
      await assert.rejects(migrateDatastore({ root: s.root, toVersion: "1.1.0", variant: "dev", log: quiet }), (e: Error) => e instanceof MigrationError && e.module === "migrate_v1.1.0_x.mjs" && why.test(e.message));
      assert.equal(readCurrent(datastore(s.root))?.version, "1.0.0");
    } finally {
      rmSync(s.dir, { recursive: true, force: true });
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

test("no hop to the running version: a clear error, the store untouched", async () => {
  const s = await publish();
  try {
    await fillCache(s);
    await startHost(s.root, "1.0.0");
    await assert.rejects(
      migrateDatastore({ root: s.root, toVersion: "2.0.0", variant: "dev", log: quiet }),
      (e: Error) => e instanceof MigrationError && /from 1\.0\.0 to 2\.0\.0: no migration hop from 1\.1\.0 towards 2\.0\.0/.test(e.message),
    );
    assert.equal(readCurrent(datastore(s.root))?.version, "1.0.0");
    // No cache at all (the update was never prepared): the error names the missing file.
    rmSync(s.cache, { recursive: true });
    await assert.rejects(migrateDatastore({ root: s.root, toVersion: "1.1.0", variant: "dev", log: quiet }), /metadata\/root\.json is missing/);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

// ---- kill -9 at every fault point of the flip ----

const MIGRATOR = pathToFileURL(resolve(packageRoot(), "dist/src/migrations/migrator.js")).href;
const WORKER = `
import { migrateDatastore } from ${JSON.stringify(MIGRATOR)};
const r = await migrateDatastore({ root: process.env.ROOT, toVersion: "1.1.0", variant: "dev", log: () => {} });
process.stdout.write(JSON.stringify(r));
`;

test("kill -9 at every fault point leaves the store wholly old or wholly new", async (t) => {
  const s = await publish();
  try {
    await fillCache(s);
    await startHost(s.root, "1.0.0");
    const base = datastore(s.root);
    const pristine = join(s.dir, "pristine");
    cpSync(base, pristine, { recursive: true, verbatimSymlinks: true });
    const OLD = readCurrent(base)!.settings;
    const POINTS: [string, "old" | "new"][] = [
      ["migrate:after-write", "old"],
      ["migrate:before-flip", "old"],
      ["migrate:after-flip", "new"],
      ["migrate:after-fsync", "new"],
    ];
    for (const [point, expect] of POINTS) {
      await t.test(point, async () => {
        rmSync(base, { recursive: true, force: true });
        cpSync(pristine, base, { recursive: true, verbatimSymlinks: true });
        const r = spawnSync(process.execPath, ["--input-type=module", "-e", WORKER], { env: { ...process.env, ROOT: s.root, CAISSON_FAULT: point }, encoding: "utf8", timeout: 20_000 });
        assert.equal(r.signal, "SIGKILL", `not killed at ${point}: status ${r.status}, ${r.stderr}`);
        const cur = readCurrent(base)!;
        if (expect === "old") {
          assert.equal(cur.version, "1.0.0");
          assert.deepEqual(cur.settings, OLD);
        } else {
          assert.equal(cur.version, "1.1.0");
          assert.equal(cur.settings.motd, "Welcome to Caisson 1.1!");
          assert.equal(sysctl(cur.settings), "600");
        }
        // The next boot finishes the job and tidies up.
        const again = await migrateDatastore({ root: s.root, toVersion: "1.1.0", variant: "dev", log: quiet });
        assert.equal(again === undefined, expect === "new");
        assert.equal(readCurrent(base)!.version, "1.1.0");
        assert.deepEqual(readdirSync(base).filter((f) => f.startsWith(".")), [], "leftovers of the crash remain");
        const { host } = await startHost(s.root, "1.1.0");
        assert.equal(host.liveSettings().motd, "Welcome to Caisson 1.1!");
      });
    }
    await t.test("control: no fault, the worker migrates", () => {
      rmSync(base, { recursive: true, force: true });
      cpSync(pristine, base, { recursive: true, verbatimSymlinks: true });
      const env: NodeJS.ProcessEnv = { ...process.env, ROOT: s.root };
      delete env.CAISSON_FAULT;
      const r = spawnSync(process.execPath, ["--input-type=module", "-e", WORKER], { env, encoding: "utf8", timeout: 20_000 });
      assert.equal(r.status, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { to: string }).to, "1.1.0");
    });
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});
