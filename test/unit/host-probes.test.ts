// The host's probes of the machine, on fake /dev, /sys and /proc trees: where the data partition
// lies (and whether it stops short of the disk's end), and the memory of our processes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dataGeometry, partitionShort } from "../../src/host/grow-data.js";
import { memoryReport } from "../../src/host/memory.js";

function fakeDisk(diskSectors: number, start: number, size: number): { dev: string; sys: string } {
  const t = mkdtempSync(join(tmpdir(), "caisson-probe-"));
  const dev = join(t, "dev");
  const sys = join(t, "sys");
  mkdirSync(join(dev, "disk/by-partlabel"), { recursive: true });
  writeFileSync(join(dev, "vda6"), "");
  symlinkSync("../../vda6", join(dev, "disk/by-partlabel/data"));
  const part = join(sys, "devices/pci0000:00/virtio2/block/vda/vda6");
  mkdirSync(part, { recursive: true });
  writeFileSync(join(part, "partition"), "6\n");
  writeFileSync(join(part, "start"), `${start}\n`);
  writeFileSync(join(part, "size"), `${size}\n`);
  writeFileSync(join(part, "..", "size"), `${diskSectors}\n`);
  mkdirSync(join(sys, "class/block"), { recursive: true });
  symlinkSync(part, join(sys, "class/block/vda6"));
  symlinkSync(join(part, ".."), join(sys, "class/block/vda"));
  return { dev, sys };
}

test("data partition geometry comes from sysfs; a partition short of the disk's end is found", () => {
  const MiB = 2048;
  const small = fakeDisk(4096 * MiB, 1697 * MiB, 1024 * MiB);
  const g = dataGeometry("data", small.dev, small.sys)!;
  assert.equal(g.disk, join(small.dev, "vda"));
  assert.equal(g.partition, join(small.dev, "vda6"));
  assert.equal(g.number, 6);
  assert.equal(partitionShort(g), true);
  const full = fakeDisk(4096 * MiB, 1697 * MiB, 4096 * MiB - 1697 * MiB - 2048);
  assert.equal(partitionShort(dataGeometry("data", full.dev, full.sys)!), false);
  assert.equal(dataGeometry("nope", full.dev, full.sys), undefined);
});

test("memory report: PSS of the resident daemon and of the benchmark baseline, others transient", () => {
  const proc = mkdtempSync(join(tmpdir(), "caisson-proc-"));
  const p = (pid: number, argv: string[], pss: number, rss: number) => {
    mkdirSync(join(proc, String(pid)));
    writeFileSync(join(proc, String(pid), "cmdline"), argv.join("\0") + "\0");
    writeFileSync(join(proc, String(pid), "smaps_rollup"), `00400000-7ffd [rollup]\nRss:            ${rss} kB\nPss:            ${pss} kB\n`);
  };
  const node = "/usr/lib/caisson/node";
  p(10, [node, "/usr/lib/caisson/caisson-host.mjs", "daemon"], 70000, 90000);
  p(11, [node, "/usr/lib/caisson/bench-baseline.mjs"], 40000, 60000);
  p(12, [node, "/usr/lib/caisson/caisson-host.mjs", "health"], 30000, 50000);
  p(13, ["/usr/bin/containerd"], 20000, 30000);
  mkdirSync(join(proc, "self"));
  const r = memoryReport(node, proc);
  assert.deepEqual(r.agents.map((a) => a.pid), [10]);
  assert.equal(r["agents-pss-kib"], 70000);
  // The wire's casing (kebab-case, src/protocol/types.ts): what GET /diagnostics/memory answers.
  assert.deepEqual(Object.keys(r).sort(), ["agents", "agents-pss-kib", "baseline", "transient"]);
  assert.deepEqual(Object.keys(r.agents[0]!).sort(), ["pid", "program", "pss-kib", "rss-kib"]);
  assert.equal(r.baseline?.["pss-kib"], 40000);
  assert.deepEqual(r.transient.map((a) => a.program), ["caisson-host.mjs health"]);
});
