#!/usr/bin/env node
// Set-up for the main job and the tests on a fresh Debian 12 machine: the Debian tools Caisson's
// image build and QEMU runs need, installed with apt-get when missing (as root).
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const TOOLS = {
  mmdebstrap: "mmdebstrap",
  "qemu-system-x86_64": "qemu-system-x86",
  "qemu-img": "qemu-utils",
  "mkfs.erofs": "erofs-utils",
  veritysetup: "cryptsetup-bin",
  sgdisk: "gdisk",
  "mkfs.vfat": "dosfstools",
  mcopy: "mtools",
  "mkfs.ext4": "e2fsprogs",
  debugfs: "e2fsprogs",
  zstd: "zstd",
  openssl: "openssl",
  depmod: "kmod",
};
const FILES = { "/usr/share/OVMF/OVMF_CODE_4M.fd": "ovmf", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi": "systemd-boot-efi" };

// Looked up on PATH (and the sbin directories root's PATH may lack) without a shell.
const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"];
const have = (cmd) => dirs.some((d) => d && existsSync(join(d, cmd)));
const missing = new Set([
  ...Object.entries(TOOLS).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg),
  ...Object.entries(FILES).filter(([f]) => !existsSync(f)).map(([, pkg]) => pkg),
]);
if (missing.size === 0) process.exit(0);
const pkgs = [...missing];
if (process.getuid?.() !== 0) {
  console.error(`Caisson needs these Debian packages: ${pkgs.join(" ")}\nInstall them as root: apt-get install -y --no-install-recommends ${pkgs.join(" ")}`);
  process.exit(1);
}
console.error(`setup: installing ${pkgs.join(" ")} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
for (const args of [["update", "-q"], ["install", "-y", "-q", "--no-install-recommends", ...pkgs]]) {
  const r = spawnSync("apt-get", args, { stdio: ["ignore", "inherit", "inherit"], env });
  if (r.status !== 0) {
    console.error(`setup: apt-get ${args[0]} failed (exit ${r.status}); fix the machine's apt sources and run again`);
    process.exit(1);
  }
}
