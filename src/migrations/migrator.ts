// The migrator (reference §5.6): at boot, before the host opens its datastore, bring the datastore
// to the running image's version by running the signed migration modules the update agent cached.
//
// The old data directory is never written: the migrated settings go into a NEW directory
// `v<to>_<rand>` (built under a dot-temp name, renamed into place, fsynced), and only then is
// `current` flipped by renaming a fresh symlink over it. A crash at any instant leaves `current`
// pointing at a whole old or a whole new directory; a failed migration leaves it untouched. The
// newest few old directories are kept for inspection (never booted against: going back to an
// older version runs the backward migrations into a new directory too); the rest are removed.
import { existsSync, lstatSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileAtomic, fsyncDir } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { isObject, type JsonObject } from "../settings/keys.js";
import { validateSettings } from "../settings/model.js";
import type { Variant } from "../settings/schema.js";
import { findMigrations, updatePaths, type PlannedMigration } from "../update/manifest.js";
import { helpers } from "./helpers.js";
import { verifyCache } from "./verify.js";
import { readLiveWithFallback } from "../datastore/store.js";

export class MigrationError extends Error {
  constructor(
    message: string,
    readonly from: string,
    readonly to: string,
    /** The module that failed, if one did. */
    readonly module?: string,
  ) {
    super(message);
  }
}

export interface MigrationResult {
  from: string;
  to: string;
  /** Modules run, as `<target name> (forward|backward)`. */
  ran: string[];
}

/** Old data directories kept besides the current one. */
const KEEP_OLD = 2;
const DATA_DIR = /^v([^_/]+)_[0-9a-f]+$/;

/** The version and settings `current` points at, after checking the link's structure. */
export function readCurrent(base: string): { dir: string; version: string; settings: JsonObject } | undefined {
  const current = join(base, "current");
  let st;
  try {
    st = lstatSync(current);
  } catch {
    return undefined; // no datastore yet: the host creates it at its own version
  }
  if (!st.isSymbolicLink()) throw new Error(`${current} is not a symbolic link`);
  const target = readlinkSync(current);
  const m = DATA_DIR.exec(target);
  if (!m) throw new Error(`${current} points at '${target}', not at a v<version>_<id> directory beside it`);
  const dir = join(base, target);
  // An unusable live.json: nothing to migrate at the same version (the datastore opens on its last
  // good copy and says so); across versions, the migration fails with the reason (the host starts
  // on the old store, degraded).
  const { live, opened } = readLiveWithFallback(dir);
  if (opened.state !== "ok") throw new Error(`${dir}/live.json cannot be read (${opened.error}): not migrating it`);
  const version = live["datastore-version"];
  if (version !== m[1]) throw new Error(`${dir}/live.json holds datastore version ${version}, but its directory is named for ${m[1]}`);
  if (!isObject(live.settings)) throw new Error(`${dir}/live.json has no settings table`);
  return { dir, version, settings: live.settings };
}

/**
 * Migrate the datastore under `root` to `toVersion`. undefined: nothing to do (already there, or
 * no datastore yet). Throws MigrationError, with `current` untouched, when anything fails.
 */
export async function migrateDatastore(o: { root: string; toVersion: string; variant: Variant; log: (s: string) => void }): Promise<MigrationResult | undefined> {
  const base = join(o.root, updatePaths.datastore);
  removeLeftovers(base);
  let cur;
  try {
    // Already at this version (as the link's name says): nothing to read, nothing to do.
    const link = join(base, "current");
    if (lstatSync(link, { throwIfNoEntry: false })?.isSymbolicLink() && DATA_DIR.exec(readlinkSync(link))?.[1] === o.toVersion) return undefined;
    cur = readCurrent(base);
  } catch (e) {
    throw new MigrationError(`datastore: ${(e as Error).message}`, "?", o.toVersion);
  }
  if (!cur || cur.version === o.toVersion) return undefined;
  const { version: from } = cur;
  const to = o.toVersion;
  const fail = (msg: string, module?: string): never => {
    throw new MigrationError(`migrating the datastore from ${from} to ${to}: ${msg}`, from, to, module);
  };

  let plan: PlannedMigration[] = [];
  let modules: Map<string, Buffer>;
  try {
    const cache = await verifyCache(o.root, (manifest) => (plan = findMigrations(from, to, manifest)).map((p) => p.name));
    modules = cache.targets;
  } catch (e) {
    return fail((e as Error).message);
  }
  o.log(`migrating the datastore from ${from} to ${to}: ${plan.map((p) => `${p.name} (${p.direction})`).join(", ") || "no migration needed"}`);

  let settings = structuredClone(cur.settings);
  const ran: string[] = [];
  for (const p of plan) {
    const step = `${p.name} (${p.direction})`;
    let out: unknown;
    try {
      const mod = await importVerified(modules.get(p.name)!);
      const fn = mod[p.direction];
      if (typeof fn !== "function") throw new Error(`it exports no ${p.direction} function`);
      // A copy: a module that mutates its argument cannot reach the tree we would fall back to.
      out = await (fn as (s: JsonObject, h: typeof helpers) => unknown)(structuredClone(settings), helpers);
      if (!isObject(out)) throw new Error(`${p.direction} returned ${out === null ? "null" : Array.isArray(out) ? "a list" : typeof out}, not a settings table`);
      out = JSON.parse(JSON.stringify(out)) as JsonObject; // only JSON survives in the store
    } catch (e) {
      return fail(`${step} failed: ${(e as Error).message}`, p.name);
    }
    settings = out as JsonObject;
    ran.push(step);
    o.log(`ran ${step}`);
  }
  try {
    validateSettings(o.variant, settings);
  } catch (e) {
    return fail(`the settings after ${ran.join(", ") || "copying"} do not fit the ${o.variant} settings of ${to}: ${(e as Error).message}`, plan[plan.length - 1]?.name);
  }

  flip(base, to, settings);
  o.log(`datastore now at ${to}; previous data kept in ${cur.dir}`);
  cleanUp(base);
  return { from, to, ran };
}

/**
 * Import a module from its verified bytes through a data: URL, so what runs is exactly what was
 * verified: importing a file path would read it again after the check (it could have changed in
 * between), and the module loader would resolve imports beside it. (Bottlerocket runs its
 * migration binaries from a sealed memfd for the same reason.)
 */
async function importVerified(bytes: Buffer): Promise<Record<string, unknown>> {
  return (await import(`data:text/javascript;base64,${bytes.toString("base64")}`)) as Record<string, unknown>;
}

/** Write the new data directory durably, then point `current` at it. */
function flip(base: string, version: string, settings: JsonObject): void {
  const name = `v${version}_${randomBytes(8).toString("hex")}`;
  const tmp = join(base, `.tmp-${name}`);
  mkdirSync(join(tmp, "pending"), { recursive: true, mode: 0o700 });
  const live = { "datastore-version": version, settings, "last-commit": null };
  writeFileAtomic(join(tmp, "live.json"), JSON.stringify(live), { durable: true, mode: 0o600 });
  fsyncDir(tmp); // the pending/ entry
  faultPoint("migrate:after-write");
  renameSync(tmp, join(base, name));
  fsyncDir(base);
  const link = join(base, `.current-${randomBytes(4).toString("hex")}`);
  symlinkSync(name, link);
  faultPoint("migrate:before-flip");
  renameSync(link, join(base, "current"));
  faultPoint("migrate:after-flip");
  fsyncDir(base);
  faultPoint("migrate:after-fsync");
}

/** What a crash in flip() may leave: a half-built directory, a spare symlink. */
function removeLeftovers(base: string): void {
  if (!existsSync(base)) return;
  for (const f of readdirSync(base)) if (f.startsWith(".tmp-") || f.startsWith(".current-")) rmSync(join(base, f), { recursive: true, force: true });
}

/** Keep the current directory and the KEEP_OLD newest others. */
function cleanUp(base: string): void {
  const current = readlinkSync(join(base, "current"));
  const old = readdirSync(base)
    .filter((f) => f !== current && DATA_DIR.test(f))
    .map((f) => ({ f, t: statSync(join(base, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of old.slice(KEEP_OLD)) rmSync(join(base, f), { recursive: true, force: true });
}
