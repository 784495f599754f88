// The settings datastore: live settings plus named pending transactions.
//
// Layout (why: the whole settings tree is a few KiB, so swapping one file is both the simplest
// atomic commit and the fastest read path — the API serves reads from memory):
//
//   <base>/current -> v<version>_<rand>     symlink; a migration writes a new directory and flips it
//   <base>/v<version>_<rand>/live.json      {"datastore-version", "settings", "last-commit"}
//   <base>/v<version>_<rand>/pending/<tx>.json   {"id", "settings"}   (tx name percent-encoded)
//
// A commit writes a new live.json (temp file + fsync + rename + directory fsync) that records the
// id of the transaction it consumed, then unlinks that transaction's file. A crash between the two
// leaves a pending file whose id live.json already holds; open() deletes it. So a commit is whole
// or absent at every instant. Pending transactions are written atomically but not fsynced: a power
// cut may lose uncommitted changes (as Bottlerocket's storewolf discards them at boot anyway),
// never committed ones. (The unlink of a consumed pending file is not fsynced: after a power cut it
// may reappear, but the host discards every pending transaction at start, so it is never committed.)
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, symlinkSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileAtomic, fsyncDir } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { changedKeys, deepMerge, isObject, type JsonObject } from "../settings/keys.js";

export class NothingPendingError extends Error {}
export class DatastoreError extends Error {}

interface LiveFile {
  "datastore-version": string;
  settings: JsonObject;
  "last-commit": { tx: string; id: string } | null;
}

interface PendingFile {
  id: string;
  settings: JsonObject;
}

export const DEFAULT_TX = "default";
// 64 characters: percent-encoded (at most 3 bytes each) the pending file name stays under 255 bytes.
const TX_NAME = /^[\x21-\x7e]{1,64}$/;

export function checkTxName(tx: string): void {
  if (!TX_NAME.test(tx)) throw new DatastoreError(`invalid transaction name '${tx.slice(0, 80)}': use 1-64 printable ASCII characters`);
}

export class Datastore {
  private live: LiveFile;
  private pending = new Map<string, PendingFile>();

  private constructor(
    readonly dir: string,
    live: LiveFile,
  ) {
    this.live = live;
  }

  /** Open the store under `base`, creating it at `version` if it does not exist. */
  static open(base: string, version: string): Datastore {
    const current = join(base, "current");
    if (!existsSync(current)) Datastore.create(base, version);
    const dir = join(base, readlinkSync(current));
    const live = JSON.parse(readFileSync(join(dir, "live.json"), "utf8")) as LiveFile;
    if (!isObject(live.settings)) throw new DatastoreError(`${dir}/live.json has no settings table`);
    const store = new Datastore(dir, live);
    store.recoverPending();
    return store;
  }

  private static create(base: string, version: string): void {
    // Settings include secrets (keys, tokens, passwords): the store is root's alone.
    mkdirSync(base, { recursive: true, mode: 0o700 });
    const name = `v${version}_${randomBytes(8).toString("hex")}`;
    const dir = join(base, name);
    mkdirSync(join(dir, "pending"), { recursive: true, mode: 0o700 });
    const live: LiveFile = { "datastore-version": version, settings: {}, "last-commit": null };
    writeFileAtomic(join(dir, "live.json"), JSON.stringify(live), { durable: true, mode: 0o600 });
    // The symlink is the store's existence: made last, by rename, so a half-made store is never "current".
    const tmpLink = join(base, `.current-${randomBytes(4).toString("hex")}`);
    symlinkSync(name, tmpLink);
    renameSync(tmpLink, join(base, "current"));
    fsyncDir(base);
  }

  private recoverPending(): void {
    // A crash inside a commit's writeFileAtomic leaves its temporary `.live.json.tmp-*` beside live.json.
    for (const f of readdirSync(this.dir)) if (f.startsWith(".live.json.tmp-")) unlinkSync(join(this.dir, f));
    const dir = join(this.dir, "pending");
    mkdirSync(dir, { recursive: true });
    for (const f of readdirSync(dir)) {
      const path = join(dir, f);
      if (!f.endsWith(".json") || f.startsWith(".")) {
        unlinkSync(path); // a temporary file left by a crash
        continue;
      }
      let p: PendingFile;
      try {
        p = JSON.parse(readFileSync(path, "utf8")) as PendingFile;
      } catch {
        unlinkSync(path); // torn by a power cut: pending data is not durable by design
        continue;
      }
      let tx: string;
      try {
        tx = decodeURIComponent(f.slice(0, -5));
      } catch {
        unlinkSync(path); // not a name this store wrote
        continue;
      }
      const last = this.live["last-commit"];
      if (last && last.id === p.id) unlinkSync(path); // committed, but the crash came before its unlink
      else this.pending.set(tx, p);
    }
  }

  get version(): string {
    return this.live["datastore-version"];
  }

  /** Committed settings (do not mutate). */
  liveSettings(): JsonObject {
    return this.live.settings;
  }

  pendingSettings(tx: string): JsonObject {
    return this.pending.get(tx)?.settings ?? {};
  }

  transactions(): string[] {
    return [...this.pending.keys()].sort();
  }

  /** Merge `patch` into the pending settings of `tx` (created on first use). */
  patch(tx: string, patch: JsonObject): void {
    checkTxName(tx);
    const prev = this.pending.get(tx);
    const next: PendingFile = { id: prev?.id ?? randomBytes(12).toString("hex"), settings: deepMerge(prev?.settings ?? {}, patch) };
    writeFileAtomic(this.pendingPath(tx), JSON.stringify(next), { faultName: "pending", mode: 0o600 });
    this.pending.set(tx, next);
  }

  /** Drop a pending transaction; returns the keys it held. */
  deleteTx(tx: string): string[] {
    const p = this.pending.get(tx);
    if (!p) return [];
    unlinkSync(this.pendingPath(tx));
    this.pending.delete(tx);
    return changedKeys({}, p.settings);
  }

  /** Make a transaction live, atomically and durably; returns the keys whose values changed. */
  commit(tx: string): string[] {
    const p = this.pending.get(tx);
    if (!p || Object.keys(p.settings).length === 0) throw new NothingPendingError(`transaction '${tx}' has no pending settings to commit`);
    const settings = deepMerge(this.live.settings, p.settings);
    const changed = changedKeys(this.live.settings, settings);
    const live: LiveFile = { "datastore-version": this.version, settings, "last-commit": { tx, id: p.id } };
    writeFileAtomic(join(this.dir, "live.json"), JSON.stringify(live), { durable: true, faultName: "commit", mode: 0o600 });
    this.live = live;
    this.pending.delete(tx);
    unlinkSync(this.pendingPath(tx));
    faultPoint("commit:after-unlink");
    return changed;
  }

  private pendingPath(tx: string): string {
    return join(this.dir, "pending", `${encodeURIComponent(tx).replace(/\./g, "%2E")}.json`);
  }
}
