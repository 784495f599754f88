// `caisson build`: the image pipeline, as named stages with progress and a cache:
//   rootfs (cached) → finalize → seal (erofs + verity) → disk (GPT: ESP, A/B slots, data)
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildRootfs } from "./rootfs.js";
import { finalize, type Branding } from "./finalize.js";
import { assembleDisk, DEFAULT_LAYOUT, partitions, sealRoot, type DiskLayout } from "./disk.js";
import { Progress } from "./progress.js";
import type { SlotBoot } from "../boot/entries.js";
import { packageRoot } from "../fsutil/package-root.js";
import { isSemver } from "../update/version.js";

export interface BuildOptions {
  variant: string;
  version: string;
  out: string;
  cacheDir: string;
  bootTries: number;
  branding: Branding;
  buildId?: string;
  layout?: DiskLayout;
  /** Skip the disk: only the slot artifacts (what an update carries). */
  slotOnly?: boolean;
  /** TUF root.json the update agent trusts (`caisson repo init` made it). */
  updateRoot?: string;
  /** SELinux mode the image boots in (permissive only to collect denials while developing policy). */
  selinux?: "enforcing" | "permissive";
}

/** What a build wrote, recorded in <out>/build.json (the update repository tool reads it). */
export interface BuildRecord {
  variant: string;
  version: string;
  "build-id": string;
  arch: string;
  "kernel-version": string;
  roothash: string;
  "boot-tries": number;
  "kernel-parameters": string[];
  files: Record<string, { path: string; size: number; sha256?: string }>;
  layout: DiskLayout;
  "rootfs-key": string;
  "stage-seconds": Record<string, number>;
}

/** The slot's files, as build.json's `files` names them: what an update carries. */
const SLOT_FILES = ["root", "verity", "vmlinuz", "initrd"] as const;
export type SlotFile = (typeof SLOT_FILES)[number];

/**
 * Read and check <dir>/build.json: the fields the repository tool and the offline slot tools use,
 * and that the slot files it names exist beside it. Throws naming what is wrong.
 */
export function readBuildRecord(dir: string): BuildRecord {
  const path = join(dir, "build.json");
  if (!existsSync(path)) throw new Error(`${path} not found: not the output directory of \`caisson build --out DIR\``);
  let b: BuildRecord;
  try {
    b = JSON.parse(readFileSync(path, "utf8")) as BuildRecord;
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (!b || typeof b !== "object") throw new Error(`${path} holds no JSON object`);
  for (const f of ["variant", "version", "arch", "roothash"] as const) {
    if (typeof b[f] !== "string" || b[f] === "") throw new Error(`${path}: "${f}" is missing`);
  }
  if (!Array.isArray(b["kernel-parameters"])) throw new Error(`${path}: "kernel-parameters" is missing`);
  if (!Number.isInteger(b["boot-tries"])) throw new Error(`${path}: "boot-tries" is missing`);
  for (const key of SLOT_FILES) {
    const f = b.files?.[key];
    if (!f) throw new Error(`${path}: files.${key} is missing (was the build interrupted?)`);
    if (!existsSync(join(dir, f.path))) throw new Error(`${join(dir, f.path)} (files.${key} of ${path}) does not exist`);
  }
  return b;
}

/** Kernel parameters every slot boots with (the verity ones come from the slot). */
function baseKernelParameters(selinux: "enforcing" | "permissive" = "enforcing"): string[] {
  // printk_ratelimit=0: with no auditd, AVC denials reach the console only unthrottled.
  return ["console=tty0", "console=ttyS0", "security=selinux", `enforcing=${selinux === "enforcing" ? 1 : 0}`, "sysctl.kernel.printk_ratelimit=0"];
}

export async function buildImage(o: BuildOptions): Promise<BuildRecord> {
  if (!isSemver(o.version)) throw new Error(`--version ${o.version} is not a semantic version (X.Y.Z)`);
  const imageDir = join(packageRoot(), "image");
  const out = resolve(o.out);
  const work = join(out, ".work");
  mkdirSync(out, { recursive: true });
  const progress = new Progress(o.slotOnly ? 3 : 4);

  progress.stage("rootfs", "Debian 12 packages with mmdebstrap (minutes on the first build; cached after)");
  const rootfs = await buildRootfs({ imageDir, variant: o.variant, cacheDir: o.cacheDir }, progress);
  progress.done(rootfs.cached);

  // Same cached rootfs and inputs → same build id, timestamps, root image and root hash.
  const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Math.floor(statSync(join(rootfs.dir, "..", "packages.lock")).mtimeMs / 1000));
  const buildId = o.buildId ?? createHash("sha256").update(`${rootfs.key}:${o.variant}:${o.version}`).digest("hex").slice(0, 12);

  progress.stage("finalize", "purge the package manager, add agents, units and os-release");
  const tree = join(work, "tree");
  await finalize({
    rootfs: rootfs.dir,
    kernelVersion: rootfs.kernelVersion,
    imageDir,
    tree,
    bootDir: out,
    variant: o.variant,
    version: o.version,
    buildId,
    branding: o.branding,
    bootTries: o.bootTries,
    updateRoot: o.updateRoot,
    onLine: (l) => progress.detail(l),
  });
  progress.done();

  progress.stage("seal", "erofs root with SELinux labels, dm-verity hash tree");
  const sealed = await sealRoot(tree, out, epoch, `${o.variant}`, (l) => progress.detail(l));
  progress.done();

  const boot: SlotBoot = {
    slot: "a",
    generation: 1,
    title: `${o.branding.name} ${o.version} (${o.variant})`,
    roothash: sealed.roothash,
    fsType: "erofs",
    extra: [...baseKernelParameters(o.selinux), `caisson.version=${o.version}`],
  };
  const layout = o.layout ?? DEFAULT_LAYOUT;
  if (!o.slotOnly) {
    progress.stage("disk", "GPT: ESP, slot A, empty slot B, data partition");
    await assembleDisk({
      out: join(out, "disk.img"),
      work,
      layout,
      slotA: { ...sealed, vmlinuz: join(out, "vmlinuz"), initrd: join(out, "initrd.img"), boot },
      bootloader: join(tree, "usr/lib/systemd/boot/efi/systemd-bootx64.efi"),
    });
    progress.done();
  }
  copyFileSync(join(rootfs.dir, "..", "packages.lock"), join(out, "packages.lock"));
  copyFileSync(join(tree, "usr/lib/os-release"), join(out, "os-release"));

  const file = (name: string, hash = false) => ({
    path: name,
    size: statSync(join(out, name)).size,
    ...(hash ? { sha256: createHash("sha256").update(readFileSync(join(out, name))).digest("hex") } : {}),
  });
  const record: BuildRecord = {
    variant: o.variant,
    version: o.version,
    "build-id": buildId,
    arch: "x86_64",
    "kernel-version": rootfs.kernelVersion,
    roothash: sealed.roothash,
    "boot-tries": o.bootTries,
    "kernel-parameters": boot.extra,
    files: {
      root: file("root.img", true),
      verity: file("root.verity", true),
      vmlinuz: file("vmlinuz", true),
      initrd: file("initrd.img", true),
      packages: file("packages.lock"),
      ...(o.slotOnly ? {} : { disk: file("disk.img") }),
    },
    layout,
    "rootfs-key": rootfs.key,
    "stage-seconds": progress.timings,
  };
  writeFileSync(join(out, "build.json"), JSON.stringify(record, null, 2) + "\n");
  rmSync(work, { recursive: true, force: true });
  process.stderr.write(
    `built ${o.branding.name} ${o.version} (${o.variant}) in ${progress.elapsed().toFixed(0)} s: ${join(out, o.slotOnly ? "root.img" : "disk.img")}\n` +
      `  root hash ${sealed.roothash}; partitions ${partitions(layout).map((p) => `${p.label} ${p.sizeMiB}M`).join(", ")}\n`,
  );
  return record;
}
