// Running a Caisson disk image under QEMU: UEFI (OVMF, a writable copy of its variables), the disk
// as a copy-on-write overlay, virtio, user-mode network with a loopback port forwarded to the
// network API, user data through fw_cfg, the serial console to a file. KVM only when a probe with
// a time limit shows it really works here (nested KVM can hang); TCG otherwise.
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, mkdirSync, openSync, closeSync } from "node:fs";
import { join } from "node:path";
import { connect, createServer } from "node:net";
import { run } from "../image/run.js";
import { FW_CFG_LAUNCH_NAME, FW_CFG_NAME } from "../userdata/sources.js";

export const OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd";
export const OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd";
export const QEMU = "qemu-system-x86_64";

export type Accel = "kvm" | "tcg";

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Does KVM really run guests here? Boot the image's kernel with no root under KVM: it must panic
 * (and QEMU exit, -no-reboot) within the time limit. The answer is cached per host boot.
 */
export async function probeKvm(kernel: string, cacheDir: string, timeoutMs = 20_000): Promise<{ ok: boolean; why: string }> {
  if (!existsSync("/dev/kvm")) return { ok: false, why: "no /dev/kvm" };
  const bootId = existsSync("/proc/sys/kernel/random/boot_id") ? readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim() : "unknown";
  const cache = join(cacheDir, "kvm-probe.json");
  if (existsSync(cache)) {
    const c = JSON.parse(readFileSync(cache, "utf8")) as { bootId: string; ok: boolean; why: string };
    if (c.bootId === bootId) return c;
  }
  const result = await new Promise<{ ok: boolean; why: string }>((resolve) => {
    const child = spawn(QEMU, ["-accel", "kvm", "-m", "256", "-nographic", "-no-reboot", "-nic", "none", "-kernel", kernel, "-append", "console=ttyS0 panic=-1"], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve({ ok: false, why: `a KVM guest did not finish booting its kernel within ${timeoutMs / 1000} s (nested KVM hangs here)` });
    }, timeoutMs);
    child.on("close", () => {
      clearTimeout(timer);
      resolve(/Kernel panic|VFS: Unable to mount root/.test(out) ? { ok: true, why: "a KVM guest booted its kernel" } : { ok: false, why: "KVM guest did not boot its kernel" });
    });
  });
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(cache, JSON.stringify({ bootId, ...result }));
  return result;
}

export interface VmSpec {
  dir: string;
  image: string;
  memoryMiB: number;
  accel: Accel;
  apiPort: number;
  /** Guest port of the network API. */
  guestApiPort: number;
  launchUserData?: string;
  userData?: string;
  /** Size of the guest's disk (the overlay); larger than the image's: the data partition grows into it. */
  diskGiB?: number;
  /** More QEMU fw_cfg files (name → host file), e.g. opt/caisson/bench-baseline for the benchmark. */
  fwCfg?: Record<string, string>;
  /** Direct kernel boot (no bootloader, so no boot counting): kernel, initrd, command line. */
  direct?: { kernel: string; initrd: string; append: string };
}

export interface Vm {
  pid: number;
  console: string;
  qmp: string;
}

/** Create the instance's overlay and firmware variables (once), then start QEMU detached. */
export async function startVm(s: VmSpec): Promise<Vm> {
  mkdirSync(s.dir, { recursive: true });
  const disk = join(s.dir, "disk.qcow2");
  const vars = join(s.dir, "OVMF_VARS.fd");
  if (!existsSync(disk)) await run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", s.image, "-F", "raw", disk, ...(s.diskGiB ? [`${s.diskGiB}G`] : [])]);
  if (!existsSync(vars)) writeFileSync(vars, readFileSync(OVMF_VARS));
  const consoleLog = join(s.dir, "console.log");
  const qmp = join(s.dir, "qmp.sock");
  const args = [
    "-name", `caisson-${s.dir.split("/").pop()}`,
    "-accel", s.accel,
    "-machine", "q35",
    ...(s.accel === "kvm" ? ["-cpu", "host"] : []),
    "-m", String(s.memoryMiB),
    "-smp", "2",
    "-display", "none",
    "-monitor", "none",
    "-serial", `file:${consoleLog}`,
    "-qmp", `unix:${qmp},server=on,wait=off`,
    "-drive", `if=pflash,format=raw,readonly=on,file=${OVMF_CODE}`,
    "-drive", `if=pflash,format=raw,file=${vars}`,
    // The disk is the only boot device: a Caisson host never boots from the network, and the
    // firmware's PXE and HTTP boot attempts (minutes under TCG) would delay every fallback.
    "-drive", `file=${disk},if=none,id=disk0,format=qcow2,cache=unsafe`,
    // (A direct kernel boot takes boot index 0 itself.)
    "-device", `virtio-blk-pci,drive=disk0${s.direct ? "" : ",bootindex=0"}`,
    "-netdev", `user,id=net0,hostfwd=tcp:127.0.0.1:${s.apiPort}-:${s.guestApiPort}`,
    "-device", "virtio-net-pci,netdev=net0,romfile=",
    "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n",
    "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n",
    ...(s.direct ? ["-kernel", s.direct.kernel, "-initrd", s.direct.initrd, "-append", s.direct.append] : []),
    ...(s.launchUserData ? ["-fw_cfg", `name=${FW_CFG_LAUNCH_NAME},file=${s.launchUserData}`] : []),
    ...(s.userData ? ["-fw_cfg", `name=${FW_CFG_NAME},file=${s.userData}`] : []),
    ...Object.entries(s.fwCfg ?? {}).flatMap(([name, file]) => ["-fw_cfg", `name=${name},file=${file}`]),
  ];
  const errLog = join(s.dir, "qemu.log");
  const err = openSync(errLog, "w");
  const child = spawn(QEMU, args, { detached: true, stdio: ["ignore", err, err] });
  closeSync(err);
  child.unref();
  writeFileSync(join(s.dir, "qemu.args.json"), JSON.stringify(args, null, 1));
  // QEMU fails fast on bad arguments: give it a moment, then say why.
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null || !alive(child.pid!)) throw new Error(`QEMU exited at once: ${readFileSync(errLog, "utf8").trim()}`);
  return { pid: child.pid!, console: consoleLog, qmp };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function lastLines(file: string, n = 25): string {
  if (!existsSync(file)) return "(no console output)";
  // eslint-disable-next-line no-control-regex -- stripping terminal escapes from the console log
  return readFileSync(file, "utf8").replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").split(/\r?\n/).filter((l) => l.trim()).slice(-n).join("\n");
}

/** Send one QMP command (e.g. system_powerdown, quit); resolves when QEMU answered or hung up. */
export function qmpCommand(sock: string, command: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(sock);
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    let buf = "";
    s.on("connect", () => s.write(`{"execute":"qmp_capabilities"}\n{"execute":"${command}"}\n`));
    s.on("data", (d: Buffer) => {
      buf += d.toString();
      if ((buf.match(/"return"/g) ?? []).length >= 2) done(true);
    });
    s.on("close", () => resolve(true));
    s.on("error", () => resolve(false));
    setTimeout(() => done(false), 5000).unref();
  });
}
