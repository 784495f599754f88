// The API's wire types: what each route (routes.ts) takes and answers, declared once for the
// server (src/api), its implementations (src/update, src/host, src/applier...), the apiclient and
// the tests. Each wire family keeps one casing: Bottlerocket's where it has one (snake_case for
// /updates/status, kebab-case for settings and transactions), kebab-case for ours (/boot-status,
// /diagnostics/memory, /applier/history, error bodies).
import type { JsonObject } from "../settings/keys.js";

// ---- Settings and the model (GET /, /settings, /tx...) ----

/** A settings tree rooted at `settings` (or a part of one: a PATCH body, a pending transaction). */
export type SettingsTree = JsonObject;
/** GET /: settings, services, configuration-files and os, each a JSON object. */
export type Model = JsonObject;
/** GET /os: the OS's read-only description (Bottlerocket's os.*). */
export type OsInfo = JsonObject;
/** GET /services, /configuration-files: entries by name (services.toml's tables). */
export type CatalogMap = JsonObject;
/** Full settings keys (`settings.a.b`): the keys a commit changed, a deleted transaction held. */
export type KeyList = string[];
/** GET /tx/list: the pending transactions' names. */
export type TransactionList = string[];
/** GET /metadata/affected-services and /metadata/templates: for each key asked, the names it feeds. */
export type KeyMap = Record<string, string[]>;
/** GET /metadata/setting-generators: generated keys and their generators. */
export type GeneratorMap = Record<string, string>;
/** PATCH /settings/keypair (Bottlerocket's form). */
export interface KeypairRequest {
  request_payload: string[];
}

// ---- Applies (POST /tx/commit_and_apply?dry-run, GET /applier/history) ----

export interface FileChange {
  name: string;
  path: string;
  /** Unified diff of the file on disk against the new rendering (dry runs only; empty otherwise). */
  diff: string;
}

export interface ApplyPlan {
  files: FileChange[];
  services: string[];
  "restart-units": string[];
}

/** POST /tx/commit_and_apply?dry-run=true: what would change, nothing changed. */
export type DryRun = { "changed-keys": string[] } & ApplyPlan;

/** POST /tx/commit_and_apply: the changed keys, or with dry-run what would change. */
export type CommitAndApplyResult = KeyList | DryRun;

/** One apply, as GET /applier/history shows it (newest first). */
export interface ApplyRecord {
  at: string;
  keys: string[] | "all";
  files: string[];
  "restart-units": string[];
}

// ---- Updates (GET /updates/status, /actions/*-update): Bottlerocket's snake_case ----

export type UpdateState = "Idle" | "Available" | "Staged" | "Ready";
export type CommandType = "refresh" | "prepare" | "activate" | "deactivate" | "rollback";
export type Slot = "a" | "b";

export interface Image {
  arch: string;
  version: string;
  variant: string;
}

export interface CommandRecord {
  cmd_type: CommandType;
  cmd_status: "Success" | "Failed" | "Unknown";
  timestamp: string;
  exit_status: number;
  stderr: string;
}

/** The download of the running prepare or rollback, as GET /updates/status shows it. */
export interface DownloadProgress {
  target: string;
  bytes: number;
  total: number;
  mb_per_s: number;
}

/** A boot of a version from a slot (the agent's state.json keeps the last ones). */
export interface BootRecord {
  version: string;
  slot: Slot;
  at: string;
}

export interface UpdateStatus {
  update_state: UpdateState;
  available_updates: string[];
  chosen_update: Image | null;
  active_partition: { image: Image; next_to_boot: boolean };
  /** The inactive slot, only while an update is staged there (prepared) or activated (on trial, boots next); else null. */
  staging_partition: { image: Image; next_to_boot: boolean } | null;
  most_recent_command: CommandRecord | null;
  /** Ours: versions whose boot trial failed on this host, with the reason. */
  failed_updates: { version: string; reason: string; at: string }[];
  /** Ours: the download of the running prepare or rollback, else null. */
  progress: DownloadProgress | null;
  /** Ours: the versions this host booted and their slots, newest last. */
  boot_history: BootRecord[];
}

// ---- GET /boot-status: kebab-case ----

export interface UserDataRejection {
  message: string;
  source: string;
  line?: number;
  column?: number;
  key?: string;
}

export interface UserDataStatus {
  /** rejected: at least one source was invalid and nothing of it applied (others may have). */
  state: "applied" | "rejected" | "absent";
  /** Sources whose user data was applied, in order. */
  sources: string[];
  /** The first rejected source, and all of them. */
  error?: UserDataRejection;
  rejected?: UserDataRejection[];
  at: string;
}

/** What the migrator did at this start (the health gate fails the boot when it failed). */
export interface MigrationStatus {
  state: "none" | "done" | "failed";
  /** Datastore version before, and the version this host runs. */
  from?: string;
  to: string;
  ran: string[];
  error?: string;
}

/** How the datastore's live.json was found at open: "ok", or what the store started on instead and why. */
export interface OpenState {
  state: "ok" | "last-good" | "empty";
  /** Why live.json could not be used. */
  error?: string;
  /** Where the unusable live.json was kept. */
  kept?: string;
}

export interface ControllerStatus {
  output: string;
  failure: "fatal" | "degrades";
  /** pending: not reconciled yet; ok: the last run succeeded; failed: the last run threw. */
  state: "pending" | "ok" | "failed";
  detail?: string;
  /** The last run's error, kept while it keeps failing. */
  error?: string;
  runs: number;
  /** Consecutive failures (drives the retry backoff). */
  failures: number;
  "last-run"?: string;
  "next-run"?: string;
}

/** Which slot and entry booted (on the image). */
export interface BootInfo {
  slot?: string;
  /** The entry systemd-boot started, e.g. caisson-b+2-1.conf. */
  entry?: string;
  /** true on a boot on trial: systemd-boot counted a try of the entry that booted. */
  counted: boolean;
  /**
   * LoaderBootCountPath as systemd-boot left it, when it is set. It may name an entry other than
   * the one that booted (a counted entry that failed to load earlier in the same power-on): then
   * `counted` is false and systemd-bless-boot is stopped from blessing it (`bless-check`).
   */
  "count-path"?: string;
  cmdline: string;
  /** The host's identity; it lives on the data partition, so it survives reboots and updates. */
  "machine-id"?: string;
  /** Boot entries on the ESP (their names carry the try counters). */
  entries?: string[];
  selinux?: "enforcing" | "permissive" | "disabled";
}

export interface HealthCheck {
  name: string;
  ok: boolean;
  detail: string;
}

export interface Health {
  state: "checking" | "healthy" | "unhealthy";
  checks: HealthCheck[];
  /** An unhealthy boot of a blessed slot: the host stays up and says so. */
  degraded: boolean;
}

/** The data partition's growth at this boot (on the image). */
export interface DataPartitionReport {
  disk: string;
  partition: string;
  "disk-mib": number;
  "partition-mib": number;
  "filesystem-mib": number;
  /** What was grown at this boot by the daemon: "filesystem" at first boot; "partition" only if repart did not. */
  grown: string[];
}

export interface BootStatus {
  "user-data": UserDataStatus;
  migration: MigrationStatus;
  /** How the datastore's live settings were found at start (src/datastore): "ok", or what the host started on instead and why; not "ok" fails the health gate. */
  datastore: OpenState;
  /** Whether the configuration files' first apply at this start succeeded (the health verdict's `settings`). */
  "settings-applied": boolean;
  "apply-error"?: string;
  generated: string[];
  "started-at": string;
  /** Every controller by name, live: its state, what it owns, and why it failed. */
  controllers: Record<string, ControllerStatus>;
  /** Reported by the daemon on the image: which slot booted and the health gate's verdict. */
  boot?: BootInfo;
  health?: Health;
  /** Reported by the daemon on the image: the data partition's growth at this boot, or why it could not be checked. */
  "data-partition"?: DataPartitionReport | { error: string };
  /** What settings.bootstrap-commands did at this start (before the health verdict), in name order. */
  "bootstrap-commands"?: BootstrapCommandReport[];
}

export interface BootstrapCommandReport {
  name: string;
  mode: "once" | "always";
  essential: boolean;
  /** ok: every command exited 0; failed: the first that did not (the rest did not run). */
  state: "ok" | "failed";
  /** Commands run (a failed one included). */
  ran: number;
  error?: string;
}

// ---- GET /diagnostics/memory: kebab-case ----

export interface ProcessMemory {
  pid: number;
  program: string;
  "pss-kib": number;
  "rss-kib": number;
}

export interface MemoryReport {
  /** Our resident agents (the host daemon). */
  agents: ProcessMemory[];
  "agents-pss-kib": number;
  /** The benchmark's bare node:http server, when it runs. */
  baseline?: ProcessMemory;
  /** Other processes of the runtime (the health gate, an apiclient): short-lived, not counted. */
  transient: ProcessMemory[];
}

// ---- Errors: every non-2xx answer ----

/** The update agent's refusals (Bottlerocket's thar-be-updates error names; statuses in src/update/errors.ts). */
export type AgentErrorKind =
  | "UninitializedUpdateStatus"
  | "UpdateLockHeld"
  | "DisallowCommand"
  | "UpdateDoesNotExist"
  | "NoStagedImage"
  | "NothingToRollBack"
  /** The host has no A/B slots (a workstation root without them): nothing to update. */
  | "NoBootSlots";

/** Domain errors a route may meet (statuses in src/api/errors.ts). */
export type ErrorKind =
  /** A value the schema refuses (SettingsError). */
  | "InvalidSetting"
  /** A malformed settings key (KeyError). */
  | "InvalidKey"
  /** Nested deeper than the settings limit (LimitError "depth"). */
  | "TooDeep"
  /** A value or a settings tree over its size limit (LimitError). */
  | "TooLarge"
  /** A commit of a transaction with nothing in it (NothingPendingError). */
  | "NothingPending"
  /** A transaction name that cannot be (DatastoreError). */
  | "InvalidTransaction"
  /** Configuration files could not all be written (ApplyError): the body says what failed and what was written. */
  | "ApplyFailed"
  | AgentErrorKind;

/**
 * The body of every error answer: a message; a kind for domain errors (none for protocol errors
 * such as 404 no such path, and for 500s); and the kind's details beside them (InvalidSetting:
 * key, expected; TooLarge/TooDeep: limit, key; ApplyFailed: failures, written, restart-units).
 */
export interface ErrorBody {
  message: string;
  kind?: ErrorKind;
  key?: string;
  expected?: string;
  limit?: "depth" | "value-bytes" | "settings-bytes";
  failures?: { path: string; message: string }[];
  written?: string[];
  "restart-units"?: string[];
  [detail: string]: unknown;
}
