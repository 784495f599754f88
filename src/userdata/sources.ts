// Where user data comes from on a real host, in the order read (a later source overrides):
// the data partition's local file (bare metal provisioning writes it), a config drive (a small
// filesystem labelled CAISSON-UD, for metal and hypervisors without fw_cfg), QEMU's fw_cfg.
// Each reads at most MAX_USER_DATA_BYTES + 1 bytes (readBounded); parseUserData refuses more.
import { existsSync, lstatSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileSource, readBounded, type UserDataSource } from "./userdata.js";
import { hostPaths } from "../fsutil/paths.js";

export const FW_CFG_NAME = "opt/caisson/user-data";
/** What `caisson launch` hands over besides the user's own user data (the network API's certificates). */
export const FW_CFG_LAUNCH_NAME = "opt/caisson/launch-user-data";
export const CONFIG_DRIVE_LABEL = "CAISSON-UD";

export function fwCfgSource(name = FW_CFG_NAME, sysfs = "/sys/firmware/qemu_fw_cfg"): UserDataSource {
  const path = join(sysfs, "by_name", name, "raw");
  return { name: `QEMU fw_cfg ${name}`, read: () => (existsSync(path) ? readBounded(path) : undefined) };
}

export function configDriveSource(mountPoint = `/${hostPaths.configDrive}`): UserDataSource {
  const dev = `/dev/disk/by-label/${CONFIG_DRIVE_LABEL}`;
  return {
    name: `config drive ${CONFIG_DRIVE_LABEL}`,
    read: () => {
      if (!existsSync(dev)) return undefined;
      mkdirSync(mountPoint, { recursive: true });
      execFileSync("/usr/bin/mount", ["-o", "ro,nosuid,nodev,noexec", dev, mountPoint]);
      try {
        for (const f of ["user-data.toml", "user-data"]) {
          const p = join(mountPoint, f);
          // lstat: a symbolic link on the drive would point into the host's own files.
          if (existsSync(p) && !lstatSync(p).isFile()) throw new Error(`${p} on the config drive is not a regular file`);
          if (existsSync(p)) return readBounded(p);
        }
        return undefined;
      } finally {
        execFileSync("/usr/bin/umount", [mountPoint]);
      }
    },
  };
}

export function imageUserDataSources(): UserDataSource[] {
  return [fileSource(`/${hostPaths.localUserData}`), configDriveSource(), fwCfgSource(FW_CFG_LAUNCH_NAME), fwCfgSource()];
}
