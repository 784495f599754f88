// The host's management plane, as one object the API calls into: the datastore (settings), the
// applier (configuration files and services), user data and generators at start, boot status.
// One resident daemon hosts all of it (an idle Node process costs ~45 MiB; one is enough).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Datastore, checkTxName, type OpenState } from "../datastore/store.js";
import { Applier, type ApplyPlan } from "../applier/applier.js";
import { loadServiceCatalog } from "../applier/services.js";
import { loadTemplates } from "../applier/templates.js";
import type { ServiceManager } from "../applier/service-manager.js";
import { changedKeys, deepMerge, getPath, leafPaths, parseSettingsKey, setPath, splitKeyPair, type Json, type JsonObject } from "../settings/keys.js";
import { coerceKeypairValue, defaultsFor, generatorsFor, redactSettings, validateSettings } from "../settings/model.js";
import { generators } from "../settings/generators.js";
import { checkSettingsSize } from "../settings/limits.js";
import type { Variant } from "../settings/schema.js";
import { parseUserData, UserDataError, type UserDataSource } from "../userdata/userdata.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { readOs } from "./os-release.js";
import { migrateDatastore, MigrationError } from "../migrations/migrator.js";
import { ApiError } from "../api/errors.js";

export const LAUNCH_TX = "caisson-launch";

export interface HostOptions {
  /** The host's root: "/" on the image, a directory in workstation mode. */
  root: string;
  variant: Variant;
  /** Package version; the data-store version and the fallback OS version. */
  version: string;
  /** Directory with services.toml and templates/. */
  imageDir: string;
  serviceManager: ServiceManager;
  userDataSources: UserDataSource[];
  log: (msg: string) => void;
  /** Called after every commit with the changed keys (e.g. to reconfigure the network API). */
  onCommit?: (changed: string[]) => void;
}

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

export interface BootStatus {
  "user-data": UserDataStatus;
  migration: MigrationStatus;
  /** How the datastore's live settings were found at start (src/datastore): "ok", or what the host started on instead and why; not "ok" fails the health gate. */
  datastore: OpenState;
  "settings-applied": boolean;
  "apply-error"?: string;
  generated: string[];
  "started-at": string;
  /** Reported by the daemon on the image: which slot booted and the health gate's verdict. */
  boot?: unknown;
  health?: unknown;
  /** Reported by the daemon on the image: the data partition's growth at this boot. */
  "data-partition"?: unknown;
}


export class Host {
  private liveJson: string | undefined;
  private writes: Promise<unknown> = Promise.resolve();
  /** The last applies, newest first: which files each rewrote and which units it restarted. */
  private readonly history: { at: string; keys: string[] | "all"; files: string[]; "restart-units": string[] }[] = [];
  private status!: BootStatus;
  private migration: MigrationStatus = { state: "none", to: "", ran: [] };

  private constructor(
    private readonly o: HostOptions,
    private readonly store: Datastore,
    private readonly applier: Applier,
    private readonly osInfo: JsonObject,
  ) {}

  get dataDir(): string {
    return join(this.o.root, "var/lib/caisson");
  }

  /**
   * Bring the host's settings up: defaults for absent keys, user data (first boot only), generated
   * values, one commit, then render every configuration file. Bottlerocket's storewolf →
   * early-boot-config → sundog → settings-committer → settings-applier, in one process.
   */
  static async start(o: HostOptions): Promise<Host> {
    const dataDir = join(o.root, "var/lib/caisson");
    const migration = await Host.migrate(o);
    const store = Datastore.open(join(dataDir, "datastore"), o.version);
    const catalog = loadServiceCatalog(o.imageDir);
    const templates = loadTemplates(join(o.imageDir, "templates"));
    const caBase = join(o.root, "usr/share/caisson/ca-bundle-base.crt");
    const os = readOs(o.root, { version: o.version, variant: o.variant });
    const applier = new Applier({
      root: o.root,
      catalog,
      templates,
      serviceManager: o.serviceManager,
      os,
      host: { "ca-bundle-base": existsSync(caBase) ? readFileSync(caBase, "utf8") : "" },
    });
    const host = new Host(o, store, applier, os);
    host.migration = migration;
    await host.bringUp();
    return host;
  }

  /**
   * Bring the datastore to this version (src/migrations) before it is opened. A failure leaves the
   * old store in place and the host still comes up on it (the API answers, files are rendered so
   * the host is usable), but the boot status says so and the health gate fails the boot: a slot on
   * trial then falls back to the previous version, whose datastore this still is.
   */
  private static async migrate(o: HostOptions): Promise<MigrationStatus> {
    try {
      const r = await migrateDatastore({ root: o.root, toVersion: o.version, variant: o.variant, log: o.log });
      return r ? { state: "done", ...r } : { state: "none", to: o.version, ran: [] };
    } catch (e) {
      const msg = (e as Error).message;
      o.log(`datastore migration FAILED, starting on the old datastore: ${msg}`);
      return { state: "failed", ...(e instanceof MigrationError ? { from: e.from } : {}), to: o.version, ran: [], error: msg };
    }
  }

  private async bringUp(): Promise<void> {
    const started = new Date().toISOString();
    // Pending transactions do not outlive a restart (as storewolf): a half-made change from before
    // must not be committed by accident later.
    for (const tx of this.store.transactions()) this.store.deleteTx(tx);
    const opened = this.store.opened;
    if (opened.state !== "ok") {
      this.o.log(
        `datastore DEGRADED: ${opened.error}; started on ${opened.state === "last-good" ? "its last good copy (the last commit may be missing)" : "default settings (no good copy left)"}` +
          (opened.kept ? `; the unreadable file is kept as ${opened.kept}` : ""),
      );
    }

    const live = this.store.liveSettings();
    let launch = missingLeaves(defaultsFor(this.o.variant), live);

    const userData = this.readUserDataOnce();
    if (userData.settings) launch = deepMerge(launch, userData.settings);

    const generated: string[] = [];
    const sofar = deepMerge(live, launch);
    for (const [key, { path, generator }] of generatorsFor(this.o.variant)) {
      if (getPath(sofar, path) !== undefined) continue;
      const value = await generators[generator]!();
      if (value === undefined) continue;
      launch = setPath(launch, path, value);
      generated.push(key);
    }
    if (Object.keys(launch).length) {
      validateSettings(this.o.variant, launch);
      this.store.patch(LAUNCH_TX, launch);
      const changed = this.store.commit(LAUNCH_TX);
      this.o.log(`committed launch settings: ${changed.join(", ")}`);
    }
    if (userData.status) this.recordUserData(userData.status);
    this.o.log(`settings: ${JSON.stringify(redactSettings(this.o.variant, this.store.liveSettings()))}`);

    let applied = true;
    let applyError: string | undefined;
    try {
      await this.applier.apply(this.store.liveSettings(), "all");
    } catch (e) {
      applied = false;
      applyError = (e as Error).message;
      this.o.log(`applying settings failed: ${applyError}`);
    }
    this.status = {
      "user-data": this.userDataStatus(),
      migration: this.migration,
      datastore: opened,
      "settings-applied": applied,
      ...(applyError ? { "apply-error": applyError } : {}),
      generated,
      "started-at": started,
    };
  }

  private get userDataRecord(): string {
    return join(this.dataDir, "early-boot-config.json");
  }

  /**
   * Read, parse and validate user data, at first boot only. Each source is one document: an invalid
   * one is rejected whole (nothing of it applied) and the others still apply — so a bad document
   * from the user does not take away, say, the network API's certificates handed over by `launch`.
   */
  private readUserDataOnce(): { settings?: JsonObject; status?: UserDataStatus } {
    if (existsSync(this.userDataRecord)) return {};
    const at = new Date().toISOString();
    const sources: string[] = [];
    const rejected: UserDataRejection[] = [];
    let merged: JsonObject = {};
    for (const src of this.o.userDataSources) {
      try {
        const bytes = src.read();
        if (bytes === undefined) continue;
        const settings = parseUserData(bytes, src.name);
        try {
          validateSettings(this.o.variant, settings);
        } catch (e) {
          const se = e as Error & { key?: string };
          throw new UserDataError(`user data from ${src.name}: ${se.message}`, src.name, undefined, undefined, se.key);
        }
        const next = deepMerge(merged, settings);
        // Each source is within the limits (parseUserData); together they must be too.
        try {
          checkSettingsSize(next, `user data from ${src.name} merged with the sources before it`);
        } catch (e) {
          throw new UserDataError((e as Error).message, src.name);
        }
        merged = next;
        sources.push(src.name);
      } catch (e) {
        const ue = e instanceof UserDataError ? e : new UserDataError(`user data from ${src.name}: ${(e as Error).message}`, src.name);
        this.o.log(`user data rejected, nothing of it applied: ${ue.message}`);
        rejected.push({ message: ue.message, source: ue.source, line: ue.line, column: ue.column, key: ue.key });
      }
    }
    if (sources.length) this.o.log(`user data from ${sources.join(", ")} applied: ${changedKeys({}, merged).join(", ")}`);
    const state = rejected.length ? "rejected" : sources.length ? "applied" : "absent";
    const status: UserDataStatus = { state, sources, ...(rejected.length ? { error: rejected[0], rejected } : {}), at };
    return { settings: sources.length ? merged : undefined, status };
  }

  private recordUserData(status: UserDataStatus): void {
    // Written after the launch commit: a crash before it means user data is read again, which is
    // safe because nothing of it was committed or it is re-applied identically.
    writeFileAtomic(this.userDataRecord, JSON.stringify(status), { durable: true, mode: 0o600 });
  }

  private userDataStatus(): UserDataStatus {
    return JSON.parse(readFileSync(this.userDataRecord, "utf8")) as UserDataStatus;
  }

  // ---- what the API calls ----

  bootStatus(): BootStatus {
    return this.status;
  }

  applyHistory(): JsonObject[] {
    return this.history as unknown as JsonObject[];
  }

  /**
   * Reboot shortly after answering: systemd starts stopping services (this daemon too) as soon as
   * the job is queued, so the caller would otherwise lose its answer. A failure to queue it is
   * logged (the API has already answered 204).
   */
  reboot(): void {
    this.o.log("reboot requested through the API");
    setTimeout(() => this.o.serviceManager.reboot().catch((e: Error) => this.o.log(`reboot failed: ${e.message}`)), 500);
  }

  /** Add what only the daemon knows (boot, health) to the boot status. */
  reportBoot(part: "boot" | "health" | "data-partition", value: unknown): void {
    this.status[part] = value;
  }

  os(): JsonObject {
    return this.osInfo;
  }

  liveSettings(): JsonObject {
    return this.store.liveSettings();
  }

  liveSettingsJson(): string {
    return (this.liveJson ??= JSON.stringify(this.store.liveSettings()));
  }

  model(): JsonObject {
    return {
      settings: this.store.liveSettings(),
      services: this.services(),
      "configuration-files": this.configurationFiles(),
      os: this.osInfo,
    };
  }

  services(): JsonObject {
    return this.applier.servicesView() as unknown as JsonObject;
  }

  configurationFiles(): JsonObject {
    return this.applier.configurationFilesView() as unknown as JsonObject;
  }

  affectedServices(keys: string[]): JsonObject {
    return this.applier.affectedServices(keys);
  }

  templatesFor(keys: string[]): JsonObject {
    return this.applier.templatesFor(keys);
  }

  settingGenerators(): JsonObject {
    return Object.fromEntries([...generatorsFor(this.o.variant)].map(([k, g]) => [k, g.generator]));
  }

  pendingSettings(tx: string): JsonObject {
    checkTxName(tx);
    return this.store.pendingSettings(tx);
  }

  transactions(): string[] {
    return this.store.transactions();
  }

  /** Validate a partial settings tree and add it to a pending transaction. Invalid: nothing changes. */
  patch(tx: string, patch: JsonObject): void {
    checkTxName(tx);
    if (Object.keys(patch).length === 0) throw new ApiError(400, "nothing to set: the settings object is empty");
    // Size and depth first: validation walks the tree and previews bad values with JSON.stringify.
    checkSettingsSize(patch, "the settings to set");
    validateSettings(this.o.variant, patch);
    // Repeated PATCHes must not grow a transaction past the limit either.
    checkSettingsSize(deepMerge(this.store.pendingSettings(tx), patch), `transaction '${tx}' with these settings`);
    this.store.patch(tx, patch);
  }

  patchKeypairs(tx: string, pairs: string[]): void {
    let patch: JsonObject = {};
    for (const pair of pairs) {
      const split = splitKeyPair(pair);
      if (split === "unterminated") throw new ApiError(400, `invalid key pair '${pair}': unterminated quote in the key`);
      if (split === "no-equals") throw new ApiError(400, `invalid key pair '${pair}': expected key=value`);
      const { key, value: raw } = split;
      const path = parseSettingsKey(key);
      if (path.length === 0) throw new ApiError(400, `invalid key '${key}': name a setting, e.g. settings.motd`);
      patch = setPath(patch, path, coerceKeypairValue(this.o.variant, path, raw));
    }
    this.patch(tx, patch);
  }

  deleteTx(tx: string): string[] {
    checkTxName(tx);
    return this.store.deleteTx(tx);
  }

  /** Run writes one at a time: commit and apply must not interleave. */
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.writes.then(fn, fn);
    this.writes = run.catch(() => undefined);
    return run;
  }

  commit(tx: string): Promise<string[]> {
    return this.serial(() => this.commitNow(tx));
  }

  private commitNow(tx: string): string[] {
    checkTxName(tx);
    this.checkCommitSize(tx);
    const changed = this.store.commit(tx);
    this.liveJson = undefined;
    this.o.log(`committed transaction '${tx}': ${changed.join(", ") || "no value changed"}`);
    if (changed.length) {
      try {
        this.o.onCommit?.(changed);
      } catch (e) {
        this.o.log(`after commit: ${(e as Error).message}`);
      }
    }
    return changed;
  }

  /** Live settings merged with a transaction must stay within the limits of a settings tree. */
  private checkCommitSize(tx: string): void {
    const pending = this.store.pendingSettings(tx);
    if (Object.keys(pending).length) checkSettingsSize(deepMerge(this.store.liveSettings(), pending), `live settings with transaction '${tx}'`);
  }

  apply(keys: string[] | "all"): Promise<ApplyPlan> {
    return this.serial(() => this.applyNow(keys));
  }

  private async applyNow(keys: string[] | "all"): Promise<ApplyPlan> {
    const plan = await this.applier.apply(this.store.liveSettings(), keys);
    this.history.unshift({ at: new Date().toISOString(), keys, files: plan.files.map((f) => f.path), "restart-units": plan["restart-units"] });
    this.history.length = Math.min(this.history.length, 20);
    if (plan.files.length) {
      this.o.log(`rewrote ${plan.files.map((f) => f.path).join(", ")}; restarted ${plan["restart-units"].join(", ") || "nothing"}`);
    }
    return plan;
  }

  commitAndApply(tx: string): Promise<string[]> {
    return this.serial(async () => {
      const changed = this.commitNow(tx);
      if (changed.length) {
        try {
          await this.applyNow(changed);
        } catch (e) {
          throw new ApiError(500, `settings committed, but applying them failed: ${(e as Error).message}`);
        }
      }
      return changed;
    });
  }

  /** What commit_and_apply would change: keys, file diffs and restarts. Changes nothing. */
  previewCommit(tx: string): { "changed-keys": string[] } & ApplyPlan {
    checkTxName(tx);
    const pending = this.store.pendingSettings(tx);
    if (Object.keys(pending).length === 0) throw new ApiError(422, `transaction '${tx}' has no pending settings to commit`);
    this.checkCommitSize(tx);
    const live = this.store.liveSettings();
    const next = deepMerge(live, pending);
    const changed = changedKeys(live, next);
    const plan = changed.length ? this.applier.dryRun(next, changed) : { files: [], services: [], "restart-units": [] };
    return { "changed-keys": changed, ...plan };
  }
}

/** The leaves of `defaults` that `live` does not have. */
function missingLeaves(defaults: JsonObject, live: JsonObject): JsonObject {
  let out: JsonObject = {};
  for (const p of leafPaths(defaults)) {
    if (getPath(live, p) === undefined) out = setPath(out, p, getPath(defaults, p) as Json);
  }
  return out;
}
