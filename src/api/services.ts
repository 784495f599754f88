// What the API's routes call: a typed record of the host's services, made by the daemon
// (src/host). The API depends on these shapes only, never on how the host assembles them.
import type { JsonObject } from "../settings/keys.js";
import type { ApplyPlan, ApplyRecord, BootStatus, DryRun, KeyList, KeyMap, MemoryReport } from "../protocol/types.js";
import type { UpdateAgent } from "../update/agent.js";

/** Settings: live, pending transactions, commit, apply (Bottlerocket's /settings and /tx family). */
export interface SettingsService {
  live(): JsonObject;
  /** The live settings serialised once per commit (GET /settings is the hottest path). */
  liveJson(): string;
  pending(tx: string): JsonObject;
  transactions(): string[];
  /** Validate a partial tree and merge it into a pending transaction; invalid: nothing changes. */
  patch(tx: string, patch: JsonObject): void;
  patchKeypairs(tx: string, pairs: string[]): void;
  deleteTx(tx: string): KeyList;
  /** Make a transaction live; the changed keys. Renders nothing (see commitAndApply). */
  commit(tx: string): Promise<KeyList>;
  /** Render configuration files for `keys` (or all) and restart what reads them. */
  apply(keys: string[] | "all"): Promise<ApplyPlan>;
  commitAndApply(tx: string): Promise<KeyList>;
  /** What commit_and_apply would change: keys, file diffs and restarts. Changes nothing. */
  preview(tx: string): DryRun;
  /** Generated keys and their generators (GET /metadata/setting-generators). */
  generators(): Record<string, string>;
}

/** The service catalog, read-only: which files exist, which services read them, what a key feeds. */
export interface CatalogView {
  services(): JsonObject;
  configurationFiles(): JsonObject;
  affectedServices(keys: string[]): KeyMap;
  templatesFor(keys: string[]): KeyMap;
  /** The last applies, newest first. */
  history(): readonly ApplyRecord[];
}

export interface Services {
  settings: SettingsService;
  catalog: CatalogView;
  os(): JsonObject;
  /** GET /boot-status: bring-up, controllers, boot and health. */
  bootStatus(): BootStatus;
  /** Reboot shortly after answering. */
  reboot(): void;
  /** Absent where the host has no update agent. */
  updates?: UpdateAgent;
  /** GET /diagnostics/memory. */
  memory(): MemoryReport;
}
