// The agent's persistent state (updatePaths.state): the update whose slot write completed and was
// verified, the versions that failed their boot trial on this host, and the boot history (which
// version ran from which slot, newest last; what `rollback` goes back to when the other slot cannot
// boot). Written atomically and durably; a missing or unreadable file is an empty state (nothing
// staged, nothing failed, no history).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { updatePaths, type Update } from "./manifest.js";
import type { Slot } from "../boot/entries.js";

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

/** One boot of this host: the version that ran and its slot (recorded when either changed). */
export interface BootRecord {
  version: string;
  slot: Slot;
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

/** Where the health gate leaves its verdict on a failed boot on trial, for the agent of the next boot. */
export const HEALTH_FAILURE = "var/lib/caisson/health/last-failure.json";

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
