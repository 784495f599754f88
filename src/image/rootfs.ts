// Stage "rootfs": the Debian 12 package set of a variant, installed with mmdebstrap, plus what is
// built inside it (the initrd with dracut). Cached by a key
// over everything that goes in, so a rebuild of the image reuses it.
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./run.js";
import type { Progress } from "./progress.js";

export const SUITE = "bookworm";
export const MIRRORS = [
  "deb http://deb.debian.org/debian bookworm main",
  "deb http://deb.debian.org/debian bookworm-updates main",
  "deb http://deb.debian.org/debian-security bookworm-security main",
];

// Drivers the initrd needs to find and check the root on VMs and common servers.
const INITRD_DRIVERS = "virtio_blk virtio_pci virtio_scsi sd_mod ahci nvme dm_mod dm_verity dm_bufio erofs squashfs ext4";
const INITRD_MODULES = "systemd systemd-initrd systemd-veritysetup dracut-systemd base fs-lib rootfs-block udev-rules dm";

export function readPackageList(path: string): string[] {
  return readFileSync(path, "utf8")
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter(Boolean);
}

export interface RootfsInput {
  imageDir: string;
  variant: string;
  cacheDir: string;
}

export interface Rootfs {
  dir: string;
  kernelVersion: string;
  /** name=version of every installed package, sorted (recorded with the build). */
  packages: string;
  key: string;
}

export function rootfsKey(i: RootfsInput): { key: string; include: string[]; buildOnly: string[] } {
  const include = [
    ...readPackageList(join(i.imageDir, "packages/base.txt")),
    ...readPackageList(join(i.imageDir, `packages/${i.variant}.txt`)),
  ];
  const buildOnly = readPackageList(join(i.imageDir, "packages/build-only.txt"));
  const h = createHash("sha256");
  h.update(JSON.stringify({ recipe: 1, SUITE, MIRRORS, include, buildOnly, INITRD_DRIVERS, INITRD_MODULES }));
  return { key: h.digest("hex").slice(0, 16), include, buildOnly };
}

export async function buildRootfs(i: RootfsInput, progress: Progress): Promise<Rootfs & { cached: boolean }> {
  const { key, include, buildOnly } = rootfsKey(i);
  const dir = join(i.cacheDir, `rootfs-${i.variant}-${key}`);
  const tree = join(dir, "tree");
  const lock = join(dir, "packages.lock");
  if (existsSync(lock)) return { ...describe(tree, lock, key), cached: true };

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, "tree.tmp");
  await run(
    "mmdebstrap",
    [
      "--variant=minbase",
      "--mode=root",
      `--include=${[...include, ...buildOnly].join(",")}`,
      "--dpkgopt=path-exclude=/usr/share/man/*",
      "--dpkgopt=path-exclude=/usr/share/doc/*",
      "--dpkgopt=path-include=/usr/share/doc/*/copyright",
      "--dpkgopt=path-exclude=/usr/share/locale/*",
      "--dpkgopt=path-exclude=/usr/share/info/*",
      // mmdebstrap's hooks run in its own shell on the build machine (never on the host image).
      `--customize-hook=chroot "$1" dracut --force --no-hostonly --kver "$(ls "$1"/lib/modules)" -m "${INITRD_MODULES}" --add-drivers "${INITRD_DRIVERS}" --no-early-microcode --compress zstd /boot/initrd-caisson.img`,
      `--customize-hook=chroot "$1" dpkg-query -W -f='\${Package}=\${Version}\\n' | sort > "${lock}.tmp"`,
      SUITE,
      tmp,
      ...MIRRORS,
    ],
    { onLine: (l) => progress.detail(l) },
  );
  renameSync(tmp, tree);
  renameSync(`${lock}.tmp`, lock);
  writeFileSync(join(dir, "key.json"), JSON.stringify({ key, include, buildOnly, "build-seconds": progress.elapsed() }, null, 2));
  return { ...describe(tree, lock, key), cached: false };
}

function describe(tree: string, lock: string, key: string): Rootfs {
  const kernels = readdirSync(join(tree, "lib/modules"));
  if (kernels.length !== 1) throw new Error(`expected one kernel in ${tree}/lib/modules, found ${kernels.join(", ")}`);
  return { dir: tree, kernelVersion: kernels[0]!, packages: readFileSync(lock, "utf8"), key };
}
