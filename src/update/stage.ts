// Staging an update into the inactive slot (updog's job): fetch the signed manifest, then for one
// update download, write and verify its four images with progress, cache what the migrator needs,
// and record it as staged. Shared by prepare and by a rollback that must download.
//
// Crash contract, step by step (each step has a fault point for the crash tests):
//   1. the staged record is dropped and the slot's boot entries removed  (prepare:after-clear)
//      from here the slot cannot boot, so a half-written slot is never tried
//   2. root and hash tree into the partitions, kernel and initrd into the ESP, each read back
//      against the signed sha256                                        (prepare:after-images)
//   3. the migrator's cache                                             (prepare:after-cache)
//   4. the staged record in state.json: only now does the agent say Staged
// A crash anywhere before 4 leaves an unbootable inactive slot and no staged record: Idle or
// Available after the restart, and prepare starts over.
import { rmSync } from "node:fs";
import { join } from "node:path";
import type { BootSlots } from "../boot/slots.js";
import { faultPoint } from "../fsutil/faults.js";
import { findMigrations, updatePaths, type Manifest, type Update } from "./manifest.js";
import { cacheForMigrator, type HttpGet } from "./migration-cache.js";
import { readState, writeState } from "./state.js";
import type { TufSource } from "./tuf.js";
import { writeBootFile, writePartition } from "./write.js";
import type { DownloadProgress } from "../protocol/types.js";

/** Refresh the metadata and fetch manifest.json through TUF (a temp file beside the metadata, removed after). */
export async function fetchManifest(root: string, tuf: TufSource): Promise<{ manifest: Manifest; bytes: Buffer }> {
  await tuf.refresh();
  const tmp = join(root, updatePaths.metadata, "..", ".manifest.json.download");
  try {
    return await tuf.manifest(tmp);
  } finally {
    rmSync(tmp, { force: true });
  }
}

export interface StageInput {
  root: string;
  /** The running version: the hop chain goes from it to the update's. */
  running: string;
  tuf: TufSource;
  http: HttpGet;
  manifest: Manifest;
  /** manifest.json as TUF verified it, for the migrator's cache. */
  manifestBytes: Buffer;
  update: Update;
  /** Boot control as the ESP is now (loaded when the slot is about to be cleared). */
  slots: () => BootSlots;
  /** The command, for progress logs. */
  cmd: string;
  log: (msg: string) => void;
  now: () => Date;
  progress: (p: DownloadProgress | null) => void;
}

/**
 * Write `update` into the inactive slot (cleared first, so it cannot boot half-written), verify
 * it, cache what the migrator needs for the hop chain from the running version, and record it
 * as staged.
 */
export async function stageUpdate(i: StageInput): Promise<void> {
  const { root, tuf, update } = i;
  // The migrator runs the same walk after the reboot, from this cache and offline.
  const hops = findMigrations(i.running, update.version, i.manifest).map((m) => m.name);
  const infos = {
    root: await tuf.target(update.images.root),
    hash: await tuf.target(update.images.hash),
    kernel: await tuf.target(update.images.kernel),
    initrd: await tuf.target(update.images.initrd),
  };

  // From here the inactive slot is being rewritten: first make sure it cannot boot.
  const st = readState(root);
  if (st.staged) writeState(root, { ...st, staged: undefined });
  const slots = i.slots();
  const slot = slots.inactive;
  slots.clearInactive();
  slots.write();
  faultPoint("prepare:after-clear");

  for (const [part, info] of [["root", infos.root], ["verity", infos.hash]] as const) {
    const t0 = Date.now();
    let lastLog = 0;
    const report = (bytes: number, total: number) => {
      const secs = (Date.now() - t0) / 1000;
      const p = { target: info.name, bytes, total, mb_per_s: secs > 0 ? Math.round((bytes / 1e6 / secs) * 10) / 10 : 0 };
      i.progress(p);
      if (bytes === total || Date.now() - lastLog > 2000) {
        lastLog = Date.now();
        i.log(`${i.cmd}: ${info.name} ${Math.floor((bytes / total) * 100)}% (${bytes}/${total} bytes, ${p.mb_per_s} MB/s)`);
      }
    };
    report(0, info.length);
    await writePartition(root, slot, part, tuf.stream(info), info, report);
  }
  await writeBootFile(root, slot, "kernel", tuf.stream(infos.kernel), infos.kernel);
  await writeBootFile(root, slot, "initrd", tuf.stream(infos.initrd), infos.initrd);
  i.progress(null);
  faultPoint("prepare:after-images");

  await cacheForMigrator({ root, tuf, http: i.http, manifestBytes: i.manifestBytes, hops });
  faultPoint("prepare:after-cache");
  writeState(root, { ...readState(root), staged: { update, slot, at: i.now().toISOString() } });
}
