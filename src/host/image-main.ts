// Entry point of the agents in the image (bundled to /usr/lib/caisson/caisson-host.mjs):
//   daemon   the resident host daemon (systemd: caisson-host.service)
//   health   the health gate (caisson-health.service, RequiredBy=boot-complete.target): the daemon's verdict
//   bless-check  ExecCondition of systemd-bless-boot.service: bless only the entry that booted
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { execFile } from "node:child_process";
import { fsyncDir } from "../fsutil/atomic.js";
import { ApiClient } from "../apiclient/client.js";
import { runDaemon } from "./daemon.js";
import { parseOsRelease } from "./os-release.js";
import { readBootInfo } from "./health.js";
import { imageUserDataSources } from "../userdata/sources.js";
import { isVariant } from "../settings/schema.js";
import { recordHealthFailure } from "../update/state.js";
import { checkDataPartition } from "./grow-data.js";
import type { BootStatus } from "../protocol/types.js";

const SOCKET = "/run/api.sock";

function console(line: string): void {
  // The console is where an operator without network access looks first.
  try {
    writeFileSync("/dev/console", `${line}\n`);
  } catch {
    process.stdout.write(`${line}\n`);
  }
}

/**
 * The machine ID lives on the data partition: /etc/machine-id (read-only image) links to
 * /var/machine-id. At first boot systemd makes a transient ID and bind-mounts it there; its own
 * commit service only looks for a mount on /etc/machine-id, so the daemon commits it: unmount
 * (through systemd) and write the same ID into the file, which every later boot then reads.
 */
async function persistMachineId(): Promise<void> {
  const target = "/var/machine-id";
  const mounted = readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === target);
  if (!mounted && existsSync(target) && /^[0-9a-f]{32}$/.test(readFileSync(target, "utf8").trim())) return;
  const id = readFileSync("/etc/machine-id", "utf8").trim();
  if (!/^[0-9a-f]{32}$/.test(id)) throw new Error(`/etc/machine-id holds no machine ID ('${id.slice(0, 40)}')`);
  if (mounted) {
    await new Promise<void>((resolve, reject) =>
      execFile("/usr/bin/systemctl", ["stop", "var-machine\\x2did.mount"], (err, _o, stderr) => (err ? reject(new Error(stderr.trim() || err.message)) : resolve())),
    );
  }
  // Written in place, not by rename: the SELinux policy labels a file created under this exact
  // name like /etc's files, so every reader of /etc/machine-id may read it. A torn write is
  // invalid, so the next boot is a first boot for the ID again and this runs again.
  // (systemd created it at first boot, with /var's type; a file made afresh gets the right one.)
  rmSync(target, { force: true });
  const fd = openSync(target, "w", 0o444);
  try {
    writeSync(fd, `${id}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDir("/var");
}

async function daemon(): Promise<void> {
  try {
    await persistMachineId();
  } catch (e) {
    process.stderr.write(`caisson-host: cannot keep the machine ID on the data partition: ${(e as Error).message}\n`);
  }
  const log = (s: string) => process.stderr.write(`caisson-host: ${s}\n`);
  // TMPDIR (set by the unit) is on the data partition; what a crash left there is garbage.
  if (process.env.TMPDIR) {
    rmSync(process.env.TMPDIR, { recursive: true, force: true });
    mkdirSync(process.env.TMPDIR, { recursive: true, mode: 0o700 });
  }
  // Before the host starts: its datastore, logs and containers live on the data partition.
  const dataPartition = await checkDataPartition(log).catch((e: Error) => {
    log(`the data partition could not be grown: ${e.message}`);
    return { error: e.message };
  });
  const os = parseOsRelease(readFileSync("/etc/os-release", "utf8"));
  const variant = os.VARIANT_ID ?? "dev";
  if (!isVariant(variant)) throw new Error(`/etc/os-release names unknown variant ${variant}`);
  await runDaemon({
    root: "/",
    variant,
    version: os.VERSION_ID ?? "0.0.0",
    userDataSources: imageUserDataSources(),
    listen: { path: SOCKET },
    serviceManager: "systemctl",
    boot: readBootInfo(),
    dataPartition,
    announce: console,
  });
}

function bootStatus(): Promise<Pick<BootStatus, "health" | "boot">> {
  return new ApiClient({ socketPath: SOCKET, agent: false, timeoutMs: 10_000 }).call("GET", "/boot-status") as Promise<Pick<BootStatus, "health" | "boot">>;
}

/**
 * The health gate: waits for the daemon's verdict. On a boot on trial an unhealthy verdict fails
 * this unit (FailureAction=reboot uses up the try); on a blessed slot it never loops: the host
 * stays up, degraded, and says so on the console and in /boot-status.
 */
async function health(): Promise<number> {
  const deadline = Date.now() + 150_000;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const s = await bootStatus();
      if (s.health && s.health.state !== "checking") {
        const failed = s.health.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`).join("; ");
        if (s.health.state === "healthy") {
          console(`CAISSON-HEALTH OK slot=${s.boot?.slot ?? "?"} entry=${s.boot?.entry ?? "?"}`);
          return 0;
        }
        if (s.boot?.counted) {
          console(`CAISSON-HEALTH FAIL slot=${s.boot.slot ?? "?"} entry=${s.boot.entry ?? "?"}: ${failed}; rebooting to use up this try`);
          // The update agent of the slot that boots next reports this version as failed, with why.
          try {
            recordHealthFailure("/", parseOsRelease(readFileSync("/etc/os-release", "utf8")).VERSION_ID ?? "unknown", s.health.checks);
          } catch (e) {
            console(`CAISSON-HEALTH cannot record the failure for the update agent: ${(e as Error).message}`);
          }
          return 1;
        }
        console(`CAISSON-HEALTH DEGRADED slot=${s.boot?.slot ?? "?"} (blessed; staying up): ${failed}`);
        return 0;
      }
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  const counted = readBootInfo().counted;
  console(`CAISSON-HEALTH FAIL: no verdict from the API (${last || "still checking"})${counted ? "; rebooting to use up this try" : "; staying up"}`);
  return counted ? 1 : 0;
}

/**
 * systemd-bless-boot renames whatever file LoaderBootCountPath names. systemd-boot 252 leaves that
 * variable naming a counted entry that failed to load (its kernel or initrd unreadable, or refused
 * under Secure Boot) when the firmware then runs systemd-boot again and another entry boots in the
 * same power-on: blessing it would make the broken slot the default for good (every later power-on
 * stalls in the firmware). Exit 0 (bless) only when the variable names the entry that booted; 1
 * makes systemd skip the blessing (ExecCondition), and the failed entry keeps its spent counter.
 */
function blessCheck(): number {
  const b = readBootInfo();
  if (b.counted) return 0;
  console(
    `CAISSON-BLESS refused: LoaderBootCountPath names ${b["count-path"] ?? "nothing"} but ${b.entry ?? "no counted entry"} booted ` +
      `(a counted entry failed to load earlier in this power-on); it keeps its spent try`,
  );
  return 1;
}

const cmd = process.argv[2];
if (cmd === "daemon") await daemon();
else if (cmd === "bless-check") process.exitCode = blessCheck();
else if (cmd === "health") {
  // The unit reboots on failure (FailureAction): only a boot on trial may fail it, whatever happens.
  process.exitCode = await health().catch((e: Error) => {
    const counted = readBootInfo().counted;
    console(`CAISSON-HEALTH FAIL: ${e.message}${counted ? "; rebooting to use up this try" : "; staying up"}`);
    return counted ? 1 : 0;
  });
}
else {
  process.stderr.write("usage: caisson-host.mjs daemon|health|bless-check\n");
  process.exitCode = 2;
}
