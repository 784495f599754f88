// Boot control of the A/B slots on a running host (or a workstation root): the ESP's Boot Loader
// Spec entries (src/boot/entries.ts) are the state, the slot partitions hold the images. Operations
// are named after the transitions of Bottlerocket's signpost (reference §5.7), with systemd-boot's
// counters in place of GPT priority bits:
//   clearInactive       remove the inactive slot's entries: from here on it cannot boot
//   writeInactive*      images into its partitions, kernel and initrd into the ESP, all verified
//   activateInactive    its entry with try counter and the highest generation: next boot tries it
//   deactivateInactive  remove that entry again
//   rollbackToInactive  put the other slot's usable entry on trial with the highest generation: a
//                       failed health gate on that boot falls back to the slot it came from
// The same code runs on block devices (image) and pre-sized regular files (workstation mode).
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { entryFileName, entryText, otherSlot, parseEntryName, parseEntryText, type Slot } from "../boot/entries.js";
import { fsyncDir, renameDurable } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { updatePaths, type Update } from "./manifest.js";

export const MIB = 1024 * 1024;
/** Write and read in blocks this large: few syscalls, and large enough to keep a disk busy. */
const BLOCK = 4 * MIB;

/** A refusal that maps to HTTP 409 (the slots are not in a state that allows it). */
export class SlotConflict extends Error {}

export interface SlotEntry {
  file: string;
  slot: Slot;
  generation: number;
  /** From the entry's `caisson.version=` kernel parameter. */
  version?: string;
  /** undefined: blessed. */
  triesLeft?: number;
  triesDone?: number;
}

export interface SlotStatus {
  slot: Slot;
  active: boolean;
  entry?: SlotEntry;
  /** What systemd-boot boots next. */
  nextToBoot: boolean;
}

/** Expected content of a written image, from the signed TUF targets metadata. */
export interface Expected {
  length: number;
  sha256: string;
}

/** A byte source: calls `sink` with consecutive chunks, resolves when all are delivered and checked. */
export type Source = (sink: (chunk: Buffer) => Promise<void>) => Promise<void>;

export type Progress = (bytes: number, total: number) => void;

export const usable = (e: SlotEntry | undefined) => e !== undefined && (e.triesLeft === undefined || e.triesLeft > 0);

export class Slots {
  readonly esp: string;
  readonly entriesDir: string;

  constructor(readonly root: string) {
    this.esp = join(root, updatePaths.esp);
    this.entriesDir = join(this.esp, "loader/entries");
  }

  partition(label: string): string {
    return join(this.root, updatePaths.partition(label));
  }

  /** The running slot, from the kernel command line the bootloader passed. */
  active(): Slot {
    const path = this.root === "/" ? "/proc/cmdline" : join(this.root, "proc/cmdline");
    const cmdline = existsSync(path) ? readFileSync(path, "utf8") : "";
    const slot = /(?:^|\s)caisson\.slot=([ab])(?:\s|$)/.exec(cmdline)?.[1] as Slot | undefined;
    if (!slot) throw new Error(`no caisson.slot= on the kernel command line (${path}): cannot tell the active slot`);
    return slot;
  }

  inactive(): Slot {
    return otherSlot(this.active());
  }

  entries(): SlotEntry[] {
    if (!existsSync(this.entriesDir)) return [];
    const out: SlotEntry[] = [];
    for (const file of readdirSync(this.entriesDir).sort()) {
      const name = parseEntryName(file);
      if (!name) continue;
      const fields = parseEntryText(readFileSync(join(this.entriesDir, file), "utf8"));
      const version = /(?:^|\s)caisson\.version=(\S+)/.exec(fields.options ?? "")?.[1];
      out.push({ file, slot: name.slot, generation: Number(fields.version ?? 0) || 0, version, triesLeft: name.triesLeft, triesDone: name.triesDone });
    }
    return out;
  }

  entryOf(slot: Slot, all = this.entries()): SlotEntry | undefined {
    // Normally one per slot; if a crash left two, the newest generation is the one that counts.
    return all.filter((e) => e.slot === slot).sort((a, b) => b.generation - a.generation)[0];
  }

  /** systemd-boot's pick: entries with tries left or blessed by generation (descending); exhausted ones last. */
  nextToBoot(all = this.entries()): SlotEntry | undefined {
    const sorted = [...all].sort((a, b) => Number(usable(b)) - Number(usable(a)) || b.generation - a.generation);
    return sorted[0];
  }

  status(): SlotStatus[] {
    const all = this.entries();
    const active = this.active();
    const next = this.nextToBoot(all);
    return (["a", "b"] as Slot[]).map((slot) => ({ slot, active: slot === active, entry: this.entryOf(slot, all), nextToBoot: next?.slot === slot }));
  }

  /**
   * A trial that failed: the inactive slot's entry has used up its tries (+0-N) yet was activated
   * after the running slot's (higher generation), so the bootloader fell back to us.
   */
  failedTrial(): SlotEntry | undefined {
    const all = this.entries();
    const active = this.entryOf(this.active(), all);
    const other = this.entryOf(this.inactive(), all);
    if (!other || other.triesLeft !== 0) return undefined;
    return other.generation > (active?.generation ?? 0) ? other : undefined;
  }

  private removeEntries(slot: Slot): void {
    let removed = false;
    for (const e of this.entries().filter((x) => x.slot === slot)) {
      rmSync(join(this.entriesDir, e.file), { force: true });
      removed = true;
    }
    if (removed) fsyncDir(this.entriesDir);
  }

  /** First step of every prepare: a half-written slot must never be bootable. */
  clearInactive(): void {
    this.removeEntries(this.inactive());
  }

  /**
   * Stream `source` into the inactive slot's partition `part` ("root" or "root-verity"), refusing
   * anything larger than the partition, then fsync and verify by reading it back.
   */
  async writeInactivePartition(part: "root" | "verity", source: Source, expected: Expected, progress?: Progress): Promise<void> {
    const slot = this.inactive();
    const label = part === "root" ? `root-${slot}` : `root-${slot}-verity`;
    const path = this.partition(label);
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

  /** Kernel or initrd of the inactive slot into the ESP: temp file, verify, rename, fsync. */
  async writeInactiveBootFile(kind: "kernel" | "initrd", source: Source, expected: Expected): Promise<void> {
    const dir = join(this.esp, "caisson", this.inactive());
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

  /** Put the inactive slot on trial: its entry with `tries` and a generation above every other. */
  activateInactive(update: Update, tries: number): SlotEntry {
    const slot = this.inactive();
    const all = this.entries();
    const generation = Math.max(0, ...all.map((e) => e.generation)) + 1;
    const extra = [...update["kernel-parameters"]];
    if (!extra.some((p) => p.startsWith("caisson.version="))) extra.push(`caisson.version=${update.version}`);
    const text = entryText({ slot, generation, title: `Caisson ${update.version}`, roothash: update.roothash, fsType: update.images.root.endsWith(".squashfs") ? "squashfs" : "erofs", extra });
    const file = entryFileName({ slot, triesLeft: Math.max(1, tries) });
    writeEntry(this.entriesDir, file, text);
    // Any older entry of the slot (a crash between steps) goes after the new one is in place.
    for (const e of all.filter((x) => x.slot === slot && x.file !== file)) rmSync(join(this.entriesDir, e.file), { force: true });
    fsyncDir(this.entriesDir);
    return { file, slot, generation, version: update.version, triesLeft: Math.max(1, tries), triesDone: 0 };
  }

  deactivateInactive(): void {
    this.removeEntries(this.inactive());
  }

  /**
   * Make the other slot the default, if it can boot at all: its entry goes on trial (`tries`, the
   * highest generation), so a boot that fails its health gate there (e.g. a backward migration)
   * falls back to the running slot, whose entry stays; systemd-bless-boot makes it permanent.
   */
  rollbackToInactive(tries: number): SlotEntry {
    const all = this.entries();
    const target = this.entryOf(this.inactive(), all);
    if (!target || !usable(target)) {
      throw new SlotConflict(
        target ? `slot ${target.slot}'s entry ${target.file} has no tries left: nothing to roll back to` : `slot ${this.inactive()} has no boot entry: nothing to roll back to`,
      );
    }
    const generation = Math.max(0, ...all.map((e) => e.generation)) + 1;
    const text = readFileSync(join(this.entriesDir, target.file), "utf8").replace(/^version\s+\S+$/m, `version ${generation}`);
    const triesLeft = Math.max(1, tries);
    const file = entryFileName({ slot: target.slot, triesLeft });
    writeEntry(this.entriesDir, file, text);
    // The old entry (blessed or counted) goes after the new one is in place.
    for (const e of all.filter((x) => x.slot === target.slot && x.file !== file)) rmSync(join(this.entriesDir, e.file), { force: true });
    fsyncDir(this.entriesDir);
    return { ...target, file, generation, triesLeft, triesDone: 0 };
  }
}

/** An entry by temp file + rename: the bootloader sees the old entry or the whole new one. */
function writeEntry(dir: string, file: string, text: string): void {
  mkdirSync(dir, { recursive: true });
  // Not ending in .conf: systemd-boot ignores it if a crash leaves it behind.
  const tmp = join(dir, `.${file}.tmp`);
  const fd = openSync(tmp, "w", 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  faultPoint("slots:entry:after-write");
  renameDurable(tmp, join(dir, file));
  faultPoint("slots:entry:after-rename");
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
async function writeStream(fh: FileHandle, source: Source, limit: number, progress?: Progress): Promise<void> {
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
