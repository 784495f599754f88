// The update repository tool against a real TUF client (tuf-js' Updater, what the agent uses)
// over serveRepository: publish, verify, tamper, rotate, refresh, pull back, and the errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Updater } from "tuf-js";
import { fakeBuild } from "../helpers/fake-build.js";
import {
  addUpdate,
  initRepository,
  readRepository,
  refreshRepository,
  repoPaths,
  rotateRoot,
  serveRepository,
  setMaxVersion,
} from "../../src/repo/repository.js";
import { hopKey, targetName, type Manifest } from "../../src/update/manifest.js";

const T0 = new Date("2030-01-01T00:00:00Z");
const quiet = () => {};

/** A repository with 1.0.0 and 1.1.0 (two migrations) of variant dev. */
async function twoVersions() {
  const work = mkdtempSync(join(tmpdir(), "caisson-repo-"));
  const dir = join(work, "repo");
  await initRepository(dir, { now: T0 });
  const b1 = fakeBuild(join(work, "b1"), { version: "1.0.0" });
  const b2 = fakeBuild(join(work, "b2"), { version: "1.1.0" });
  const mig = join(work, "migrations");
  mkdirSync(mig);
  writeFileSync(join(mig, "b-second.mjs"), "export const forward = (s) => s;\n");
  writeFileSync(join(mig, "a-first.mjs"), "export const forward = (s) => s;\n");
  writeFileSync(join(mig, "notes.txt"), "not a migration\n");
  const r1 = await addUpdate(dir, { buildDir: join(work, "b1"), now: T0, progress: quiet });
  const r2 = await addUpdate(dir, { buildDir: join(work, "b2"), migrationsDir: mig, waves: "accelerated", now: T0, progress: quiet });
  return { work, dir, b1, b2, r1, r2 };
}

function client(work: string, dir: string, urls: { metadataUrl: string; targetsUrl: string }, rootFile = "1.root.json") {
  const c = mkdtempSync(join(work, "client-"));
  copyFileSync(join(repoPaths(dir).metadata, rootFile), join(c, "root.json"));
  mkdirSync(join(c, "targets"));
  return {
    dir: c,
    updater: new Updater({ metadataDir: c, metadataBaseUrl: urls.metadataUrl, targetBaseUrl: urls.targetsUrl, targetDir: join(c, "targets") }),
  };
}

// An Updater refreshes its top-level metadata once in its life (tuf-js refuses a second pass).
const refreshed = new WeakSet<Updater>();

async function fetchTarget(u: Updater, dir: string, name: string): Promise<Buffer> {
  if (!refreshed.has(u)) {
    await u.refresh();
    refreshed.add(u);
  }
  const info = await u.getTargetInfo(name);
  assert.ok(info, `${name} is a target`);
  const path = await u.downloadTarget(info, join(dir, "targets", name));
  return readFileSync(path);
}

test("init writes keys apart from the published tree, with private permissions", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "caisson-repo-")), "r");
  const info = await initRepository(dir, { rootKeys: 3, rootThreshold: 2, now: T0 });
  assert.equal(info.roles.root.keyids.length, 3);
  assert.equal(info.roles.root.threshold, 2);
  assert.equal(info.roles.timestamp.expires, "2030-01-08T00:00:00Z");
  assert.equal(info.roles.snapshot.expires, "2030-01-15T00:00:00Z");
  assert.equal(info.roles.targets.expires, "2030-01-15T00:00:00Z");
  assert.equal(info.roles.root.expires, "2031-01-01T00:00:00Z");
  assert.deepEqual(info.manifest, { updates: [], migrations: {} });
  assert.equal(statSync(repoPaths(dir).keys).mode & 0o777, 0o700);
  const keyFiles = readdirSync(repoPaths(dir).keys).filter((f) => f.endsWith(".json"));
  assert.equal(keyFiles.length, 6);
  for (const f of keyFiles) assert.equal(statSync(join(repoPaths(dir).keys, f)).mode & 0o777, 0o600);
  const published = JSON.stringify(readdirSync(repoPaths(dir).published, { recursive: true }));
  assert.doesNotMatch(published, /keys/);
  for (const f of ["1.root.json", "root.json", "1.targets.json", "1.snapshot.json", "timestamp.json"]) assert.ok(existsSync(join(repoPaths(dir).metadata, f)), f);
  const root = JSON.parse(readFileSync(info.rootJson, "utf8")) as { signed: { consistent_snapshot: boolean }; signatures: unknown[] };
  assert.equal(root.signed.consistent_snapshot, true);
  assert.equal(root.signatures.length, 3);
});

test("add: manifest entries, max_version, waves, migrations hop and targets", async () => {
  const { dir, b1, b2, r1, r2 } = await twoVersions();
  const { manifest, targets } = readRepository(dir);
  assert.equal(r1.hop, undefined, "no lower version: no hop");
  assert.deepEqual(r2.hop, { key: hopKey("1.0.0", "1.1.0"), migrations: ["migrate_v1.1.0_a-first.mjs", "migrate_v1.1.0_b-second.mjs"] });
  assert.deepEqual(manifest.migrations, { "(1.0.0, 1.1.0)": ["migrate_v1.1.0_a-first.mjs", "migrate_v1.1.0_b-second.mjs"] });
  assert.deepEqual(manifest.updates.map((u) => [u.version, u.max_version]), [["1.1.0", "1.1.0"], ["1.0.0", "1.1.0"]]);
  const u2 = manifest.updates[0]!;
  assert.equal(u2.roothash, b2.roothash);
  assert.deepEqual(u2["kernel-parameters"], b2["kernel-parameters"]);
  assert.equal(u2["boot-tries"], b2["boot-tries"]);
  assert.equal(u2.images.root, targetName.image("dev", "x86_64", "1.1.0", "root"));
  assert.deepEqual(Object.keys(u2.waves), ["0", "61", "245", "819", "1638"], "accelerated: 3%, 12%, 40%, 80%, 100%");
  assert.equal(u2.waves["0"], "2030-01-01T01:00:00Z");
  assert.deepEqual(Object.keys(manifest.updates[1]!.waves), ["0", "20", "102", "307", "819", "1228", "1843"], "default waves");
  const names = targets.map((t) => t.name).sort();
  for (const part of ["root", "hash", "kernel", "initrd"] as const) {
    assert.ok(names.includes(targetName.image("dev", "x86_64", "1.0.0", part)));
    assert.ok(names.includes(targetName.image("dev", "x86_64", "1.1.0", part)));
  }
  assert.ok(names.includes("manifest.json") && names.includes("migrate_v1.1.0_a-first.mjs"));
  assert.ok(!names.some((n) => n.includes("notes")));
  const root = targets.find((t) => t.name === manifest.updates[1]!.images.root)!;
  assert.equal(root.sha256, b1.files.root!.sha256);
  assert.ok(existsSync(join(repoPaths(dir).targets, `${root.sha256}.${root.name}`)));
  // Three targets versions (init, two adds); old consistent-snapshot files are kept.
  assert.equal(readRepository(dir).roles.targets.version, 3);
  for (const v of [1, 2, 3]) assert.ok(existsSync(join(repoPaths(dir).metadata, `${v}.targets.json`)));
  assert.equal(readdirSync(repoPaths(dir).targets).filter((f) => f.endsWith(".manifest.json")).length, 3);
});

test("add: --from, explicit max_version, replace, and a third version hops from the second", async () => {
  const { work, dir } = await twoVersions();
  fakeBuild(join(work, "b3"), { version: "1.2.0" });
  const r3 = await addUpdate(dir, { buildDir: join(work, "b3"), waves: "none", now: T0, progress: quiet });
  assert.deepEqual(r3.hop, { key: "(1.1.0, 1.2.0)", migrations: [] }, "every hop exists, even empty");
  assert.deepEqual(r3.update.waves, {});
  await assert.rejects(addUpdate(dir, { buildDir: join(work, "b3"), now: T0, progress: quiet }), /1\.2\.0 is already published; pass replace/);
  fakeBuild(join(work, "b3bis"), { version: "1.2.0" });
  const again = await addUpdate(dir, { buildDir: join(work, "b3bis"), replace: true, from: "1.0.0", maxVersion: "1.1.0", waves: "none", now: T0, progress: quiet });
  const m = readRepository(dir).manifest;
  assert.equal(m.updates.filter((u) => u.version === "1.2.0").length, 1);
  assert.equal(m.updates.find((u) => u.version === "1.2.0")!.roothash, again.update.roothash);
  assert.ok(m.migrations["(1.0.0, 1.2.0)"]);
  // An explicit max_version is applied to every update of the variant (Bottlerocket's add_update).
  assert.deepEqual(m.updates.map((u) => u.max_version), ["1.1.0", "1.1.0", "1.1.0"]);
});

test("tuf-js verifies manifest.json and an image target, and refuses a tampered target", async () => {
  const { work, dir, b1 } = await twoVersions();
  const s = await serveRepository(dir, 0);
  try {
    const c = client(work, dir, s);
    const manifest = JSON.parse((await fetchTarget(c.updater, c.dir, "manifest.json")).toString()) as Manifest;
    assert.deepEqual(manifest, readRepository(dir).manifest);
    const kernelName = manifest.updates[1]!.images.kernel;
    const kernel = await fetchTarget(c.updater, c.dir, kernelName);
    assert.deepEqual(kernel, readFileSync(join(work, "b1", b1.files.vmlinuz!.path)));

    // Swap the bytes of the published root image: same length, same name, wrong hash.
    const rootName = manifest.updates[1]!.images.root;
    const t = readRepository(dir).targets.find((x) => x.name === rootName)!;
    const file = join(repoPaths(dir).targets, `${t.sha256}.${rootName}`);
    const bytes = readFileSync(file);
    bytes[0] = bytes[0]! ^ 0xff;
    writeFileSync(file, bytes);
    const c2 = client(work, dir, s);
    await assert.rejects(fetchTarget(c2.updater, c2.dir, rootName), /hash|digest|mismatch|length/i);
  } finally {
    await s.close();
  }
});

test("a client holding the old root follows a root rotation", async () => {
  const { work, dir } = await twoVersions();
  const before = readRepository(dir).roles.root;
  const rotated = await rotateRoot(dir, { now: T0, rootKeys: 2, rootThreshold: 2 });
  assert.equal(rotated.roles.root.version, 2);
  assert.equal(rotated.roles.root.keyids.length, 2);
  assert.ok(before.keyids.every((id) => !rotated.roles.root.keyids.includes(id)));
  assert.deepEqual(rotated.retired, before.keyids);
  for (const id of before.keyids) assert.ok(existsSync(join(repoPaths(dir).keys, "retired", `${id}.json`)));
  // Other roles keep their keys and stay valid.
  const s = await serveRepository(dir, 0);
  try {
    const c = client(work, dir, s, "1.root.json");
    const m = JSON.parse((await fetchTarget(c.updater, c.dir, "manifest.json")).toString()) as Manifest;
    assert.equal(m.updates.length, 2);
    const trusted = JSON.parse(readFileSync(join(c.dir, "root.json"), "utf8")) as { signed: { version: number } };
    assert.equal(trusted.signed.version, 2, "the client stored the new root");
    // A second rotation: the chain 1 → 2 → 3 still works from 1.
    await rotateRoot(dir, { now: T0 });
    const c3 = client(work, dir, s, "1.root.json");
    await fetchTarget(c3.updater, c3.dir, "manifest.json");
    assert.equal((JSON.parse(readFileSync(join(c3.dir, "root.json"), "utf8")) as { signed: { version: number } }).signed.version, 3);
    // Publishing keeps working after rotations.
    fakeBuild(join(work, "b4"), { version: "2.0.0" });
    await addUpdate(dir, { buildDir: join(work, "b4"), now: T0, progress: quiet });
    const c4 = client(work, dir, s, "root.json");
    const m4 = JSON.parse((await fetchTarget(c4.updater, c4.dir, "manifest.json")).toString()) as Manifest;
    assert.equal(m4.updates[0]!.version, "2.0.0");
  } finally {
    await s.close();
  }
});

test("refresh extends expiries with new versions; the client accepts the result", async () => {
  const { work, dir } = await twoVersions();
  const before = readRepository(dir).roles;
  const later = new Date(T0.getTime() + 10 * 86400_000);
  const r = await refreshRepository(dir, { now: later });
  assert.equal(r.roles.timestamp.expires, "2030-01-18T00:00:00Z");
  assert.equal(r.roles.snapshot.expires, "2030-01-25T00:00:00Z");
  assert.equal(r.resignedTargets, true, "targets expired 2030-01-15, before the new snapshot");
  assert.equal(r.roles.targets.expires, "2030-01-25T00:00:00Z");
  assert.equal(r.roles.timestamp.version, before.timestamp.version + 1);
  assert.equal(r.roles.snapshot.version, before.snapshot.version + 1);
  assert.equal(r.roles.root.version, before.root.version);
  // Right away again: targets still outlive the snapshot, so only snapshot and timestamp change.
  const r2 = await refreshRepository(dir, { now: later, expires: { snapshot: 3 * 86400 } });
  assert.equal(r2.resignedTargets, false);
  assert.equal(r2.roles.targets.version, r.roles.targets.version);
  assert.equal(r2.roles.snapshot.expires, "2030-01-14T00:00:00Z");
  const s = await serveRepository(dir, 0);
  try {
    const c = client(work, dir, s);
    await fetchTarget(c.updater, c.dir, "manifest.json");
  } finally {
    await s.close();
  }
});

test("setMaxVersion pulls a release back for every update of the variant", async () => {
  const { work, dir } = await twoVersions();
  const r = await setMaxVersion(dir, { variant: "dev", maxVersion: "1.0.0", now: T0 });
  assert.equal(r.updated, 2);
  assert.deepEqual(readRepository(dir).manifest.updates.map((u) => u.max_version), ["1.0.0", "1.0.0"]);
  await assert.rejects(setMaxVersion(dir, { variant: "aws-k8s", maxVersion: "1.0.0" }), /no update of variant aws-k8s/);
  await assert.rejects(setMaxVersion(dir, { variant: "dev", maxVersion: "one" }), /"one" is not a semantic version/);
  const s = await serveRepository(dir, 0);
  try {
    const c = client(work, dir, s);
    const m = JSON.parse((await fetchTarget(c.updater, c.dir, "manifest.json")).toString()) as Manifest;
    assert.equal(m.updates[0]!.max_version, "1.0.0");
  } finally {
    await s.close();
  }
});

test("errors are clear", async () => {
  const { work, dir } = await twoVersions();
  await assert.rejects(initRepository(dir), /already holds an update repository.*refusing to overwrite/);
  await assert.rejects(addUpdate(dir, { buildDir: join(work, "nowhere"), progress: quiet }), /nowhere\/build\.json not found/);
  await assert.rejects(addUpdate(dir, { buildDir: join(work, "b1"), version: "1.3", progress: quiet }), /version "1\.3" is not a semantic version/);
  await assert.rejects(addUpdate(dir, { buildDir: join(work, "b1"), version: "1.3.0", maxVersion: "x", progress: quiet }), /max version "x"/);
  await assert.rejects(addUpdate(dir, { buildDir: join(work, "b1"), version: "1.3.0", waves: "sometimes", progress: quiet }), /neither a policy name/);
  const bad = join(work, "bad.toml");
  writeFileSync(bad, `[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 150\n`);
  await assert.rejects(addUpdate(dir, { buildDir: join(work, "b1"), version: "1.3.0", waves: bad, progress: quiet }), /bad\.toml: wave 1 .*1\.\.100/);
  await assert.rejects(addUpdate(join(work, "not-a-repo"), { buildDir: join(work, "b1"), progress: quiet }), /is not an update repository/);
  await assert.rejects(initRepository(join(work, "r2"), { rootKeys: 2, rootThreshold: 3 }), /threshold must be an integer in 1\.\.2/);
  // Nothing above changed the published repository.
  assert.equal(readRepository(dir).roles.targets.version, 3);
});

/** The pid of a process that has exited (spawned and reaped here). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("a lock left by a killed run does not block later runs, and its half-copied targets are removed", async () => {
  const { work, dir } = await twoVersions();
  const targets = repoPaths(dir).targets;
  const dead = deadPid();
  writeFileSync(join(dir, ".lock"), `${dead}\n`);
  writeFileSync(join(targets, `.incoming-${dead}-0a1b2c3d`), "half an image");
  writeFileSync(join(targets, `${"0".repeat(64)}.manifest.json.tmp-${dead}`), "{");
  fakeBuild(join(work, "b3"), { version: "1.2.0" });
  await addUpdate(dir, { buildDir: join(work, "b3"), now: T0, progress: quiet });
  assert.ok(!existsSync(join(dir, ".lock")), "the lock is released");
  assert.deepEqual(readdirSync(targets).filter((f) => f.startsWith(".") || f.includes(".tmp-")), [], "no debris left in targets/");
  assert.equal(readRepository(dir).manifest.updates.length, 3);

  // A lock held by a live process still refuses.
  const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
  try {
    writeFileSync(join(dir, ".lock"), `${holder.pid}\n`);
    await assert.rejects(setMaxVersion(dir, { variant: "dev", maxVersion: "1.2.0" }), new RegExp(`locked by another \`caisson repo\`.*pid ${holder.pid}, still running`));
    assert.ok(existsSync(join(dir, ".lock")), "a live holder's lock is left alone");
  } finally {
    holder.kill("SIGKILL");
  }
});

test("a bad migration file name fails add before anything is copied", async () => {
  const { work, dir } = await twoVersions();
  const before = readdirSync(repoPaths(dir).targets).sort();
  fakeBuild(join(work, "b3"), { version: "1.2.0" });
  const mig = join(work, "bad-migrations");
  mkdirSync(mig);
  writeFileSync(join(mig, "bad name!.mjs"), "export const forward = (s) => s;\n");
  await assert.rejects(addUpdate(dir, { buildDir: join(work, "b3"), migrationsDir: mig, now: T0, progress: quiet }), /target name "migrate_v1\.2\.0_bad name!\.mjs" must be a plain file name/);
  assert.deepEqual(readdirSync(repoPaths(dir).targets).sort(), before, "no image was copied into targets/");
});

function get(url: string, method = "GET"): Promise<{ status: number; length: string | undefined; body: string }> {
  return new Promise((ok, fail) => {
    const req = request(url, { method }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => ok({ status: res.statusCode ?? 0, length: res.headers["content-length"], body }));
    });
    req.on("error", fail);
    req.end();
  });
}

test("serveRepository: only metadata and targets, GET/HEAD, loopback", async () => {
  const { dir } = await twoVersions();
  const s = await serveRepository(dir, 0);
  try {
    const base = s.metadataUrl.replace(/\/metadata$/, "");
    const ts = await get(`${s.metadataUrl}/timestamp.json`);
    assert.equal(ts.status, 200);
    assert.equal(Number(ts.length), readFileSync(join(repoPaths(dir).metadata, "timestamp.json")).length);
    const head = await get(`${s.metadataUrl}/root.json`, "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.equal(Number(head.length), statSync(join(repoPaths(dir).metadata, "root.json")).size);
    for (const p of ["/metadata/nope.json", "/keys/", "/repo.json", "/metadata/../../repo.json", "/metadata/..%2f..%2frepo.json", "/targets/%2e%2e", "/", "/metadata/"]) {
      assert.equal((await get(base + p)).status, 404, p);
    }
    assert.equal((await get(`${s.metadataUrl}/timestamp.json`, "POST")).status, 405);
  } finally {
    await s.close();
  }
  await assert.rejects(serveRepository(dir, 0, "0.0.0.0"), /loopback only/);
});
