// The settings datastore: live settings plus named pending transactions.
//
// Layout (layout.ts owns it; why: the whole settings tree is a few KiB, so swapping one file is
// both the simplest atomic commit and the fastest read path — the API serves reads from memory):
//
//   <base>/current -> v<version>_<rand>     symlink; a migration writes a new directory and flips it
//   <base>/v<version>_<rand>/live.json      {"datastore-version", "settings", "last-commit"}
//   <base>/v<version>_<rand>/live.json.last-good   the live settings before the last commit
//   <base>/v<version>_<rand>/pending/<tx>.json   {"id", "settings"}   (tx name percent-encoded)
//
// A commit writes a new live.json (temp file + fsync + rename + directory fsync) that records the
// id of the transaction it consumed, then unlinks that transaction's file. A crash between the two
// leaves a pending file whose id live.json already holds; open() deletes it. So a commit is whole
// or absent at every instant. Pending transactions are written atomically but not fsynced: a power
// cut may lose uncommitted changes (as Bottlerocket's storewolf discards them at boot anyway),
// never committed ones. (The unlink of a consumed pending file is not fsynced: after a power cut it
// may reappear, but the host discards every pending transaction at start, so it is never committed.)
//
// An unreadable live.json (disk error, truncation, garbage, a wrong shape) must not keep the host
// from starting: a host has no shell to repair it with. Each commit first writes the live settings
// it replaces (checked when read, so known good) durably to live.json.last-good. open() falls back
// to that copy, else to empty settings (the host fills in defaults), keeps the bad file as
// live.json.corrupt for inspection and reports what happened in `opened` (the host puts it in its
// boot status and the health gate fails). The next commit writes a good live.json again.
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { changedKeys, deepMerge, type JsonObject } from "../settings/keys.js";
import { CORRUPT, createStore, currentDir, DatastoreError, LAST_GOOD, LIVE, readLiveWithFallback, type LiveFile } from "./layout.js";
import type { OpenState } from "../protocol/types.js";

// What the host and the API take from the store, wherever it is defined.
export { DatastoreError } from "./layout.js";

export class NothingPendingError extends Error {}

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
    /** How live.json was found at open: "ok", or what the store started on instead and why. */
    private openState: OpenState = { state: "ok" },
  ) {
    this.live = live;
  }

  /**
   * Open the store under `base`, creating it at `version` if it does not exist. An unusable
   * live.json does not fail it: see the file's header and `opened`.
   */
  static open(base: string, version: string): Datastore {
    try {
      return Datastore.openAt(base, version);
    } catch (e) {
      // A store that cannot be opened at all (e.g. `current` is not a symlink) must not become a
      // daemon that never starts, on a host with no shell: keep it aside, whole, for inspection,
      // and start a new one on defaults, degraded and saying why (as an unreadable live.json does).
      if (!existsSync(base)) throw e;
      const kept = `${base}.broken-${Date.now()}`;
      renameSync(base, kept);
      const store = Datastore.openAt(base, version);
      store.openState = { state: "empty", error: `the datastore could not be opened (${(e as Error).message}); it was moved aside whole`, kept };
      return store;
    }
  }

  /** How the store was found at open: "ok", or what it started on instead and why. */
  get opened(): OpenState {
    return this.openState;
  }

  private static openAt(base: string, version: string): Datastore {
    let dir = currentDir(base);
    if (dir === undefined) {
      createStore(base, version);
      dir = currentDir(base)!;
    }
    const { live, opened } = readLiveWithFallback(dir);
    if (opened.state !== "ok" && existsSync(join(dir, LIVE))) {
      try {
        copyFileSync(join(dir, LIVE), join(dir, CORRUPT));
        opened.kept = join(dir, CORRUPT);
      } catch {
        /* unreadable even to copy: nothing to keep */
      }
    }
    const store = new Datastore(dir, live, opened);
    store.recoverPending();
    return store;
  }

  private recoverPending(): void {
    // A crash inside a commit's writeFileAtomic leaves its temporary `.live.json.tmp-*` beside live.json.
    // (and of its last good copy: `.live.json.last-good.tmp-*`).
    for (const f of readdirSync(this.dir)) if (/^\.live\.json(\.last-good)?\.tmp-/.test(f)) unlinkSync(join(this.dir, f));
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
    // The settings being replaced, known good (checked when read, or written by us), are the copy
    // open() falls back to if live.json is ever unreadable. Written first: at every instant one of
    // the two files holds good settings.
    writeFileAtomic(join(this.dir, LAST_GOOD), JSON.stringify(this.live), { durable: true, faultName: "last-good", mode: 0o600 });
    writeFileAtomic(join(this.dir, LIVE), JSON.stringify(live), { durable: true, faultName: "commit", mode: 0o600 });
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
