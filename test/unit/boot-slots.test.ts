// A/B boot control (src/boot/slots.ts) and the slot image writer (src/update/write.ts) on a temp
// root with file-backed partitions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BootSlots, SlotConflict, type EntryStore, type SlotImage } from "../../src/boot/slots.js";
import { writeBootFile, writePartition, type Source } from "../../src/update/write.js";
import { MIB } from "../../src/fsutil/units.js";
import { entryFileName, entryText } from "../../src/boot/entries.js";

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

const image = (version: string): SlotImage => ({ version, roothash: "ab".repeat(32), fsType: "erofs", kernelParameters: ["console=ttyS0", `caisson.version=${version}`] });

const chunks = (b: Buffer, size = 100_000): Source => async (sink) => {
  for (let i = 0; i < b.length; i += size) await sink(b.subarray(i, i + size));
};

test("active slot from the kernel command line; status and next_to_boot", () => {
  const s = BootSlots.load(makeRoot());
  assert.equal(s.active, "a");
  assert.equal(s.inactive, "b");
  const st = s.status();
  assert.equal(st[0]!.entry?.version, "1.0.0");
  assert.equal(st[0]!.nextToBoot, true);
  assert.equal(st[1]!.entry, undefined);
});

test("write, verify, activate, deactivate the inactive slot; slot a untouched", async () => {
  const root = makeRoot();
  const s = BootSlots.load(root);
  const aBefore = readFileSync(join(root, "dev/disk/by-partlabel/root-a"));
  const aEntry = readFileSync(join(root, "efi/loader/entries/caisson-a.conf"));
  const img = randomBytes(300_000);
  s.clearInactive();
  s.write();
  const seen: number[] = [];
  await writePartition(root, s.inactive, "root", chunks(img), { length: img.length, sha256: sha(img) }, (b) => seen.push(b));
  assert.deepEqual(readFileSync(join(root, "dev/disk/by-partlabel/root-b")).subarray(0, img.length), img);
  assert.equal(statSync(join(root, "dev/disk/by-partlabel/root-b")).size, 1 << 20, "the partition is never truncated");
  assert.equal(seen.at(-1), img.length);
  const k = randomBytes(5000);
  await writeBootFile(root, s.inactive, "kernel", chunks(k, 999), { length: k.length, sha256: sha(k) });
  assert.deepEqual(readFileSync(join(root, "efi/caisson/b/vmlinuz")), k);

  const e = s.activateInactive(image("1.1.0"), 3);
  assert.ok(!readdirSync(join(root, "efi/loader/entries")).includes(e.file), "a transition changes memory only");
  s.write();
  assert.equal(e.file, "caisson-b+3.conf");
  assert.equal(e.generation, 2);
  const text = readFileSync(join(root, "efi/loader/entries/caisson-b+3.conf"), "utf8");
  assert.match(text, /^version 2$/m);
  assert.match(text, /caisson\.version=1\.1\.0/);
  assert.match(text, /caisson\.slot=b/);
  assert.equal(s.nextToBoot()?.slot, "b");
  assert.equal(BootSlots.load(root).nextToBoot()?.slot, "b", "and on disk");
  s.deactivateInactive();
  s.write();
  assert.deepEqual(readdirSync(join(root, "efi/loader/entries")), ["caisson-a.conf"]);
  assert.deepEqual(readFileSync(join(root, "dev/disk/by-partlabel/root-a")), aBefore);
  assert.deepEqual(readFileSync(join(root, "efi/loader/entries/caisson-a.conf")), aEntry);
});

test("refuses an image larger than the partition, more data than signed, a bad hash", async () => {
  const root = makeRoot(1000);
  const img = randomBytes(2000);
  await assert.rejects(writePartition(root, "b", "root", chunks(img), { length: 2000, sha256: sha(img) }), /larger than partition root-b/);
  const small = randomBytes(500);
  await assert.rejects(writePartition(root, "b", "root", chunks(Buffer.concat([small, small])), { length: 500, sha256: sha(small) }), /more data than the 500 bytes/);
  await assert.rejects(writePartition(root, "b", "root", chunks(small), { length: 500, sha256: "00".repeat(32) }), /read back sha256/);
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
    await assert.rejects(writePartition(root, "b", "root", slow, { length: img.length, sha256: sha(img) }), /ENOSPC/);
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
  assert.throws(() => BootSlots.load(root).rollbackToInactive(2), (e: unknown) => e instanceof SlotConflict && e.kind === "InactiveNotBootable" && e.slot === "b");
  writeFileSync(join(root, "efi/loader/entries/caisson-b.conf"), entryText({ slot: "b", generation: 0, title: "Caisson 0.9.0", roothash: "00", fsType: "erofs", extra: ["caisson.version=0.9.0"] }));
  const s = BootSlots.load(root);
  assert.equal(s.nextToBoot()?.slot, "a");
  const e = s.rollbackToInactive(2);
  s.write();
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
  writeFileSync(join(root, "efi/loader/entries", entryFileName({ slot: "b", triesLeft: 0, triesDone: 3 })), entryText({ slot: "b", generation: 5, title: "x", roothash: "00", fsType: "erofs", extra: ["caisson.version=1.1.0"] }));
  const s = BootSlots.load(root);
  assert.equal(s.failedTrial()?.version, "1.1.0");
  assert.equal(s.nextToBoot()?.slot, "a");
  assert.throws(() => s.rollbackToInactive(1), /no tries left/);
});

/** An EntryStore that records what write() does, in order. */
function recorder(): EntryStore & { ops: string[] } {
  const ops: string[] = [];
  return { ops, put: (f) => void ops.push(`put ${f}`), remove: (f) => void ops.push(`remove ${f}`), sync: () => void ops.push("sync") };
}

const file = (slot: "a" | "b", generation: number, version: string, tries?: { left: number; done?: number }) => ({
  file: entryFileName({ slot, triesLeft: tries?.left, triesDone: tries?.done }),
  text: entryText({ slot, generation, title: `Caisson ${version}`, roothash: "00", fsType: "erofs", extra: [`caisson.version=${version}`] }),
});

test("write(): new entries go in before old ones go, then one directory sync; nothing changed, nothing written", () => {
  // A crash left two entries of slot b; activation replaces both.
  const store = recorder();
  const s = new BootSlots("a", [file("a", 1, "1.0.0"), file("b", 2, "1.1.0", { left: 0, done: 3 }), file("b", 3, "1.1.0", { left: 1 })], store);
  assert.equal(s.entryOf("b")?.generation, 3, "of two entries, the newer generation counts");
  const e = s.activateInactive(image("1.2.0"), 2);
  assert.equal(e.generation, 4);
  assert.deepEqual(store.ops, [], "transitions are pure");
  s.write();
  assert.deepEqual(store.ops, ["put caisson-b+2.conf", "remove caisson-b+0-3.conf", "remove caisson-b+1.conf", "sync"]);
  store.ops.length = 0;
  s.write();
  assert.deepEqual(store.ops, [], "written already");
  s.clearInactive();
  s.write();
  assert.deepEqual(store.ops, ["remove caisson-b+2.conf", "sync"]);
  store.ops.length = 0;
  s.clearInactive();
  s.write();
  assert.deepEqual(store.ops, [], "nothing to remove: no directory sync");
});

test("activating over an entry of the same name rewrites it and removes nothing", () => {
  const store = recorder();
  const s = new BootSlots("a", [file("a", 1, "1.0.0"), file("b", 2, "1.1.0", { left: 3 })], store);
  s.activateInactive(image("1.1.0"), 3);
  s.write();
  assert.deepEqual(store.ops, ["put caisson-b+3.conf", "sync"]);
  assert.deepEqual(s.all().map((x) => x.file), ["caisson-a.conf", "caisson-b+3.conf"]);
});

test("the running slot on trial; status of both slots", () => {
  const s = new BootSlots("b", [file("a", 1, "1.0.0"), file("b", 2, "1.1.0", { left: 2, done: 1 })], recorder());
  assert.equal(s.activeOnTrial()?.file, "caisson-b+2-1.conf");
  assert.deepEqual(s.status().map((x) => [x.slot, x.active, x.nextToBoot]), [["a", false, false], ["b", true, true]]);
  assert.equal(new BootSlots("a", [file("a", 1, "1.0.0")], recorder()).activeOnTrial(), undefined, "blessed");
});
