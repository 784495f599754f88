// The update repository: a TUF repository (root, targets, snapshot, timestamp; ed25519 keys;
// consistent snapshots) whose targets are the slot images, the migration modules and
// `manifest.json`, the update index (src/update/manifest.ts, which also holds the rules for
// changing it). Like Bottlerocket's pubsys/updata (how to use it: README.md, "Updates"): add an
// update with waves, pull a release back with max_version, re-sign before expiry, rotate the root
// keys. Signing and metadata are @tufjs/models'; this module only
// decides what goes in them.
//
// On disk (DIR):
//   keys/                    private keys (0700; files 0600), keys/retired/ after a rotation
//   repo.json                the expiry policy (not published)
//   repository/metadata/     N.root.json, root.json, N.targets.json, N.snapshot.json, timestamp.json
//   repository/targets/      <sha256>.<target name>; old versions kept (clients mid-download)
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { Key, Metadata, MetadataKind, MetaFile, Root, Snapshot, TargetFile, Targets, Timestamp } from "@tufjs/models";
import { createHash } from "node:crypto";
import { readBuildRecord, type BuildRecord, type SlotFile } from "../image/build.js";
import { addHop, addUpdate as addToManifest, checkAddable, hopKey, parseManifest, previousVersion, serializeManifest, setCeiling, targetName, type Manifest, type Update, type UpdateImages } from "../update/manifest.js";
import { parseWavePolicy, rfc3339, wavesFromPolicy, type WavePolicy } from "../update/waves.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { generateKey, loadKey, retireKey, saveKey, signer, tufKey, type StoredKey } from "./signing-keys.js";
import { assertSemver, compareVersions } from "../update/version.js";
import { checkTargetName, publishBytes, publishFile, stderrProgress, type ProgressSink } from "./targets.js";
import { acquirePidLock, LockedError } from "../fsutil/pidfile.js";
import { namedWavePolicy, WAVE_POLICY_NAMES, type WavePolicyName } from "./policies.js";

export { serveRepository, type ServedRepository } from "./serve.js";

export type RoleName = "root" | "targets" | "snapshot" | "timestamp";
const ROLES: RoleName[] = ["root", "targets", "snapshot", "timestamp"];
export type Expiries = Partial<Record<RoleName, number>>;

/** Bottlerocket's pubsys policy (2w-2w-1w) plus a year for the (offline) root. */
const DEFAULT_EXPIRES: Record<RoleName, number> = {
  root: 365 * 86400,
  targets: 14 * 86400,
  snapshot: 14 * 86400,
  timestamp: 7 * 86400,
};

const SPEC_VERSION = "1.0.31";
const MANIFEST_TARGET = "manifest.json";

export const repoPaths = (dir: string) => ({
  keys: join(dir, "keys"),
  config: join(dir, "repo.json"),
  published: join(dir, "repository"),
  metadata: join(dir, "repository", "metadata"),
  targets: join(dir, "repository", "targets"),
  /** The trust anchor to ship in images (updatePaths.trustedRoot). */
  rootJson: join(dir, "repository", "metadata", "root.json"),
});

interface RepoConfig {
  expires: Record<RoleName, number>;
}

interface State {
  root: Metadata<Root>;
  targets: Metadata<Targets>;
  snapshot: Metadata<Snapshot>;
  timestamp: Metadata<Timestamp>;
}

// ---------------------------------------------------------------------------------------------
// Loading and writing metadata

/** @tufjs/models' JSON object type (not exported by name). */
type JSONObject = Parameters<typeof Root.fromJSON>[0];
const readJson = (path: string): JSONObject => JSON.parse(readFileSync(path, "utf8")) as JSONObject;

/**
 * A Root from keys and per-role key ids/thresholds. Built through Root.fromJSON because
 * @tufjs/models does not export its Role class, and the JSON form is the spec's anyway.
 */
function makeRoot(o: { version: number; expires: string; keys: Record<string, Key>; roles: Record<RoleName, { keyids: string[]; threshold: number }> }): Root {
  return Root.fromJSON({
    _type: "root",
    spec_version: SPEC_VERSION,
    version: o.version,
    expires: o.expires,
    consistent_snapshot: true,
    keys: Object.fromEntries(Object.entries(o.keys).map(([id, k]) => [id, k.toJSON()])),
    roles: o.roles,
  });
}

function assertRepo(dir: string): void {
  if (!existsSync(join(repoPaths(dir).metadata, "timestamp.json")) || !existsSync(repoPaths(dir).config)) {
    throw new Error(`${dir} is not an update repository (no repo.json or repository/metadata/timestamp.json; run \`caisson repo init ${dir}\`)`);
  }
}

function loadState(dir: string): State {
  assertRepo(dir);
  const m = repoPaths(dir).metadata;
  const root = Metadata.fromJSON(MetadataKind.Root, readJson(join(m, "root.json")));
  const timestamp = Metadata.fromJSON(MetadataKind.Timestamp, readJson(join(m, "timestamp.json")));
  const snapshot = Metadata.fromJSON(MetadataKind.Snapshot, readJson(join(m, `${timestamp.signed.snapshotMeta.version}.snapshot.json`)));
  const targetsMeta = snapshot.signed.meta["targets.json"];
  if (!targetsMeta) throw new Error(`snapshot ${snapshot.signed.version} lists no targets.json`);
  const targets = Metadata.fromJSON(MetadataKind.Targets, readJson(join(m, `${targetsMeta.version}.targets.json`)));
  return { root, targets, snapshot, timestamp };
}

function loadConfig(dir: string): RepoConfig {
  const c = readJson(repoPaths(dir).config) as Partial<RepoConfig>;
  return { expires: { ...DEFAULT_EXPIRES, ...(c.expires ?? {}) } };
}

const expiry = (now: Date, seconds: number) => rfc3339(new Date(now.getTime() + seconds * 1000));

function roleKeys(dir: string, root: Root, role: RoleName): StoredKey[] {
  const r = root.roles[role];
  if (!r) throw new Error(`root has no ${role} role`);
  const keys = r.keyIDs.map((id) => loadKey(dir, id));
  if (keys.length < r.threshold) throw new Error(`only ${keys.length} of the ${r.threshold} ${role} keys needed to sign are available`);
  return keys;
}

function signWith<T extends Root | Targets | Snapshot | Timestamp>(md: Metadata<T>, keys: StoredKey[]): Metadata<T> {
  for (const k of keys) md.sign(signer(k), true);
  return md;
}

/** The bytes clients hash: metadata exactly as written (compact would do; indented is readable). */
const serialize = (md: Metadata<Root | Targets | Snapshot | Timestamp>) => Buffer.from(JSON.stringify(md.toJSON(), null, 2) + "\n");

const metaFileFor = (version: number, bytes: Buffer) =>
  new MetaFile({ version, length: bytes.length, hashes: { sha256: createHash("sha256").update(bytes).digest("hex") } });

function writeRoot(dir: string, root: Metadata<Root>): void {
  const bytes = serialize(root);
  const m = repoPaths(dir).metadata;
  writeFileAtomic(join(m, `${root.signed.version}.root.json`), bytes);
  writeFileAtomic(join(m, "root.json"), bytes);
}

/**
 * Sign and write a new snapshot and timestamp (and targets, when given), in the order that keeps
 * the published repository consistent at every instant: the versioned files first, timestamp.json
 * (the one unversioned entry point) last, atomically.
 */
function publishMetadata(dir: string, st: State, now: Date, expires: Record<RoleName, number>, newTargets?: Targets): State {
  const m = repoPaths(dir).metadata;
  let targets = st.targets;
  let targetsBytes: Buffer;
  if (newTargets) {
    targets = signWith(new Metadata(newTargets), roleKeys(dir, st.root.signed, "targets"));
    targetsBytes = serialize(targets);
    writeFileAtomic(join(m, `${targets.signed.version}.targets.json`), targetsBytes);
  } else {
    targetsBytes = readFileSync(join(m, `${targets.signed.version}.targets.json`));
  }
  const snapshot = signWith(
    new Metadata(
      new Snapshot({
        version: st.snapshot.signed.version + 1,
        specVersion: SPEC_VERSION,
        expires: expiry(now, expires.snapshot),
        meta: { "targets.json": metaFileFor(targets.signed.version, targetsBytes) },
      }),
    ),
    roleKeys(dir, st.root.signed, "snapshot"),
  );
  const snapshotBytes = serialize(snapshot);
  writeFileAtomic(join(m, `${snapshot.signed.version}.snapshot.json`), snapshotBytes);
  const timestamp = signWith(
    new Metadata(
      new Timestamp({
        version: st.timestamp.signed.version + 1,
        specVersion: SPEC_VERSION,
        expires: expiry(now, expires.timestamp),
        snapshotMeta: metaFileFor(snapshot.signed.version, snapshotBytes),
      }),
    ),
    roleKeys(dir, st.root.signed, "timestamp"),
  );
  writeFileAtomic(join(m, "timestamp.json"), serialize(timestamp));
  return { root: st.root, targets, snapshot, timestamp };
}

/**
 * One writer at a time: a lock file beside the repository naming its holder, removed when done. A
 * lock left by a killed run (its process is gone) is taken over, and that run's half-copied
 * targets (`.incoming-*`, `*.tmp-<pid>`) are removed: while the lock is held no other writer has any.
 */
async function withLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const lock = join(dir, ".lock");
  let release: () => void;
  try {
    release = acquirePidLock(lock);
  } catch (e) {
    if (e instanceof LockedError) throw new Error(`${dir} is locked by another \`caisson repo\` (${lock}, pid ${e.pid}, still running)`);
    throw e;
  }
  try {
    removeIncomingDebris(repoPaths(dir).targets);
    return await fn();
  } finally {
    release();
  }
}

/** Temporary files of target publishing (src/repo/targets.ts) left by a killed run. */
function removeIncomingDebris(targetsDir: string): void {
  if (!existsSync(targetsDir)) return;
  for (const f of readdirSync(targetsDir)) {
    if (f.startsWith(".incoming-") || /\.tmp-\d+$/.test(f)) rmSync(join(targetsDir, f), { force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// init

export interface InitOptions {
  rootKeys?: number;
  rootThreshold?: number;
  now?: Date;
  expires?: Expiries;
}

function checkKeyCount(keys: number, threshold: number): void {
  if (!Number.isInteger(keys) || keys < 1) throw new Error(`root keys must be a positive integer, got ${keys}`);
  if (!Number.isInteger(threshold) || threshold < 1 || threshold > keys) {
    throw new Error(`root threshold must be an integer in 1..${keys} (the number of root keys), got ${threshold}`);
  }
}

export async function initRepository(dir: string, opts: InitOptions = {}): Promise<RepositoryInfo> {
  dir = resolve(dir);
  const p = repoPaths(dir);
  if (existsSync(p.config) || existsSync(p.published) || existsSync(p.keys)) {
    throw new Error(`${dir} already holds an update repository (or its keys); refusing to overwrite it`);
  }
  const rootKeys = opts.rootKeys ?? 1;
  const rootThreshold = opts.rootThreshold ?? 1;
  checkKeyCount(rootKeys, rootThreshold);
  const now = opts.now ?? new Date();
  const expires = { ...DEFAULT_EXPIRES, ...(opts.expires ?? {}) };
  for (const r of ROLES) if (!(expires[r] > 0)) throw new Error(`expiry of ${r} must be a positive number of seconds`);

  mkdirSync(dir, { recursive: true });
  mkdirSync(p.metadata, { recursive: true });
  mkdirSync(p.targets, { recursive: true });
  const keys: Record<RoleName, StoredKey[]> = {
    root: Array.from({ length: rootKeys }, () => generateKey("root", now)),
    targets: [generateKey("targets", now)],
    snapshot: [generateKey("snapshot", now)],
    timestamp: [generateKey("timestamp", now)],
  };
  for (const r of ROLES) for (const k of keys[r]) saveKey(dir, k);
  writeFileSync(p.config, JSON.stringify({ expires }, null, 2) + "\n");

  const root = makeRoot({
    version: 1,
    expires: expiry(now, expires.root),
    keys: Object.fromEntries(ROLES.flatMap((r) => keys[r].map((k) => [k.keyid, tufKey(k)]))),
    roles: Object.fromEntries(ROLES.map((r) => [r, { keyids: keys[r].map((k) => k.keyid), threshold: r === "root" ? rootThreshold : 1 }])) as Record<
      RoleName,
      { keyids: string[]; threshold: number }
    >,
  });
  const rootMd = signWith(new Metadata(root), keys.root);
  writeRoot(dir, rootMd);

  // Version 0 placeholders: publishMetadata bumps them to version 1.
  const empty = (): State => ({
    root: rootMd,
    targets: new Metadata(new Targets({ version: 0, specVersion: SPEC_VERSION, expires: expiry(now, 0) })),
    snapshot: new Metadata(new Snapshot({ version: 0, specVersion: SPEC_VERSION, expires: expiry(now, 0) })),
    timestamp: new Metadata(new Timestamp({ version: 0, specVersion: SPEC_VERSION, expires: expiry(now, 0) })),
  });
  const manifest: Manifest = { updates: [], migrations: {} };
  const t = publishBytes(p.targets, MANIFEST_TARGET, serializeManifest(manifest));
  const targets = new Targets({ version: 1, specVersion: SPEC_VERSION, expires: expiry(now, expires.targets) });
  targets.addTarget(targetFile(t));
  publishMetadata(dir, empty(), now, expires, targets);
  return readRepository(dir);
}

// ---------------------------------------------------------------------------------------------
// Manifest helpers

const targetFile = (t: { name: string; length: number; sha256: string }) =>
  new TargetFile({ path: t.name, length: t.length, hashes: { sha256: t.sha256 } });

function targetPath(dir: string, targets: Targets, name: string): string {
  const t = targets.targets[name];
  const sha = t?.hashes.sha256;
  if (!t || !sha) throw new Error(`target ${name} is not in targets.json (version ${targets.version})`);
  return join(repoPaths(dir).targets, `${sha}.${name}`);
}

function loadManifest(dir: string, targets: Targets): Manifest {
  const path = targetPath(dir, targets, MANIFEST_TARGET);
  try {
    return parseManifest(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** A copy of targets with the version bumped, new expiry, and these targets added or replaced. */
function nextTargets(cur: Targets, now: Date, seconds: number, add: TargetFile[]): Targets {
  const t = new Targets({
    version: cur.version + 1,
    specVersion: SPEC_VERSION,
    expires: expiry(now, seconds),
    targets: { ...cur.targets },
    ...(cur.delegations ? { delegations: cur.delegations } : {}),
  });
  for (const f of add) t.addTarget(f);
  return t;
}

// ---------------------------------------------------------------------------------------------
// addUpdate

export interface AddUpdateOptions {
  buildDir: string;
  /** Default: build.json's version. */
  version?: string;
  /** A policy, a shipped policy's name, "none", or a path to a TOML policy. Default "default". */
  waves?: WavePolicy | WavePolicyName | "none" | string;
  maxVersion?: string;
  /** Every *.mjs here becomes a migration target for this version. */
  migrationsDir?: string;
  /** The hop's lower version. Default: the highest version of this variant below `version`. */
  from?: string;
  /** Replace an already published update of the same variant, arch and version. */
  replace?: boolean;
  now?: Date;
  progress?: ProgressSink;
}

export interface AddUpdateResult {
  update: Update;
  /** The hop added, if any, and its migrations. */
  hop?: { key: string; migrations: string[] };
  targets: string[];
  versions: Record<Exclude<RoleName, "root">, number>;
}

/** Slot file of build.json for each manifest image part (the manifest's `hash` is the verity tree). */
const BUILD_FILES: Record<keyof UpdateImages, SlotFile> = { root: "root", hash: "verity", kernel: "vmlinuz", initrd: "initrd" };

function readBuild(buildDir: string): BuildRecord {
  const path = join(buildDir, "build.json");
  if (!existsSync(path)) throw new Error(`${path} not found: --image must be the output directory of \`caisson build --out DIR\``);
  return readBuildRecord(buildDir);
}

function resolveWaves(w: AddUpdateOptions["waves"], now: Date): Record<string, string> {
  if (w === undefined) return wavesFromPolicy(namedWavePolicy("default"), now);
  if (typeof w === "object") return wavesFromPolicy(w, now);
  if (w === "none") return {};
  if ((WAVE_POLICY_NAMES as readonly string[]).includes(w)) return wavesFromPolicy(namedWavePolicy(w as WavePolicyName), now);
  if (!existsSync(w)) throw new Error(`waves "${w}" is neither a policy name (${WAVE_POLICY_NAMES.join(", ")}, none) nor an existing TOML file`);
  try {
    return wavesFromPolicy(parseWavePolicy(readFileSync(w, "utf8")), now);
  } catch (e) {
    throw new Error(`${w}: ${(e as Error).message}`);
  }
}

export async function addUpdate(dir: string, o: AddUpdateOptions): Promise<AddUpdateResult> {
  dir = resolve(dir);
  assertRepo(dir);
  return withLock(dir, async () => {
    const now = o.now ?? new Date();
    const progress = o.progress ?? stderrProgress;
    const build = readBuild(resolve(o.buildDir));
    const version = o.version ?? build.version;
    assertSemver(version);
    if (o.maxVersion !== undefined) assertSemver(o.maxVersion, "max version");
    if (o.from !== undefined) assertSemver(o.from, "--from version");
    if (o.from !== undefined && compareVersions(o.from, version) >= 0) throw new Error(`--from ${o.from} must be below the new version ${version}`);
    const { variant, arch } = build;
    const waves = resolveWaves(o.waves, now);

    const config = loadConfig(dir);
    const st = loadState(dir);
    const manifest = loadManifest(dir, st.targets.signed);
    checkAddable(manifest, { variant, arch, version }, o);

    const migrationFiles = o.migrationsDir ? listMigrations(o.migrationsDir) : [];
    const from = o.from ?? previousVersion(manifest, variant, version);
    if (migrationFiles.length && from === undefined) {
      throw new Error(`migrations given but no lower version of ${variant} is published to migrate from; pass --from`);
    }

    // Every name checked before anything is copied: a bad migration file name fails the run
    // before the images (hundreds of MB) are copied into the repository.
    const migrationNames = migrationFiles.map((file) => targetName.migration(version, basename(file, ".mjs")));
    for (const name of migrationNames) checkTargetName(name);

    // Copy the slot files (the long part) before touching any metadata.
    const published = [];
    const images = {} as UpdateImages;
    for (const part of Object.keys(BUILD_FILES) as (keyof UpdateImages)[]) {
      const name = targetName.image(variant, arch, version, part);
      images[part] = name;
      published.push(await publishFile(repoPaths(dir).targets, name, join(resolve(o.buildDir), build.files[BUILD_FILES[part]]!.path), progress));
    }
    for (const [i, file] of migrationFiles.entries()) {
      published.push(await publishFile(repoPaths(dir).targets, migrationNames[i]!, file, progress));
    }

    // The ceiling rule (max_version) is the manifest's: src/update/manifest.ts, addUpdate.
    const added = addToManifest(
      manifest,
      {
        variant,
        arch,
        version,
        ...(o.maxVersion !== undefined ? { max_version: o.maxVersion } : {}),
        waves,
        images,
        roothash: build.roothash,
        "kernel-parameters": build["kernel-parameters"],
        "boot-tries": build["boot-tries"],
      },
      { replace: o.replace },
    );
    const { update } = added;
    let next = added.manifest;
    let hop: AddUpdateResult["hop"];
    if (from !== undefined) {
      hop = { key: hopKey(from, version), migrations: migrationNames };
      next = addHop(next, from, version, migrationNames);
    }
    published.push(publishBytes(repoPaths(dir).targets, MANIFEST_TARGET, serializeManifest(next)));

    const targets = nextTargets(st.targets.signed, now, config.expires.targets, published.map(targetFile));
    const signed = publishMetadata(dir, st, now, config.expires, targets);
    return {
      update,
      ...(hop ? { hop } : {}),
      targets: published.map((t) => t.name),
      versions: { targets: signed.targets.signed.version, snapshot: signed.snapshot.signed.version, timestamp: signed.timestamp.signed.version },
    };
  });
}

function listMigrations(dir: string): string[] {
  if (!existsSync(dir)) throw new Error(`migrations directory ${dir} does not exist`);
  return readdirSync(dir)
    .filter((f) => f.endsWith(".mjs"))
    .sort()
    .map((f) => join(resolve(dir), f));
}

// ---------------------------------------------------------------------------------------------
// setMaxVersion

export interface SetMaxVersionOptions {
  variant: string;
  arch?: string;
  maxVersion: string;
  now?: Date;
}

/** Set the ceiling of every update of a variant (and arch): lowering it pulls a bad release back. */
export async function setMaxVersion(dir: string, o: SetMaxVersionOptions): Promise<{ updated: number }> {
  dir = resolve(dir);
  assertRepo(dir);
  assertSemver(o.maxVersion, "max version");
  return withLock(dir, () => {
    const now = o.now ?? new Date();
    const config = loadConfig(dir);
    const st = loadState(dir);
    const { manifest, updated } = setCeiling(loadManifest(dir, st.targets.signed), o);
    const t = publishBytes(repoPaths(dir).targets, MANIFEST_TARGET, serializeManifest(manifest));
    publishMetadata(dir, st, now, config.expires, nextTargets(st.targets.signed, now, config.expires.targets, [targetFile(t)]));
    return { updated };
  });
}

// ---------------------------------------------------------------------------------------------
// refresh

export interface RefreshOptions {
  now?: Date;
  /** New expiry policy (seconds); saved for later operations too. */
  expires?: Expiries;
}

/**
 * Re-sign timestamp and snapshot with new versions and expiries, and targets as well when it
 * would expire before the new snapshot (a snapshot cannot make an expired targets valid).
 * The root needs its offline keys: only its expiry is reported (rotateRoot re-signs it).
 */
export async function refreshRepository(dir: string, o: RefreshOptions = {}): Promise<RepositoryInfo & { resignedTargets: boolean }> {
  dir = resolve(dir);
  assertRepo(dir);
  return withLock(dir, () => {
    const now = o.now ?? new Date();
    const config = loadConfig(dir);
    if (o.expires) {
      config.expires = { ...config.expires, ...o.expires };
      writeFileSync(repoPaths(dir).config, JSON.stringify(config, null, 2) + "\n");
    }
    const st = loadState(dir);
    const snapshotExpires = now.getTime() + config.expires.snapshot * 1000;
    const resignTargets = Date.parse(st.targets.signed.expires) < snapshotExpires;
    publishMetadata(dir, st, now, config.expires, resignTargets ? nextTargets(st.targets.signed, now, config.expires.targets, []) : undefined);
    return { ...readRepository(dir), resignedTargets: resignTargets };
  });
}

// ---------------------------------------------------------------------------------------------
// rotateRoot

export interface RotateRootOptions {
  now?: Date;
  rootKeys?: number;
  rootThreshold?: number;
}

/**
 * TUF root rotation: root N+1 lists new root keys and is signed both by a threshold of root N's
 * keys (so clients trusting N accept it) and by the new keys (so it satisfies its own threshold).
 * The old root keys move to keys/retired/.
 */
export async function rotateRoot(dir: string, o: RotateRootOptions = {}): Promise<RepositoryInfo & { retired: string[] }> {
  dir = resolve(dir);
  assertRepo(dir);
  return withLock(dir, () => {
    const now = o.now ?? new Date();
    const config = loadConfig(dir);
    const st = loadState(dir);
    const old = st.root.signed;
    const oldRole = old.roles.root!;
    const count = o.rootKeys ?? oldRole.keyIDs.length;
    const threshold = o.rootThreshold ?? Math.min(oldRole.threshold, count);
    checkKeyCount(count, threshold);
    const oldKeys = roleKeys(dir, old, "root");
    const newKeys = Array.from({ length: count }, () => generateKey("root", now));

    // Other roles keep their keys; only root's key list changes.
    const stillUsed = new Set(Object.entries(old.roles).filter(([r]) => r !== "root").flatMap(([, role]) => role.keyIDs));
    const keys = Object.fromEntries(Object.entries(old.keys).filter(([id]) => stillUsed.has(id)));
    for (const k of newKeys) keys[k.keyid] = tufKey(k);
    const roles = Object.fromEntries(
      ROLES.map((r) => [r, r === "root" ? { keyids: newKeys.map((k) => k.keyid), threshold } : { keyids: old.roles[r]!.keyIDs, threshold: old.roles[r]!.threshold }]),
    ) as Record<RoleName, { keyids: string[]; threshold: number }>;
    const root = makeRoot({ version: old.version + 1, expires: expiry(now, config.expires.root), keys, roles });
    const md = signWith(new Metadata(root), [...oldKeys, ...newKeys]);
    // Save the new keys before publishing a root that needs them.
    for (const k of newKeys) saveKey(dir, k);
    writeRoot(dir, md);
    const retired = oldKeys.map((k) => k.keyid).filter((id) => !stillUsed.has(id));
    for (const id of retired) retireKey(dir, id);
    return { ...readRepository(dir), retired };
  });
}

// ---------------------------------------------------------------------------------------------
// readRepository

export interface RoleInfo {
  version: number;
  expires: string;
  keyids: string[];
  threshold: number;
}

export interface RepositoryInfo {
  dir: string;
  roles: Record<RoleName, RoleInfo>;
  manifest: Manifest;
  targets: { name: string; length: number; sha256: string }[];
  /** Root metadata to ship in images (updatePaths.trustedRoot). */
  rootJson: string;
  metadataDir: string;
  targetsDir: string;
}

export function readRepository(dir: string): RepositoryInfo {
  dir = resolve(dir);
  const st = loadState(dir);
  const role = (name: RoleName, md: Metadata<Root | Targets | Snapshot | Timestamp>): RoleInfo => ({
    version: md.signed.version,
    expires: md.signed.expires,
    keyids: st.root.signed.roles[name]?.keyIDs ?? [],
    threshold: st.root.signed.roles[name]?.threshold ?? 0,
  });
  const p = repoPaths(dir);
  return {
    dir,
    roles: { root: role("root", st.root), targets: role("targets", st.targets), snapshot: role("snapshot", st.snapshot), timestamp: role("timestamp", st.timestamp) },
    manifest: loadManifest(dir, st.targets.signed),
    targets: Object.values(st.targets.signed.targets).map((t) => ({ name: t.path, length: t.length, sha256: t.hashes.sha256 ?? "" })),
    rootJson: p.rootJson,
    metadataDir: p.metadata,
    targetsDir: p.targets,
  };
}
