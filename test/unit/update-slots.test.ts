// A/B slot control (src/update/slots.ts) on a temp root with file-backed partitions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MIB, Slots, SlotConflict, type Source } from "../../src/update/slots.js";
import { entryFileName, entryText } from "../../src/boot/entries.js";
import type { Update } from "../../src/update/manifest.js";

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

function makeRoot(partSize = 1 << 20): string {
  const root = mkdtempSync(join(tmpdir(), "caisson-slots-"));
  mkdirSync(join(root, "dev/disk/by-partlabel"), { recursive: true });
  for (const l of ["root-a", "root-a-verity", "root-b", "root-b-verity"]) writeFileSync(join(root, "dev/disk/by-partlabel", l), Buffer.alloc(partSize, l === "root-a" ? 0xaa : 0));
  mkdirSync(join(root, "efi/loader/entries"), { recursive: true });
  writeFileSync(join(root, "efi/loader/entries/caisson-a.conf"), entryText({ slot: "a", generation: 1, title: "Caisson 1.0.0", roothash: "00", fsType: "erofs", extra: ["caisson.version=1.0.0"] }));
  mkdirSync(join(root, "proc"), { recursive: true });
  writeFileSync(join(root, "proc/cmdline"), "root=/dev/mapper/root caisson.slot=a quiet\n");
  return root;
}

const update = (version: string): Update => ({
  variant: "dev", arch: "x86_64", version, max_version: version, waves: {},
  images: { root: `r-${version}.erofs`, hash: "h", kernel: "k", initrd: "i" },
  roothash: "ab".repeat(32), "kernel-parameters": ["console=ttyS0", `caisson.version=${version}`], "boot-tries": 3,
});

const chunks = (b: Buffer, size = 100_000): Source => async (sink) => {
  for (let i = 0; i < b.length; i += size) await sink(b.subarray(i, i + size));
};

test("active slot from the kernel command line; status and next_to_boot", () => {
  const s = new Slots(makeRoot());
  assert.equal(s.active(), "a");
  assert.equal(s.inactive(), "b");
  const st = s.status();
  assert.equal(st[0]!.entry?.version, "1.0.0");
  assert.equal(st[0]!.nextToBoot, true);
  assert.equal(st[1]!.entry, undefined);
});

test("write, verify, activate, deactivate the inactive slot; slot a untouched", async () => {
  const root = makeRoot();
  const s = new Slots(root);
  const aBefore = readFileSync(join(root, "dev/disk/by-partlabel/root-a"));
  const aEntry = readFileSync(join(root, "efi/loader/entries/caisson-a.conf"));
  const img = randomBytes(300_000);
  s.clearInactive();
  const seen: number[] = [];
  await s.writeInactivePartition("root", chunks(img), { length: img.length, sha256: sha(img) }, (b) => seen.push(b));
  assert.deepEqual(readFileSync(join(root, "dev/disk/by-partlabel/root-b")).subarray(0, img.length), img);
  assert.equal(statSync(join(root, "dev/disk/by-partlabel/root-b")).size, 1 << 20, "the partition is never truncated");
  assert.equal(seen.at(-1), img.length);
  const k = randomBytes(5000);
  await s.writeInactiveBootFile("kernel", chunks(k, 999), { length: k.length, sha256: sha(k) });
  assert.deepEqual(readFileSync(join(root, "efi/caisson/b/vmlinuz")), k);

  const e = s.activateInactive(update("1.1.0"), 3);
  assert.equal(e.file, "caisson-b+3.conf");
  assert.equal(e.generation, 2);
  const text = readFileSync(join(root, "efi/loader/entries/caisson-b+3.conf"), "utf8");
  assert.match(text, /^version 2$/m);
  assert.match(text, /caisson\.version=1\.1\.0/);
  assert.match(text, /caisson\.slot=b/);
  assert.equal(s.nextToBoot()?.slot, "b");
  s.deactivateInactive();
  assert.deepEqual(readdirSync(join(root, "efi/loader/entries")), ["caisson-a.conf"]);
  assert.deepEqual(readFileSync(join(root, "dev/disk/by-partlabel/root-a")), aBefore);
  assert.deepEqual(readFileSync(join(root, "efi/loader/entries/caisson-a.conf")), aEntry);
});

test("refuses an image larger than the partition, more data than signed, a bad hash", async () => {
  const s = new Slots(makeRoot(1000));
  const img = randomBytes(2000);
  await assert.rejects(s.writeInactivePartition("root", chunks(img), { length: 2000, sha256: sha(img) }), /larger than partition root-b/);
  const small = randomBytes(500);
  await assert.rejects(s.writeInactivePartition("root", chunks(Buffer.concat([small, small])), { length: 500, sha256: sha(small) }), /more data than the 500 bytes/);
  await assert.rejects(s.writeInactivePartition("root", chunks(small), { length: 500, sha256: "00".repeat(32) }), /read back sha256/);
});

test("a partition write that fails while the next chunk is awaited fails the write, never the process", { skip: process.getuid?.() !== 0 && "needs root to mount a tmpfs" }, async () => {
  const root = makeRoot();
  // root-b: an 8 MiB sparse file on a 256 KiB tmpfs, so the first 4 MiB block write hits ENOSPC.
  const mnt = mkdtempSync(join(tmpdir(), "caisson-slots-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt]);
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => void unhandled.push(e);
  process.on("unhandledRejection", onUnhandled);
  try {
    const part = join(mnt, "root-b");
    writeFileSync(part, "");
    truncateSync(part, 8 * MIB);
    const link = join(root, "dev/disk/by-partlabel/root-b");
    rmSync(link);
    symlinkSync(part, link);
    const img = randomBytes(8 * MIB);
    // Slow network: the block write fails while the source is still delivering the next chunks.
    const slow: Source = async (sink) => {
      for (let i = 0; i < img.length; i += MIB) {
        await new Promise((r) => setTimeout(r, 20));
        await sink(img.subarray(i, i + MIB));
      }
    };
    await assert.rejects(new Slots(root).writeInactivePartition("root", slow, { length: img.length, sha256: sha(img) }), /ENOSPC/);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, [], "no unhandled rejection");
  } finally {
    process.off("unhandledRejection", onUnhandled);
    execFileSync("umount", [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  }
});

test("rollback puts the other usable slot on trial as the default; nothing to roll back to is a conflict", () => {
  const root = makeRoot();
  const s = new Slots(root);
  assert.throws(() => s.rollbackToInactive(2), SlotConflict);
  writeFileSync(join(root, "efi/loader/entries/caisson-b.conf"), entryText({ slot: "b", generation: 0, title: "Caisson 0.9.0", roothash: "00", fsType: "erofs", extra: ["caisson.version=0.9.0"] }));
  assert.equal(s.nextToBoot()?.slot, "a");
  const e = s.rollbackToInactive(2);
  assert.equal(e.generation, 2);
  assert.equal(e.file, "caisson-b+2.conf");
  assert.equal(s.nextToBoot()?.slot, "b");
  assert.deepEqual(readdirSync(join(root, "efi/loader/entries")), ["caisson-a.conf", "caisson-b+2.conf"], "on trial; slot a's blessed entry is the fallback");
  const text = readFileSync(join(root, "efi/loader/entries/caisson-b+2.conf"), "utf8");
  assert.match(text, /^version 2$/m);
  assert.match(text, /caisson\.version=0\.9\.0/);
});

test("a used-up trial with a higher generation is a failed trial, sorted last", () => {
  const root = makeRoot();
  const s = new Slots(root);
  writeFileSync(join(root, "efi/loader/entries", entryFileName({ slot: "b", triesLeft: 0, triesDone: 3 })), entryText({ slot: "b", generation: 5, title: "x", roothash: "00", fsType: "erofs", extra: ["caisson.version=1.1.0"] }));
  assert.equal(s.failedTrial()?.version, "1.1.0");
  assert.equal(s.nextToBoot()?.slot, "a");
  assert.throws(() => s.rollbackToInactive(1), /no tries left/);
});
