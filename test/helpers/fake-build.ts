// Test helper: a stand-in for `caisson build --out DIR --slot-only` (which takes minutes and root):
// DIR/build.json in the BuildRecord shape plus small random slot files, so the repository tool,
// the update agent and the migrator can be tested against realistic input in milliseconds.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BuildRecord } from "../../src/image/build.js";
import { DEFAULT_LAYOUT } from "../../src/image/disk.js";

export interface FakeBuildOptions {
  version: string;
  variant?: string;
  /** Bytes of the fake root image (the other files are smaller). Default 64 KiB. */
  size?: number;
  arch?: string;
  bootTries?: number;
}

/** Writes a fake slot build into `dir` and returns its record (also in dir/build.json). */
export function fakeBuild(dir: string, o: FakeBuildOptions): BuildRecord {
  const variant = o.variant ?? "dev";
  const size = o.size ?? 64 * 1024;
  mkdirSync(dir, { recursive: true });
  const files: BuildRecord["files"] = {};
  const write = (key: string, name: string, bytes: number) => {
    const data = randomBytes(Math.max(1, bytes));
    writeFileSync(join(dir, name), data);
    files[key] = { path: name, size: data.length, sha256: createHash("sha256").update(data).digest("hex") };
  };
  write("root", "root.img", size);
  write("verity", "root.verity", Math.ceil(size / 64));
  write("vmlinuz", "vmlinuz", Math.ceil(size / 8));
  write("initrd", "initrd.img", Math.ceil(size / 4));
  writeFileSync(join(dir, "packages.lock"), "");
  files.packages = { path: "packages.lock", size: 0 };
  const record: BuildRecord = {
    variant,
    version: o.version,
    "build-id": createHash("sha256").update(`${variant}:${o.version}:${randomBytes(4).toString("hex")}`).digest("hex").slice(0, 12),
    arch: o.arch ?? "x86_64",
    "kernel-version": "6.1.0-fake-amd64",
    // A real root hash is the sha256 of the verity tree's top level: any 64 hex digits will do here.
    roothash: randomBytes(32).toString("hex"),
    "boot-tries": o.bootTries ?? 1,
    "kernel-parameters": ["console=tty0", "console=ttyS0", "security=selinux", "enforcing=1", `caisson.version=${o.version}`],
    files,
    layout: DEFAULT_LAYOUT,
    "rootfs-key": "fake",
    "stage-seconds": {},
  };
  writeFileSync(join(dir, "build.json"), JSON.stringify(record, null, 2) + "\n");
  return record;
}
