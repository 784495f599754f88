// Slots of a disk image file, changed offline (no loop devices, no mounts): write a slot's root
// and hash tree at its partitions' offsets, its kernel and initrd and its entry into the ESP with
// mtools. The update agent does the same on a running host through block devices and /efi; tests
// (and bench/image.ts) use this to put a slot on trial before a boot. A test helper, not part of
// src/boot: it builds on src/image (disk layout, mtools), which src/boot must not import.
import { writeFileSync, mkdtempSync, rmSync, openSync, writeSync, closeSync, readSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../src/image/run.js";
import { mtoolsEnv, partitions, writeAtPartition, type DiskLayout } from "../../src/image/disk.js";
import { entryFileName, entryText, type Slot, type SlotBoot } from "../../src/boot/entries.js";
import { MIB } from "../../src/fsutil/units.js";

export interface SlotArtifacts {
  root: string;
  verity: string;
  vmlinuz: string;
  initrd: string;
}

function offsetOf(layout: DiskLayout, label: string): number {
  const p = partitions(layout).find((x) => x.label === label);
  if (!p) throw new Error(`no partition ${label}`);
  return p.startMiB * MIB;
}

const esp = (disk: string, layout: DiskLayout) => `${disk}@@${offsetOf(layout, "esp")}`;

/** Files in the ESP's loader/entries. */
export async function listEntries(disk: string, layout: DiskLayout): Promise<string[]> {
  const out = await run("mdir", ["-b", "-i", esp(disk, layout), "::/loader/entries"], { env: mtoolsEnv() });
  return out.split("\n").map((l) => l.trim().split("/").pop()!).filter((f) => f.endsWith(".conf")).sort();
}

/** Put a slot on trial (`tries`), or blessed (no tries): its images, its boot files and its entry. */
export async function stageSlot(disk: string, layout: DiskLayout, a: SlotArtifacts, boot: SlotBoot, tries?: number): Promise<void> {
  await writeAtPartition(disk, layout, `root-${boot.slot}`, a.root);
  await writeAtPartition(disk, layout, `root-${boot.slot}-verity`, a.verity);
  const tmp = mkdtempSync(join(tmpdir(), "caisson-stage-"));
  try {
    const entry = join(tmp, "entry.conf");
    writeFileSync(entry, entryText(boot));
    const e = esp(disk, layout);
    for (const old of await listEntries(disk, layout)) {
      if (old.startsWith(`caisson-${boot.slot}`)) await run("mdel", ["-i", e, `::/loader/entries/${old}`], { env: mtoolsEnv() });
    }
    for (const [from, to] of [[a.vmlinuz, `::/caisson/${boot.slot}/vmlinuz`], [a.initrd, `::/caisson/${boot.slot}/initrd.img`], [entry, `::/loader/entries/${entryFileName({ slot: boot.slot, triesLeft: tries })}`]]) {
      await run("mcopy", ["-o", "-i", e, from!, to!], { env: mtoolsEnv() });
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Replace one file in the ESP, e.g. a slot's kernel with a truncated copy (to prove a failed load falls back). */
export async function writeEspFile(disk: string, layout: DiskLayout, espPath: string, data: Uint8Array): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "caisson-esp-"));
  try {
    const file = join(tmp, "file");
    writeFileSync(file, data);
    await run("mcopy", ["-o", "-i", esp(disk, layout), file, `::${espPath}`], { env: mtoolsEnv() });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Flip one byte of a slot's root partition (to prove dm-verity refuses it). */
export function corruptSlot(disk: string, layout: DiskLayout, slot: Slot, offsetInRoot: number): void {
  const fd = openSync(disk, "r+");
  try {
    const at = offsetOf(layout, `root-${slot}`) + offsetInRoot;
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}
