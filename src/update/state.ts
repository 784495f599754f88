// The agent's persistent state (updatePaths.state): the update whose slot write completed and was
// verified, and the versions that failed their boot trial on this host. Written atomically and
// durably; a missing or unreadable file is an empty state (nothing staged, nothing failed).
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

export interface AgentState {
  staged?: StagedRecord;
  failed: FailedUpdate[];
}

export function readState(root: string): AgentState {
  const path = join(root, updatePaths.state);
  if (!existsSync(path)) return { failed: [] };
  try {
    const j = JSON.parse(readFileSync(path, "utf8")) as Partial<AgentState>;
    return { staged: j.staged, failed: Array.isArray(j.failed) ? j.failed : [] };
  } catch {
    return { failed: [] };
  }
}

export function writeState(root: string, s: AgentState): void {
  writeFileAtomic(join(root, updatePaths.state), JSON.stringify(s, null, 2) + "\n", { durable: true, faultName: "update-state" });
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
