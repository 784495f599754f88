// The agent's persistent state (updatePaths.state): the update whose slot write completed and was
// verified, the versions that failed their boot trial on this host, and the boot history (which
// version ran from which slot, newest last; what `rollback` goes back to when the other slot cannot
// boot). Written atomically and durably; a missing or unreadable file is an empty state (nothing
// staged, nothing failed, no history).
//
// The boot entries on the ESP (src/boot/slots.ts) are the truth about what boots; this file only
// adds what they cannot say (which manifest entry was staged, why a version failed). reconcile()
// brings it in line with them before and after every command, so a crash, a reboot or a command
// that failed halfway never leaves it stale.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { updatePaths, type Update } from "./manifest.js";
import type { BootRecord, Slot } from "../protocol/types.js";

export type { BootRecord } from "../protocol/types.js";
import { usable, type BootSlots, type SlotEntry } from "../boot/slots.js";
import { sameVersion } from "./version.js";
import { hostPaths } from "../fsutil/paths.js";

export interface StagedRecord {
  /** The manifest entry, kept so activation needs no network. */
  update: Update;
  slot: Slot;
  at: string;
}

export interface FailedUpdate {
  version: string;
  reason: string;
  at: string;
}

/** How many boot records the state keeps (the oldest go first). */
export const BOOT_HISTORY_MAX = 10;

export interface AgentState {
  staged?: StagedRecord;
  failed: FailedUpdate[];
  /** Oldest first. */
  history: BootRecord[];
}

const isBootRecord = (r: unknown): r is BootRecord => {
  const x = r as Partial<BootRecord> | null;
  return typeof x === "object" && x !== null && typeof x.version === "string" && (x.slot === "a" || x.slot === "b") && typeof x.at === "string";
};

/**
 * Append `rec` to the history if its version or slot differs from the last record (a reboot into
 * the same version on the same slot adds nothing), keeping the last BOOT_HISTORY_MAX. Returns
 * whether the history changed.
 */
export function appendBoot(s: AgentState, rec: BootRecord): boolean {
  const last = s.history.at(-1);
  if (last && last.version === rec.version && last.slot === rec.slot) return false;
  s.history = [...s.history, rec].slice(-BOOT_HISTORY_MAX);
  return true;
}

export function readState(root: string): AgentState {
  const path = join(root, updatePaths.state);
  if (!existsSync(path)) return { failed: [], history: [] };
  try {
    const j = JSON.parse(readFileSync(path, "utf8")) as Partial<AgentState>;
    return { staged: j.staged, failed: Array.isArray(j.failed) ? j.failed : [], history: Array.isArray(j.history) ? j.history.filter(isBootRecord) : [] };
  } catch {
    return { failed: [], history: [] };
  }
}

/** `faultName` names the crash-test points of this write (`<name>:after-write`, ...). */
export function writeState(root: string, s: AgentState, faultName = "update-state"): void {
  writeFileAtomic(join(root, updatePaths.state), JSON.stringify(s, null, 2) + "\n", { durable: true, faultName });
}

/** Append the running version and slot to the boot history if they differ from its last record. */
export function recordBoot(root: string, rec: BootRecord): void {
  const st = readState(root);
  // Its own fault name: the crash tests' update-state points stay on prepare's write.
  if (appendBoot(st, rec)) writeState(root, st, "update-history");
}

/**
 * Why the trial of `failed` failed: the health gate's failed checks when it left them for that
 * version, else the tries it used up (the boot never reached the health gate, or the gate could not
 * write its verdict); `booted` is the slot the bootloader fell back to.
 */
export function failureReason(health: HealthFailure | undefined, failed: SlotEntry, booted: Slot): string {
  const checks = health && failed.version && sameVersion(health.version, failed.version) ? health.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`) : [];
  return checks.length
    ? `failed its health gate: ${checks.join("; ")}`
    : `its boot on trial used up ${failed.triesDone ?? "its"} tries without passing the health gate; slot ${booted} booted instead`;
}

/**
 * Bring `st` in line with the slots (in place): a failed trial is recorded once, with its reason
 * (and its staged record goes); a staged record that no longer describes the inactive slot (another
 * slot, another variant) goes. Returns whether `st` changed and the update that newly failed.
 */
export function reconcile(st: AgentState, slots: BootSlots, o: { root: string; variant: string; at: string }): { changed: boolean; failed?: FailedUpdate } {
  let changed = false;
  let failed: FailedUpdate | undefined;
  const trial = slots.failedTrial();
  if (trial?.version && !st.failed.some((f) => sameVersion(f.version, trial.version!))) {
    failed = { version: trial.version, reason: failureReason(readHealthFailure(o.root), trial, slots.active), at: o.at };
    st.failed.push(failed);
    if (st.staged && sameVersion(st.staged.update.version, trial.version)) st.staged = undefined;
    changed = true;
  }
  if (st.staged && (st.staged.slot !== slots.inactive || st.staged.update.variant !== o.variant)) {
    st.staged = undefined;
    changed = true;
  }
  return { changed, failed };
}

/**
 * What the disk says of a staged update: "Ready" when the inactive slot's entry is that version,
 * usable and next to boot (activated), "Staged" otherwise; undefined when nothing is staged.
 */
export function stagedState(st: AgentState, slots: BootSlots): "Staged" | "Ready" | undefined {
  if (!st.staged) return undefined;
  const e = slots.entryOf(slots.inactive);
  return e?.version && usable(e) && sameVersion(e.version, st.staged.update.version) && slots.nextToBoot()?.slot === slots.inactive ? "Ready" : "Staged";
}

/** Where the health gate leaves its verdict on a failed boot on trial, for the agent of the next boot. */
export const HEALTH_FAILURE = hostPaths.healthFailure;

export interface HealthFailure {
  version: string;
  at: string;
  checks: { name: string; ok: boolean; detail: string }[];
}

/** Called by the health gate when a boot on trial fails: the next boot's agent says why. */
export function recordHealthFailure(root: string, version: string, checks: HealthFailure["checks"]): void {
  const rec: HealthFailure = { version, at: new Date().toISOString(), checks };
  writeFileAtomic(join(root, HEALTH_FAILURE), JSON.stringify(rec, null, 2) + "\n", { durable: true });
}

export function readHealthFailure(root: string): HealthFailure | undefined {
  const path = join(root, HEALTH_FAILURE);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, "utf8")) as HealthFailure;
  } catch {
    return undefined;
  }
}
