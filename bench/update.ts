// Update write: the agent's path for a slot image (TUF target info, HTTP download from a local
// repository server, length cap and sha256 on the fly, 4 MiB writes into a pre-sized slot file,
// fsync, read-back verification) against `dd conv=fsync` + `sha256sum` of the same bytes into the
// same kind of file. Same run, alternated; the goal is >= 0.9 of the baseline's throughput
// (ratio of times <= 1/0.9).
import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { packageRoot } from "../src/fsutil/package-root.js";
import { MIB } from "../src/fsutil/units.js";
import { addUpdate, initRepository, readRepository, serveRepository } from "../src/repo/repository.js";
import { updatePaths } from "../src/update/manifest.js";
import { writePartition } from "../src/update/write.js";
import { TufClient } from "../src/update/tuf.js";
import { fakeBuild } from "../test/helpers/fake-build.js";
import { row, type BenchModule } from "./lib.js";

const run = promisify(execFile);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export const updateBench: BenchModule = {
  name: "update",
  description: "download + verify + write of a 256 MiB slot image vs dd conv=fsync + sha256sum",
  async run(o) {
    const size = (o.quick ? 64 : 256) * MIB;
    const rounds = o.quick ? 1 : 3;
    // On the project's disk, not /tmp (often tmpfs, where fsync costs nothing).
    const base = join(packageRoot(), ".cache", "bench-update");
    rmSync(base, { recursive: true, force: true });
    mkdirSync(base, { recursive: true });
    try {
      o.log(`update: making a ${size / MIB} MiB fake build and a signed repository`);
      fakeBuild(join(base, "build"), { version: "1.1.0", size });
      const repo = join(base, "repo");
      await initRepository(repo);
      await addUpdate(repo, { buildDir: join(base, "build"), waves: "none", progress: () => {} });
      const info = readRepository(repo);
      const target = info.targets.find((t) => t.name.endsWith("-root.erofs"))!;
      const published = join(info.targetsDir, `${target.sha256}.${target.name}`);
      const served = await serveRepository(repo, 0);

      const root = join(base, "root");
      mkdirSync(join(root, "dev/disk/by-partlabel"), { recursive: true });
      mkdirSync(join(root, "proc"), { recursive: true });
      mkdirSync(join(root, "usr/share/caisson/updates"), { recursive: true });
      writeFileSync(join(root, "proc/cmdline"), "caisson.slot=a\n");
      copyFileSync(info.rootJson, join(root, updatePaths.trustedRoot));
      const slot = join(root, "dev/disk/by-partlabel/root-b");
      const ddSlot = join(base, "dd-slot");
      // Pre-sized like a partition, and written once so both runs overwrite allocated blocks.
      // The baseline's file is exactly the image's size, so sha256sum hashes just those bytes.
      await run("dd", ["if=/dev/zero", `of=${slot}`, "bs=4M", `count=${size / (4 * MIB) + 1}`, "conv=fsync", "status=none"]);
      await run("dd", ["if=/dev/zero", `of=${ddSlot}`, "bs=4M", `count=${size / (4 * MIB)}`, "conv=fsync", "status=none"]);

      const ours: number[] = [];
      const base_: number[] = [];
      try {
        for (let i = 0; i < rounds; i++) {
          let t0 = performance.now();
          const tuf = new TufClient({ root, metadataBaseUrl: served.metadataUrl, targetsBaseUrl: served.targetsUrl });
          const t = await tuf.target(target.name);
          await writePartition(root, "b", "root", tuf.stream(t), t);
          ours.push((performance.now() - t0) / 1000);

          t0 = performance.now();
          await run("dd", [`if=${published}`, `of=${ddSlot}`, "bs=4M", "conv=fsync,notrunc", "status=none"]);
          const { stdout } = await run("sha256sum", [ddSlot]);
          base_.push((performance.now() - t0) / 1000);
          if (!stdout) throw new Error("sha256sum printed nothing");
          o.log(`update: round ${i + 1}: ours ${ours.at(-1)!.toFixed(2)} s, dd+sha256sum ${base_.at(-1)!.toFixed(2)} s`);
        }
      } finally {
        await served.close();
      }
      const ratio = median(base_) / median(ours);
      return {
        rows: [row(`write ${size / MIB} MiB slot image`, "s", median(ours), median(base_), 1 / 0.9)],
        meta: { bytes: size, rounds, ours_s: ours, baseline_s: base_, throughput_ratio: ratio, ours_mb_s: size / 1e6 / median(ours), baseline_mb_s: size / 1e6 / median(base_) },
        notes: [`throughput ours/baseline = ${ratio.toFixed(2)} (goal >= 0.9); ours includes HTTP, TUF metadata and a read-back verify, the baseline hashes the written file once`],
      };
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  },
};
