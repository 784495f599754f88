// What "healthy" means for a boot, and what the boot is: the health gate's verdict decides whether
// a slot on trial is blessed (systemd-bless-boot) or its try is used up (reboot).
import { connect } from "node:net";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { bootCounted } from "../boot/entries.js";
import type { BootInfo, BootstrapCommandReport, Health, HealthCheck } from "../protocol/types.js";
import { hostPaths } from "../fsutil/paths.js";

// systemd-boot's loader interface variables (Boot Loader Interface, vendor GUID).
const LOADER_GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

function efiString(name: string, efivars: string): string | undefined {
  const p = `${efivars}/${name}-${LOADER_GUID}`;
  if (!existsSync(p)) return undefined;
  // 4 bytes of attributes, then UTF-16LE, NUL-terminated.
  return readFileSync(p).subarray(4).toString("utf16le").replace(/\0+$/, "");
}

export function readBootInfo(proc = "/proc", efivars = "/sys/firmware/efi/efivars"): BootInfo {
  const cmdline = existsSync(`${proc}/cmdline`) ? readFileSync(`${proc}/cmdline`, "utf8").trim() : "";
  const slot = /(?:^|\s)caisson\.slot=([ab])(?:\s|$)/.exec(cmdline)?.[1];
  const entry = efiString("LoaderEntrySelected", efivars);
  const countPath = efiString("LoaderBootCountPath", efivars);
  const machineId = existsSync("/etc/machine-id") ? readFileSync("/etc/machine-id", "utf8").trim() || undefined : undefined;
  const entriesDir = `/${hostPaths.esp}/loader/entries`;
  const enforce = "/sys/fs/selinux/enforce";
  const selinux = existsSync(enforce) ? (readFileSync(enforce, "utf8").trim() === "1" ? "enforcing" : "permissive") : "disabled";
  return {
    slot,
    entry,
    counted: bootCounted(countPath, entry),
    ...(countPath !== undefined ? { "count-path": countPath } : {}),
    cmdline,
    "machine-id": machineId,
    // Read when asked (a getter, so /boot-status serialises it fresh): systemd-bless-boot, the
    // bootloader's counting and the update agent rename and add entries while the host runs.
    get entries() {
      return existsSync(entriesDir) ? readdirSync(entriesDir).filter((f) => f.endsWith(".conf")).sort() : undefined;
    },
    selinux,
  };
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => (s.destroy(), resolve(true)));
    s.once("error", () => resolve(false));
  });
}

/**
 * Evaluate health, waiting up to `timeoutMs` for what starts after us (containerd).
 * `settingsApplied` comes from the daemon's own bring-up; the API is up if this code runs in it.
 */
export async function evaluateHealth(o: {
  settingsApplied: boolean;
  applyError?: string;
  /** The migrator's outcome at start (src/migrations): a failed migration fails the gate. */
  migration?: { state: string; from?: string; to: string; error?: string };
  /** How the datastore was found at start (src/datastore): anything but "ok" fails the gate. */
  datastore?: { state: string; error?: string };
  /** Controllers (other than the configuration files, which are `settings`) whose failure is fatal and whose first run failed. */
  fatalControllers?: { name: string; error: string }[];
  /** What the bootstrap commands did: a failed essential one fails the gate. */
  bootstrap?: BootstrapCommandReport[];
  boot: BootInfo;
  containerdSocket?: string;
  timeoutMs?: number;
}): Promise<Health> {
  const sock = o.containerdSocket ?? "/run/containerd/containerd.sock";
  const deadline = Date.now() + (o.timeoutMs ?? 90_000);
  let containerd = await socketAnswers(sock);
  while (!containerd && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    containerd = await socketAnswers(sock);
  }
  const checks: HealthCheck[] = [
    { name: "api", ok: true, detail: "answering on /run/api.sock" },
    { name: "settings", ok: o.settingsApplied, detail: o.settingsApplied ? "applied" : `not applied: ${o.applyError ?? "unknown error"}` },
    { name: "containerd", ok: containerd, detail: containerd ? `answering on ${sock}` : `no answer on ${sock} after ${(o.timeoutMs ?? 90_000) / 1000} s` },
  ];
  if (o.migration) {
    const m = o.migration;
    const ok = m.state !== "failed";
    checks.push({ name: "migration", ok, detail: ok ? (m.state === "done" ? `datastore migrated from ${m.from} to ${m.to}` : `datastore at ${m.to}`) : `failed: ${m.error ?? "unknown error"}` });
  }
  if (o.datastore) {
    const d = o.datastore;
    const ok = d.state === "ok";
    const on = d.state === "last-good" ? "started on its last good copy" : "started on default settings";
    checks.push({ name: "datastore", ok, detail: ok ? "live settings read" : `live settings unreadable (${d.error ?? "unknown error"}); ${on}` });
  }
  if (o.bootstrap?.length) {
    const failedEssential = o.bootstrap.filter((b) => b.state === "failed" && b.essential);
    const failedOther = o.bootstrap.filter((b) => b.state === "failed" && !b.essential);
    checks.push({
      name: "bootstrap-commands",
      ok: failedEssential.length === 0,
      detail: failedEssential.length
        ? `essential failed: ${failedEssential.map((b) => `${b.name}: ${b.error}`).join("; ")}`
        : `${o.bootstrap.length - failedOther.length} ran${failedOther.length ? `; not essential, failed: ${failedOther.map((b) => b.name).join(", ")}` : ""}`,
    });
  }
  for (const c of o.fatalControllers ?? []) checks.push({ name: `controller ${c.name}`, ok: false, detail: c.error });
  // Test knob: a kernel parameter that fails the gate, to exercise fallback without a broken build.
  if (/(?:^|\s)caisson\.test\.fail-health(?:\s|$)/.test(o.boot.cmdline)) {
    checks.push({ name: "test-knob", ok: false, detail: "caisson.test.fail-health is on the kernel command line" });
  }
  const healthy = checks.every((c) => c.ok);
  return { state: healthy ? "healthy" : "unhealthy", checks, degraded: !healthy && !o.boot.counted };
}
