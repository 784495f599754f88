// The data partition grows to fill the disk at first boot (and after the disk is enlarged): the
// image ships a 1 GiB data partition; a VM's or a server's disk is usually much larger.
//
// systemd-repart.service grows the partition per /usr/lib/repart.d/50-data.conf, early in boot
// (it does on this image: seen in a QEMU boot, it finds the disk beneath the dm-verity root). The
// daemon, at start, grows the mounted ext4 into it (resize2fs, online) and reports the outcome in
// /boot-status. (Not `x-systemd.growfs` in fstab: /var is mounted in the initrd, whose growfs
// unit runs before repart and fails there, every boot.) The fallback: should the partition still
// stop short of the disk's end, the daemon runs repart itself, naming the disk.
import { existsSync, readFileSync, realpathSync, statfsSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { execFile } from "node:child_process";
import { MIB } from "../fsutil/units.js";
import type { DataPartitionReport } from "../protocol/types.js";

/** Where the data partition lies, from sysfs (512-byte sectors, as the kernel reports them). */
export interface DataGeometry {
  disk: string;
  partition: string;
  number: number;
  startSectors: number;
  sizeSectors: number;
  diskSectors: number;
}

export function dataGeometry(label = "data", dev = "/dev", sys = "/sys"): DataGeometry | undefined {
  const link = join(dev, "disk/by-partlabel", label);
  if (!existsSync(link)) return undefined;
  const partName = basename(realpathSync(link));
  const partSys = realpathSync(join(sys, "class/block", partName));
  const diskName = basename(dirname(partSys));
  const num = (p: string) => Number(readFileSync(p, "utf8").trim());
  return {
    disk: join(dev, diskName),
    partition: join(dev, partName),
    number: num(join(partSys, "partition")),
    startSectors: num(join(partSys, "start")),
    sizeSectors: num(join(partSys, "size")),
    diskSectors: num(join(sys, "class/block", diskName, "size")),
  };
}

/** More than 64 MiB unused after the partition (the backup GPT takes 33 sectors; repart aligns). */
export function partitionShort(g: DataGeometry): boolean {
  return g.diskSectors - (g.startSectors + g.sizeSectors) > 64 * 2048;
}

function exec(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(cmd, args, { timeout: 120_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${basename(cmd)} ${args.join(" ")}: ${(stderr || err.message).trim().split("\n").slice(-3).join("; ")}`)) : resolve(stdout),
    ),
  );
}

const filesystemBytes = (mountPoint: string) => {
  const s = statfsSync(mountPoint);
  return s.blocks * s.bsize;
};

export async function checkDataPartition(log: (s: string) => void, mountPoint = "/var"): Promise<DataPartitionReport | undefined> {
  let g = dataGeometry();
  if (!g) return undefined;
  const grown: string[] = [];
  if (partitionShort(g)) {
    log(`${g.partition} stops short of the end of ${g.disk}: growing it`);
    // The fallback leaves nothing to repart's own search for the disk: it is named.
    await exec("/usr/bin/systemd-repart", ["--dry-run=no", "--no-pager", "--definitions=/usr/lib/repart.d", g.disk]).catch((e: Error) => {
      // systemd 252 writes the table, then fails to make the kernel re-read a disk in use: partx does that.
      if (!/reread|busy/i.test(e.message)) throw e;
    });
    await exec("/usr/bin/partx", ["--update", "--nr", String(g.number), g.disk]);
    const before = g.sizeSectors;
    g = dataGeometry()!;
    if (g.sizeSectors > before) grown.push("partition");
    else log(`${g.partition} did not grow (${before} sectors before and after repart)`);
  }
  // ext4's statfs size excludes its own metadata (a few per cent): allow for it.
  if (filesystemBytes(mountPoint) < g.sizeSectors * 512 * 0.9) {
    log(`the filesystem on ${mountPoint} is smaller than ${g.partition}: resizing it`);
    await exec("/usr/sbin/resize2fs", [g.partition]);
    grown.push("filesystem");
  }
  const report = {
    disk: g.disk,
    partition: g.partition,
    "disk-mib": Math.round((g.diskSectors * 512) / MIB),
    "partition-mib": Math.round((g.sizeSectors * 512) / MIB),
    "filesystem-mib": Math.round(filesystemBytes(mountPoint) / MIB),
    grown,
  };
  log(`data partition ${report.partition}: ${report["partition-mib"]} MiB of ${report["disk-mib"]} MiB disk, filesystem ${report["filesystem-mib"]} MiB`);
  return report;
}
