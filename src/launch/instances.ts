// `caisson launch | stop | list | apiclient --name`: named Caisson hosts under QEMU, each in its own
// state directory (overlay disk, firmware variables, console log, certificates, instance.json).
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { ApiClient } from "../apiclient/client.js";
import { alive, freePort, lastLines, probeKvm, qmpCommand, startVm, type Accel } from "./qemu.js";
import { instanceTlsPaths, launchUserData, makeInstanceTls } from "./tls.js";
import { kernelCommandLine } from "../boot/entries.js";
import { readBuildRecord } from "../image/build.js";
import { DEFAULT_NETWORK_API_PORT } from "../settings/schema.js";

export interface Instance {
  name: string;
  image: string;
  pid: number;
  accel: Accel;
  memoryMiB: number;
  apiPort: number;
  dir: string;
  startedAt: string;
}

export function stateDir(): string {
  return process.env.CAISSON_STATE ?? join(process.env.XDG_STATE_HOME ?? join(homedir(), ".local/state"), "caisson");
}

const instDir = (name: string) => join(stateDir(), "instances", name);

export function readInstance(name: string): Instance {
  const f = join(instDir(name), "instance.json");
  if (!existsSync(f)) throw new Error(`no instance named '${name}': see 'caisson list'`);
  return JSON.parse(readFileSync(f, "utf8")) as Instance;
}

export function listInstances(): (Instance & { running: boolean })[] {
  const dir = join(stateDir(), "instances");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => existsSync(join(dir, n, "instance.json")))
    .map((n) => readInstance(n))
    .map((i) => ({ ...i, running: alive(i.pid) }));
}

/** An API client for a launched host, over mutual TLS through the forwarded loopback port. */
export function instanceClient(name: string): ApiClient {
  const i = readInstance(name);
  return new ApiClient(instanceTarget(i));
}

export function instanceTarget(i: Instance) {
  const t = instanceTlsPaths(join(i.dir, "tls"));
  return {
    tls: true,
    host: "127.0.0.1",
    port: i.apiPort,
    servername: "localhost",
    ca: readFileSync(t.ca),
    cert: readFileSync(t.clientCert),
    key: readFileSync(t.clientKey),
    agent: false,
    timeoutMs: 15_000,
  };
}

export interface LaunchOptions {
  image: string;
  name: string;
  userData?: string;
  memoryMiB: number;
  accel: "auto" | Accel;
  timeoutMs: number;
  /** More QEMU fw_cfg files (name → host file). */
  fwCfg?: Record<string, string>;
  /** Guest disk size; at least the image's (default: the image's own size). */
  diskGiB?: number;
  /** Start from a fresh overlay (a first boot), dropping an old instance of that name. */
  fresh?: boolean;
  /**
   * Boot slot A's kernel directly (no bootloader: no boot counting), with these extra kernel
   * parameters; for tests of what does not need the bootloader, and for debugging.
   */
  directKernelArgs?: string[];
  log?: (line: string) => void;
}

const GUEST_API_PORT = DEFAULT_NETWORK_API_PORT;

export async function launch(o: LaunchOptions): Promise<Instance> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const image = resolve(o.image);
  if (!existsSync(image)) throw new Error(`${image} does not exist: build one with 'caisson build --out DIR' and pass DIR/disk.img`);
  const dir = instDir(o.name);
  if (existsSync(join(dir, "instance.json"))) {
    const old = readInstance(o.name);
    if (alive(old.pid)) throw new Error(`instance '${o.name}' is running (pid ${old.pid}): 'caisson stop ${o.name}' first`);
    if (o.fresh !== false) rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });

  let accel: Accel = o.accel === "auto" ? "tcg" : o.accel;
  if (o.accel === "auto") {
    const probe = await probeKvm(join(dirname(image), "vmlinuz"), stateDir());
    accel = probe.ok ? "kvm" : "tcg";
    log(`accelerator: ${accel} (${probe.why})`);
  }
  const tls = await makeInstanceTls(join(dir, "tls"), o.name);
  const launchData = join(dir, "launch-user-data.toml");
  writeFileSync(launchData, launchUserData(tls, GUEST_API_PORT), { mode: 0o600 });
  chmodSync(launchData, 0o600);
  const apiPort = await freePort();
  let direct: { kernel: string; initrd: string; append: string } | undefined;
  if (o.directKernelArgs) {
    const out = dirname(image);
    const build = readBuildRecord(out);
    const append = kernelCommandLine({ slot: "a", generation: 0, title: "", roothash: build.roothash, fsType: "erofs", extra: [...build["kernel-parameters"], ...o.directKernelArgs] });
    direct = { kernel: join(out, "vmlinuz"), initrd: join(out, "initrd.img"), append };
  }
  const vm = await startVm({
    direct,
    dir,
    image,
    diskGiB: o.diskGiB,
    fwCfg: o.fwCfg,
    memoryMiB: o.memoryMiB,
    accel,
    apiPort,
    guestApiPort: GUEST_API_PORT,
    launchUserData: launchData,
    userData: o.userData ? resolve(o.userData) : undefined,
  });
  const inst: Instance = { name: o.name, image, pid: vm.pid, accel, memoryMiB: o.memoryMiB, apiPort, dir, startedAt: new Date().toISOString() };
  writeFileSync(join(dir, "instance.json"), JSON.stringify(inst, null, 2));
  log(`started ${o.name} (QEMU pid ${vm.pid}, ${accel}); console: ${vm.console}; waiting for its API on https://127.0.0.1:${apiPort} ...`);
  await waitForApi(inst, o.timeoutMs, log);
  return inst;
}

/** Wait until the host's API answers over mTLS (and its settings are applied). */
export async function waitForApi(i: Instance, timeoutMs: number, log: (l: string) => void = () => {}): Promise<void> {
  const client = new ApiClient(instanceTarget(i));
  const t0 = Date.now();
  let lastNote = 0;
  for (;;) {
    if (!alive(i.pid)) throw new Error(`QEMU for '${i.name}' exited before its API came up. Last console lines:\n${lastLines(join(i.dir, "console.log"))}`);
    try {
      const r = await client.request("GET", "/boot-status");
      if (r.status === 200) {
        log(`${i.name}: API up after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
        return;
      }
    } catch {
      /* not up yet */
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(
        `${i.name}: no API answer on https://127.0.0.1:${i.apiPort} after ${timeoutMs / 1000} s. Last console lines:\n${lastLines(join(i.dir, "console.log"))}\n` +
          `(the instance is still running: 'caisson stop ${i.name}')`,
      );
    }
    if (Date.now() - lastNote > 15_000) {
      lastNote = Date.now();
      const line = lastLines(join(i.dir, "console.log"), 1);
      log(`  ${Math.round((Date.now() - t0) / 1000)} s: ${line.slice(0, 110)}`);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Stop an instance: ACPI power-off, then pull the plug after `graceMs`. */
export async function stop(name: string, graceMs = 20_000): Promise<void> {
  const i = readInstance(name);
  if (!alive(i.pid)) return;
  const qmp = join(i.dir, "qmp.sock");
  if (graceMs > 0) {
    await qmpCommand(qmp, "system_powerdown");
    const t0 = Date.now();
    while (alive(i.pid) && Date.now() - t0 < graceMs) await new Promise((r) => setTimeout(r, 250));
  }
  if (alive(i.pid)) await qmpCommand(qmp, "quit");
  const t0 = Date.now();
  while (alive(i.pid) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
  if (alive(i.pid)) process.kill(i.pid, "SIGKILL");
}
