// The streaming image writer (updog's half of a slot write): a slot's root image and hash tree
// into its partitions, its kernel and initrd into the ESP, each capped at the signed length and
// read back against the signed sha256 before anything may boot it. Which slot is written, and
// when it becomes bootable, is boot control's business (src/boot/slots.ts): the caller clears the
// slot's entries first and activates it only after every write here has been verified.
// The same code runs on block devices (image) and pre-sized regular files (workstation mode).
import { existsSync, mkdirSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import type { Slot } from "../protocol/types.js";
import { ESP_DIR } from "../boot/slots.js";
import { renameDurable } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { MIB } from "../fsutil/units.js";
import { updatePaths } from "./manifest.js";

/** Write and read in blocks this large: few syscalls, and large enough to keep a disk busy. */
const BLOCK = 4 * MIB;

/** Expected content of a written image, from the signed TUF targets metadata. */
export interface Expected {
  length: number;
  sha256: string;
}

/** A byte source: calls `sink` with consecutive chunks, resolves when all are delivered and checked. */
export type Source = (sink: (chunk: Buffer) => Promise<void>) => Promise<void>;

/** Called as blocks land on the disk: bytes written so far of `total`. */
export type WriteProgress = (bytes: number, total: number) => void;

/** The partition of `slot` that holds `part`: `root-<slot>` or `root-<slot>-verity`. */
const partitionLabel = (slot: Slot, part: "root" | "verity") => (part === "root" ? `root-${slot}` : `root-${slot}-verity`);

/**
 * Stream `source` into `slot`'s partition `part` under `root`, refusing anything larger than the
 * partition, then fsync and verify by reading it back.
 */
export async function writePartition(root: string, slot: Slot, part: "root" | "verity", source: Source, expected: Expected, progress?: WriteProgress): Promise<void> {
  const label = partitionLabel(slot, part);
  const path = join(root, updatePaths.partition(label));
  if (!existsSync(path)) throw new Error(`partition ${label} not found at ${path}`);
  // Never truncate or create: the partition (block device or pre-sized file) has a fixed size.
  const fh = await open(path, "r+");
  try {
    const size = await sizeOf(fh);
    if (expected.length > size) throw new Error(`the ${part} image (${expected.length} bytes) is larger than partition ${label} (${size} bytes)`);
    await writeStream(fh, source, expected.length, progress);
    await fh.sync();
  } finally {
    await fh.close();
  }
  faultPoint(`slots:${part}:after-write`);
  await verifyFile(path, expected, `partition ${label}`);
}

/** `slot`'s kernel or initrd into the ESP under `root`: temp file, verify, rename, fsync. */
export async function writeBootFile(root: string, slot: Slot, kind: "kernel" | "initrd", source: Source, expected: Expected): Promise<void> {
  const dir = join(root, ESP_DIR, "caisson", slot);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, kind === "kernel" ? "vmlinuz" : "initrd.img");
  const tmp = join(dir, `.${basename(path)}.tmp`);
  const fh = await open(tmp, "w");
  try {
    await writeStream(fh, source, expected.length);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await verifyFile(tmp, expected, `${kind} file`);
  renameDurable(tmp, path);
  faultPoint(`slots:${kind}:after-rename`);
}

/** Size of a regular file or a block device (whose stat size is 0): find the end by probing reads. */
async function sizeOf(fh: FileHandle): Promise<number> {
  const st = await fh.stat();
  if (st.isFile()) return st.size;
  const b = Buffer.alloc(1);
  let lo = 0;
  let hi = 1;
  while ((await fh.read(b, 0, 1, hi - 1)).bytesRead === 1) {
    lo = hi;
    hi *= 2;
  }
  // The last readable byte is in [lo, hi): binary search for the size.
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if ((await fh.read(b, 0, 1, mid - 1)).bytesRead === 1) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * Write `source` at offset 0 in BLOCK-sized writes, one write in flight while the next block fills
 * (the network keeps flowing while the disk writes). Never more than `limit` bytes.
 */
async function writeStream(fh: FileHandle, source: Source, limit: number, progress?: WriteProgress): Promise<void> {
  let pos = 0;
  let parts: Buffer[] = [];
  let filled = 0;
  let inFlight: Promise<unknown> = Promise.resolve();
  const flush = async () => {
    if (!filled) return;
    const block = parts.length === 1 ? parts[0]! : Buffer.concat(parts, filled);
    const at = pos;
    pos += filled;
    parts = [];
    filled = 0;
    await inFlight;
    const p = writeAll(fh, block, at).then(() => progress?.(at + block.length, limit));
    // Handled now (it may fail while we wait for the next chunk: no unhandled rejection), and
    // still awaited at the next flush or the end, where its error fails the write.
    p.catch(() => {});
    inFlight = p;
  };
  try {
    await source(async (chunk) => {
      if (pos + filled + chunk.length > limit) throw new Error(`more data than the ${limit} bytes the signed metadata allow`);
      parts.push(chunk);
      filled += chunk.length;
      if (filled >= BLOCK) await flush();
    });
    await flush();
  } catch (e) {
    // Let the write in flight finish (or fail) before the caller closes the file.
    await inFlight.catch(() => {});
    throw e;
  }
  await inFlight;
}

async function writeAll(fh: FileHandle, buf: Buffer, at: number): Promise<void> {
  let off = 0;
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off, at + off)).bytesWritten;
}

/** Read back the first `length` bytes and compare with the signed sha256. */
export async function verifyFile(path: string, expected: Expected, what: string): Promise<void> {
  const fh = await open(path, "r");
  try {
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(BLOCK);
    let pos = 0;
    while (pos < expected.length) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(BLOCK, expected.length - pos), pos);
      if (bytesRead === 0) throw new Error(`${what}: only ${pos} of ${expected.length} bytes could be read back`);
      hash.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    const got = hash.digest("hex");
    if (got !== expected.sha256) throw new Error(`${what}: read back sha256 ${got}, signed metadata say ${expected.sha256}`);
  } finally {
    await fh.close();
  }
}
