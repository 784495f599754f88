// The datastore's layout on disk, and its one owner: the store (store.ts) and the migrator
// (src/migrations/migrator.ts) both go through these functions, so the crash contract of the
// directory flip is written once.
//
//   <base>/current -> v<version>_<rand>     symlink: which data directory is the store
//   <base>/v<version>_<rand>/live.json      {"datastore-version", "settings", "last-commit"}
//   <base>/v<version>_<rand>/live.json.last-good   the live settings a commit replaced (store.ts)
//   <base>/v<version>_<rand>/pending/<tx>.json     pending transactions (store.ts)
//
// A data directory is built whole under a dot-temp name (`.tmp-v<version>_<rand>`: live.json
// written durably, the directory fsynced), renamed into place and the base fsynced; only then is
// `current` flipped, by renaming a fresh symlink (`.current-<rand>`) over it and fsyncing the
// base. The rename is the atomic step: a crash at any instant leaves `current` pointing at a whole
// old directory or a whole new one, and at most dot-named leftovers that removeLeftovers() clears.
import { existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync } from "node:fs";
import { basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileAtomic, fsyncDir } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { isObject, type JsonObject } from "../settings/keys.js";
import type { OpenState } from "../protocol/types.js";

export class DatastoreError extends Error {}

export interface LiveFile {
  "datastore-version": string;
  settings: JsonObject;
  "last-commit": { tx: string; id: string } | null;
}

export const LIVE = "live.json";
export const LAST_GOOD = "live.json.last-good";
export const CORRUPT = "live.json.corrupt";
const CURRENT = "current";
/** A data directory's name: v<version>_<hex>. */
const DATA_DIR = /^v([^_/]+)_[0-9a-f]+$/;

/** The version a data directory is named for; undefined for a name that is not one. */
const dataDirVersion = (name: string): string | undefined => DATA_DIR.exec(name)?.[1];

/** Read and check a live file: JSON with a settings table and a datastore version. Throws why not. */
function readLiveFile(path: string): LiveFile {
  const text = readFileSync(path, "utf8");
  let live: unknown;
  try {
    live = JSON.parse(text);
  } catch (e) {
    throw new DatastoreError(`${path} is not valid JSON (${text.length} bytes): ${(e as Error).message}`);
  }
  if (!isObject(live)) throw new DatastoreError(`${path} holds no JSON object`);
  if (!isObject(live.settings)) throw new DatastoreError(`${path} has no settings table`);
  if (typeof live["datastore-version"] !== "string") throw new DatastoreError(`${path} has no datastore version`);
  const last = live["last-commit"];
  if (last !== null && last !== undefined && !(isObject(last) && typeof last.tx === "string" && typeof last.id === "string")) {
    throw new DatastoreError(`${path} has a malformed last-commit`);
  }
  return { "datastore-version": live["datastore-version"], settings: live.settings as JsonObject, "last-commit": (last ?? null) as LiveFile["last-commit"] };
}

/**
 * The live file of the data directory `dir`, falling back to its last good copy, then to empty
 * settings at the version the directory is named for (v<version>_<id>).
 */
export function readLiveWithFallback(dir: string): { live: LiveFile; opened: OpenState } {
  const path = join(dir, LIVE);
  let error: string;
  try {
    return { live: readLiveFile(path), opened: { state: "ok" } };
  } catch (e) {
    error = (e as Error).message;
  }
  try {
    const live = readLiveFile(join(dir, LAST_GOOD));
    return { live: { ...live, "last-commit": null }, opened: { state: "last-good", error } };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") error += `; its last good copy too: ${(e as Error).message}`;
  }
  const version = /^v([^_/]+)_/.exec(basename(dir))?.[1] ?? "unknown";
  return { live: { "datastore-version": version, settings: {}, "last-commit": null }, opened: { state: "empty", error } };
}

/**
 * The data directory `current` points at, as the store opens it (no check of the link's shape);
 * undefined when there is none (no link, or a dangling one: createStore() replaces it).
 */
export function currentDir(base: string): string | undefined {
  const current = join(base, CURRENT);
  if (!existsSync(current)) return undefined;
  return join(base, readlinkSync(current));
}

/** The version `current`'s name says, without reading anything else; undefined if there is no such link. */
export function currentVersion(base: string): string | undefined {
  const st = lstatSync(join(base, CURRENT), { throwIfNoEntry: false });
  return st?.isSymbolicLink() ? dataDirVersion(readlinkSync(join(base, CURRENT))) : undefined;
}

export interface Current {
  /** The data directory. */
  dir: string;
  /** Its datastore version. */
  version: string;
  /** Its live settings (from the last good copy, or empty, when `opened` says so). */
  settings: JsonObject;
  /** How live.json was found (readLiveWithFallback). */
  opened: OpenState;
}

/**
 * The data directory `current` points at, after checking the link's structure (a symlink to a
 * v<version>_<id> directory beside it, whose readable live.json holds that version), and its
 * settings. undefined when there is no store yet.
 */
export function readCurrent(base: string): Current | undefined {
  const current = join(base, CURRENT);
  const st = lstatSync(current, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (!st.isSymbolicLink()) throw new DatastoreError(`${current} is not a symbolic link`);
  const target = readlinkSync(current);
  const named = dataDirVersion(target);
  if (named === undefined) throw new DatastoreError(`${current} points at '${target}', not at a v<version>_<id> directory beside it`);
  const dir = join(base, target);
  const { live, opened } = readLiveWithFallback(dir);
  const version = live["datastore-version"];
  if (opened.state === "ok" && version !== named) throw new DatastoreError(`${dir}/${LIVE} holds datastore version ${version}, but its directory is named for ${named}`);
  return { dir, version, settings: live.settings, opened };
}

/**
 * Build a new data directory for `version` holding `settings` (no commit yet, no pending
 * transaction), durably, under its final name beside `current`; returns that name. Not the store
 * until flipCurrent() points at it. Fault points `<faults>:after-write` when `faults` is given.
 */
export function writeVersionDir(base: string, version: string, settings: JsonObject, faults?: string): string {
  const name = `v${version}_${randomBytes(8).toString("hex")}`;
  const tmp = join(base, `.tmp-${name}`);
  // Settings include secrets (keys, tokens, passwords): the store is root's alone.
  mkdirSync(join(tmp, "pending"), { recursive: true, mode: 0o700 });
  const live: LiveFile = { "datastore-version": version, settings, "last-commit": null };
  writeFileAtomic(join(tmp, LIVE), JSON.stringify(live), { durable: true, mode: 0o600, faultName: "version-dir:live" });
  fsyncDir(tmp); // the pending/ entry
  if (faults) faultPoint(`${faults}:after-write`);
  renameSync(tmp, join(base, name));
  fsyncDir(base);
  return name;
}

/**
 * Point `current` at the data directory `name` beside it: a fresh symlink renamed over it (the
 * atomic step), then the base fsynced. Fault points `<faults>:{before-flip,after-flip,after-fsync}`.
 */
export function flipCurrent(base: string, name: string, faults?: string): void {
  const link = join(base, `.current-${randomBytes(4).toString("hex")}`);
  symlinkSync(name, link);
  if (faults) faultPoint(`${faults}:before-flip`);
  renameSync(link, join(base, CURRENT));
  if (faults) faultPoint(`${faults}:after-flip`);
  fsyncDir(base);
  if (faults) faultPoint(`${faults}:after-fsync`);
}

/** Make an empty store at `version` under `base`: its existence is the `current` link, made last. */
export function createStore(base: string, version: string): void {
  mkdirSync(base, { recursive: true, mode: 0o700 });
  flipCurrent(base, writeVersionDir(base, version, {}));
}

/** What a crash in writeVersionDir() or flipCurrent() may leave: a half-built directory, a spare symlink. */
export function removeLeftovers(base: string): void {
  let names: string[];
  try {
    names = readdirSync(base);
  } catch {
    return;
  }
  for (const f of names) if (f.startsWith(".tmp-") || f.startsWith(".current-")) rmSync(join(base, f), { recursive: true, force: true });
}

/** Remove old data directories: all but the current one and the `keep` newest others. */
export function pruneOldDirs(base: string, keep: number): void {
  const current = readlinkSync(join(base, CURRENT));
  const old = readdirSync(base)
    .filter((f) => f !== current && DATA_DIR.test(f))
    .map((f) => ({ f, t: statSync(join(base, f)).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { f } of old.slice(keep)) rmSync(join(base, f), { recursive: true, force: true });
}
