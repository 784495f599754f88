// Image benchmarks: build time (cold and cached), sizes, and boot to a ready API against the same
// image booted bare (our agents masked on its command line: same kernel, initrd, bootloader, disk
// and QEMU, nothing of ours running), in the same run, as ratios.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/fsutil/package-root.js";
import { readBuildRecord } from "../src/image/build.js";
import { DEFAULT_NETWORK_API_PORT } from "../src/settings/schema.js";
import { stageSlot } from "../test/helpers/offline.js";
import { alive, probeKvm, startVm, qmpCommand, freePort } from "../src/launch/qemu.js";
import { row, type BenchModule, type BenchRow } from "./lib.js";
import { launch, stop, instanceClient } from "../src/launch/instances.js";
import type { MemoryReport } from "../src/protocol/types.js";
import type { Path } from "../src/protocol/routes.js";
import { writeFileSync } from "node:fs";

/**
 * PSS of our resident agents against a bare node:http server on the same runtime in the same
 * guest (started by a fw_cfg file the benchmark hands over), after the host settles.
 */
async function guestMemory(disk: string, dir: string, accel: "kvm" | "tcg", log: (s: string) => void): Promise<MemoryReport[]> {
  process.env.CAISSON_STATE ??= join(dir, "state");
  const flag = join(dir, "bench-baseline");
  writeFileSync(flag, "1\n");
  const name = `bench-mem-${process.pid}`;
  await launch({ image: disk, name, memoryMiB: 1024, accel, timeoutMs: 480_000, fwCfg: { "opt/caisson/bench-baseline": flag }, log });
  try {
    const c = instanceClient(name);
    const samples: MemoryReport[] = [];
    // Let the health gate finish and the daemon go idle, then sample a few times.
    await new Promise((r) => setTimeout(r, 30_000));
    for (let i = 0; i < 3; i++) {
      await c.request("GET", "/settings"); // the daemon has served requests, as in use
      const memory: Path = "/diagnostics/memory";
      const r = await c.request("GET", memory);
      samples.push(JSON.parse(r.body) as MemoryReport);
      await new Promise((res) => setTimeout(res, 5_000));
    }
    return samples;
  } finally {
    await stop(name, 0).catch(() => undefined);
  }
}

const ROOT = packageRoot();

async function bootUntil(disk: string, dir: string, marker: RegExp, accel: "kvm" | "tcg", timeoutMs = 480_000): Promise<number> {
  const t0 = Date.now();
  const vm = await startVm({ dir, image: disk, memoryMiB: 1024, accel, apiPort: await freePort(), guestApiPort: DEFAULT_NETWORK_API_PORT });
  try {
    while (Date.now() - t0 < timeoutMs) {
      if (existsSync(vm.console) && marker.test(readFileSync(vm.console, "latin1"))) return (Date.now() - t0) / 1000;
      if (!alive(vm.pid)) throw new Error(`QEMU exited; see ${vm.console}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`no ${marker} on the console within ${timeoutMs / 1000} s (${vm.console})`);
  } finally {
    await qmpCommand(vm.qmp, "quit");
  }
}

export const imageBench: BenchModule = {
  name: "image",
  description: "build time and sizes; boot to API ready vs the same image booted bare (QEMU, same run)",
  run: async (o) => {
    const out = mkdtempSync(join(tmpdir(), "caisson-bench-image-"));
    const t0 = Date.now();
    const b = spawnSync(process.execPath, [join(ROOT, "dist/src/cli/caisson.js"), "build", "--out", out], { stdio: ["ignore", "ignore", "inherit"] });
    if (b.status !== 0) throw new Error("caisson build failed");
    const cachedSeconds = (Date.now() - t0) / 1000;
    const build = readBuildRecord(out);
    const cacheDir = join(ROOT, ".cache/image", readdirSync(join(ROOT, ".cache/image")).find((d) => d.endsWith(build["rootfs-key"]))!);
    const rootfsSeconds = (JSON.parse(readFileSync(join(cacheDir, "key.json"), "utf8")) as { "build-seconds"?: number })["build-seconds"] ?? Number.NaN;
    const rootBytes = statSync(join(out, "root.img")).size;
    const treeBytes = Number(spawnSync("du", ["-sb", join(cacheDir, "tree")], { encoding: "utf8" }).stdout.split("\t")[0]);
    const diskAllocated = Number(spawnSync("du", ["-B1", join(out, "disk.img")], { encoding: "utf8" }).stdout.split("\t")[0]);
    const rows: BenchRow[] = [
      row("build, cached package tree", "s", cachedSeconds, rootfsSeconds + cachedSeconds),
      row("root image (erofs lz4hc) vs package tree", "MiB", rootBytes / 2 ** 20, treeBytes / 2 ** 20),
      row("disk image allocated vs apparent", "MiB", diskAllocated / 2 ** 20, statSync(join(out, "disk.img")).size / 2 ** 20),
    ];
    const notes = [`cold build = mmdebstrap package tree (${rootfsSeconds.toFixed(0)} s, when it was built) + the cached build`];

    // Boot: ours to "API ready" on the console; bare = the same disk with our units masked, to multi-user.
    const accel = (await probeKvm(join(out, "vmlinuz"), o.resultsDir)).ok ? "kvm" : "tcg";
    const bare = join(out, "bare.img");
    copyFileSync(join(out, "disk.img"), bare);
    await stageSlot(bare, build.layout, { root: join(out, "root.img"), verity: join(out, "root.verity"), vmlinuz: join(out, "vmlinuz"), initrd: join(out, "initrd.img") }, {
      slot: "a",
      generation: 1,
      title: "bare",
      roothash: build.roothash,
      fsType: "erofs",
      extra: [...build["kernel-parameters"], "systemd.mask=caisson-host.service", "systemd.mask=caisson-health.service"],
    });
    const runs = o.quick ? 1 : 2;
    const ours: number[] = [];
    const bareT: number[] = [];
    for (let i = 0; i < runs; i++) {
      ours.push(await bootUntil(join(out, "disk.img"), join(out, `vm-ours-${i}`), /API ready on \/run\/api\.sock/, accel));
      bareT.push(await bootUntil(bare, join(out, `vm-bare-${i}`), /Reached target .*multi-user\.target/, accel));
      o.log(`boot ${i + 1}/${runs}: ours ${ours[i]!.toFixed(1)} s, bare ${bareT[i]!.toFixed(1)} s`);
    }
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    rows.push(row(`boot to API ready (${accel}) vs bare to multi-user`, "s", mean(ours), mean(bareT), 1.2));
    notes.push(`boots: ${runs} of each, alternating, UEFI + systemd-boot, 1 GiB, 2 vCPUs, ${accel}`);
    const mem = await guestMemory(join(out, "disk.img"), out, accel, o.log);
    const last = mem[mem.length - 1]!;
    if (!last.baseline) throw new Error("the bench baseline server did not run in the guest (caisson-bench-baseline.service)");
    const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
    rows.push(
      row("PSS of resident agents vs bare node:http (guest)", "MiB", median(mem.map((m) => m["agents-pss-kib"])) / 1024, median(mem.map((m) => m.baseline?.["pss-kib"] ?? Number.NaN)) / 1024, 1.3),
    );
    notes.push(`memory: ${last.agents.length} resident agent process(es) (${last.agents.map((a) => a.program).join(", ")}): ${(last["agents-pss-kib"] / 1024).toFixed(0)} MiB PSS / ${(last.agents.reduce((s, a) => s + a["rss-kib"], 0) / 1024).toFixed(0)} MiB RSS vs baseline ${(last.baseline["rss-kib"] / 1024).toFixed(0)} MiB RSS`);
    return { rows, meta: { accel, roothash: build.roothash }, notes };
  },
};
