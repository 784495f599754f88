// Atomic file replacement: write a temporary file beside the target, optionally fsync it, rename
// it over the target, optionally fsync the directory. A reader (or a crash) sees the old file or
// the new one, never a mix.
//
// A process killed between creating the temporary file and renaming it leaves the temporary
// `.<name>.tmp-<pid>-<rand>` behind. The first write of a process into a directory removes those
// of processes that are gone (and of an earlier process with this pid: this one never leaves its
// own between calls, the write being synchronous), so a restarted daemon cleans up after a killed one.
import { closeSync, fsyncSync, openSync, renameSync, writeSync, mkdirSync, unlinkSync, readdirSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { faultPoint } from "./faults.js";
import { processAlive } from "./pidfile.js";

/** The temporary files writeFileAtomic makes: `.<name>.tmp-<pid>-<8 hex>`. */
export const ATOMIC_TEMP = /^\..+\.tmp-(\d+)-[0-9a-f]{8}$/;

const swept = new Set<string>();

/**
 * Remove the temporary files of writeFileAtomic in `dir` left by processes that are gone (or by an
 * earlier process with this pid). Returns the names removed. Never throws: debris is not worth
 * failing a write for.
 */
export function removeStaleTemps(dir: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const f of names) {
    const m = ATOMIC_TEMP.exec(f);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && processAlive(pid)) continue;
    try {
      unlinkSync(join(dir, f));
      removed.push(f);
    } catch {
      /* gone already, or not ours to remove */
    }
  }
  return removed;
}

export interface AtomicWriteOptions {
  /** fsync the file and its directory, so the write survives a power cut. */
  durable?: boolean;
  mode?: number;
  /** Name used for fault injection points (`<name>:after-write`, ...). */
  faultName?: string;
}

export function writeFileAtomic(path: string, data: string | Uint8Array, opts: AtomicWriteOptions = {}): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  if (!swept.has(dir)) {
    swept.add(dir);
    removeStaleTemps(dir);
  }
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const fd = openSync(tmp, "w", opts.mode ?? 0o644);
  try {
    const buf = typeof data === "string" ? Buffer.from(data) : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    faultPoint(`${opts.faultName}:after-write`);
    if (opts.durable) fsyncSync(fd);
    faultPoint(`${opts.faultName}:after-fsync`);
  } catch (e) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  faultPoint(`${opts.faultName}:after-rename`);
  if (opts.durable) fsyncDir(dir);
  faultPoint(`${opts.faultName}:after-dir-fsync`);
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * rename(2) made durable on every filesystem we write, the ESP's vfat included: after the rename,
 * fsync the file itself, then its directory. (vfat creates the new directory entry empty and fills
 * in the file's size and first cluster only when the file's inode is written back: fsyncing just
 * the directory leaves a zero-length file after a power cut — found by pulling the plug under QEMU.)
 */
export function renameDurable(from: string, to: string): void {
  renameSync(from, to);
  const fd = openSync(to, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir(dirname(to));
}
