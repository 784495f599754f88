// Stages "seal" and "disk": the slot's read-only root (erofs with SELinux labels, dm-verity hash
// tree), then the GPT disk — ESP, slot A (root + hash), slot B (root + hash), data — assembled in a
// file without loop devices or mounts (sgdisk, mkfs on files, mtools, dd at offsets).
import { createHash } from "node:crypto";
import { readFileSync, rmSync, writeFileSync, statSync, truncateSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { run } from "./run.js";
import { entryFileName, entryText, LOADER_CONF, type SlotBoot } from "../boot/entries.js";
import { MIB } from "../fsutil/units.js";

/** Partition plan in MiB. Slots are sized for future, larger updates, not just this root. */
export interface DiskLayout {
  espMiB: number;
  rootMiB: number;
  verityMiB: number;
  dataMiB: number;
}

export const DEFAULT_LAYOUT: DiskLayout = { espMiB: 128, rootMiB: 768, verityMiB: 16, dataMiB: 1024 };

const GPT_TYPES = {
  esp: "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
  root: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", // x86-64 root (Discoverable Partitions)
  verity: "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5", // x86-64 root verity
  data: "0FC63DAF-8483-4772-8E79-3D69D8477DE4", // Linux filesystem
};

export interface Partition {
  number: number;
  label: string;
  type: string;
  startMiB: number;
  sizeMiB: number;
}

export function partitions(l: DiskLayout): Partition[] {
  const out: Partition[] = [];
  let at = 1;
  const add = (label: string, type: string, sizeMiB: number) => {
    out.push({ number: out.length + 1, label, type, startMiB: at, sizeMiB });
    at += sizeMiB;
  };
  add("esp", GPT_TYPES.esp, l.espMiB);
  add("root-a", GPT_TYPES.root, l.rootMiB);
  add("root-a-verity", GPT_TYPES.verity, l.verityMiB);
  add("root-b", GPT_TYPES.root, l.rootMiB);
  add("root-b-verity", GPT_TYPES.verity, l.verityMiB);
  add("data", GPT_TYPES.data, l.dataMiB);
  return out;
}

/** mtools on image files: no drive geometry checks (our FAT images are made by mkfs.vfat on files). */
export const mtoolsEnv = (): NodeJS.ProcessEnv => ({ ...process.env, MTOOLS_SKIP_CHECK: "1" });

/** Write `file` into the disk image at the start of partition `label` (sparse, in place). */
export function writeAtPartition(disk: string, layout: DiskLayout, label: string, file: string): Promise<string> {
  const p = partitions(layout).find((x) => x.label === label);
  if (!p) throw new Error(`no partition ${label}`);
  return run("dd", [`if=${file}`, `of=${disk}`, "bs=1M", `seek=${p.startMiB}`, "conv=notrunc,sparse", "status=none"]);
}

/** A stable UUID from a name: builds are reproducible, so nothing random goes in. */
function stableUuid(name: string): string {
  const h = createHash("sha256").update(`caisson:${name}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface SealedRoot {
  root: string;
  verity: string;
  roothash: string;
}

/** erofs (lz4hc) with SELinux labels from the tree's own file_contexts, then its dm-verity hash tree. */
export async function sealRoot(tree: string, outDir: string, epoch: number, id: string, onLine?: (l: string) => void): Promise<SealedRoot> {
  const root = join(outDir, "root.img");
  const verity = join(outDir, "root.verity");
  rmSync(root, { force: true });
  rmSync(verity, { force: true });
  await run(
    "mkfs.erofs",
    ["-zlz4hc", `-T${epoch}`, "-U", stableUuid(`erofs:${id}`), `--file-contexts=${join(tree, "etc/selinux/default/contexts/files/file_contexts")}`, "--quiet", root, tree],
    { onLine },
  );
  const hashFile = join(outDir, "roothash");
  // A fixed salt and UUID: the same tree gives the same root hash (reproducible builds).
  const salt = createHash("sha256").update(`caisson-verity-salt:${id}`).digest("hex");
  await run("veritysetup", ["format", root, verity, `--salt=${salt}`, `--uuid=${stableUuid(`verity:${id}`)}`, `--root-hash-file=${hashFile}`]);
  return { root, verity, roothash: readFileSync(hashFile, "utf8").trim() };
}

export interface DiskInput {
  out: string;
  work: string;
  layout: DiskLayout;
  slotA: SealedRoot & { vmlinuz: string; initrd: string; boot: SlotBoot };
  /** systemd-boot's EFI binary, from the image's own systemd-boot package. */
  bootloader: string;
  onLine?: (l: string) => void;
}

/**
 * Run by a firmware's UEFI shell when every boot option failed (OVMF and some machines drop to a
 * shell): systemd-boot returns to the firmware when an entry's kernel or initrd fails to load, and
 * that try is already counted, so running it again boots the other slot in the same power-on
 * instead of stopping at the shell prompt. Only once: if it fails again, the shell stays.
 */
export const STARTUP_NSH = "@echo -off\r\necho Caisson: the boot loader returned to the firmware; running it again (the failed entry's try is spent)\r\nfs0:\\EFI\\BOOT\\BOOTX64.EFI\r\n";

export async function assembleDisk(i: DiskInput): Promise<void> {
  const parts = partitions(i.layout);
  const part = (label: string) => parts.find((p) => p.label === label)!;
  for (const [label, file] of [["root-a", i.slotA.root], ["root-a-verity", i.slotA.verity]] as const) {
    if (statSync(file).size > part(label).sizeMiB * MIB) throw new Error(`${file} does not fit partition ${label} (${part(label).sizeMiB} MiB): raise the layout's size`);
  }
  mkdirSync(i.work, { recursive: true });
  const env = mtoolsEnv();

  // ESP: systemd-boot at the removable-media path (no NVRAM entry needed), loader.conf, slot A.
  const esp = join(i.work, "esp.img");
  rmSync(esp, { force: true });
  await run("mkfs.vfat", ["-F", "32", "-n", "ESP", "-i", "CA155011", "-C", esp, String(i.layout.espMiB * 1024)]);
  await run("mmd", ["-i", esp, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries", "::/caisson", "::/caisson/a", "::/caisson/b"], { env });
  writeFileSync(join(i.work, "loader.conf"), LOADER_CONF);
  writeFileSync(join(i.work, "startup.nsh"), STARTUP_NSH);
  writeFileSync(join(i.work, "entry-a.conf"), entryText(i.slotA.boot));
  const copies: [string, string][] = [
    [i.bootloader, "::/EFI/BOOT/BOOTX64.EFI"],
    [join(i.work, "loader.conf"), "::/loader/loader.conf"],
    [join(i.work, "startup.nsh"), "::/startup.nsh"],
    [i.slotA.vmlinuz, "::/caisson/a/vmlinuz"],
    [i.slotA.initrd, "::/caisson/a/initrd.img"],
    // The first slot is good by construction: blessed, no try counter.
    [join(i.work, "entry-a.conf"), `::/loader/entries/${entryFileName({ slot: "a" })}`],
  ];
  for (const [from, to] of copies) await run("mcopy", ["-o", "-i", esp, from, to], { env });

  // Data partition: ext4, labelled, its root given the SELinux type of /var (no host SELinux needed).
  const data = join(i.work, "data.img");
  rmSync(data, { force: true });
  await run("mkfs.ext4", ["-q", "-L", "data", "-U", stableUuid("data"), "-E", "root_owner=0:0", "-F", data, `${i.layout.dataMiB}M`]);
  await run("debugfs", ["-w", "-R", "ea_set / security.selinux system_u:object_r:var_t:s0", data]);
  await run("debugfs", ["-w", "-R", "ea_set /lost+found security.selinux system_u:object_r:lost_found_t:s0", data]);
  // The journal's directories exist, labelled, before journald (started before tmpfiles) looks for them.
  for (const [dir, type] of [["/log", "var_log_t"], ["/log/journal", "var_log_t"], ["/lib", "var_lib_t"]] as const) {
    await run("debugfs", ["-w", "-R", `mkdir ${dir}`, data]);
    await run("debugfs", ["-w", "-R", `ea_set ${dir} security.selinux system_u:object_r:${type}:s0`, data]);
  }

  // GPT, then each piece written at its partition's offset (sparse: empty slot B costs nothing).
  const totalMiB = parts[parts.length - 1]!.startMiB + parts[parts.length - 1]!.sizeMiB + 1;
  rmSync(i.out, { force: true });
  writeFileSync(i.out, "");
  truncateSync(i.out, totalMiB * MIB);
  const sg = ["-Z", i.out];
  await run("sgdisk", sg);
  const args = ["-U", stableUuid("disk")];
  for (const p of parts) {
    args.push("-n", `${p.number}:${p.startMiB * 2048}:${(p.startMiB + p.sizeMiB) * 2048 - 1}`, "-t", `${p.number}:${p.type}`, "-c", `${p.number}:${p.label}`, "-u", `${p.number}:${stableUuid(`part:${p.label}`)}`);
  }
  await run("sgdisk", [...args, i.out]);
  const put = (file: string, label: string) => writeAtPartition(i.out, i.layout, label, file);
  await put(esp, "esp");
  await put(i.slotA.root, "root-a");
  await put(i.slotA.verity, "root-a-verity");
  await put(data, "data");
}
