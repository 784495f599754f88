// The settings service the API calls: pending transactions, commit, and applying through the
// configuration-file controller (one apply at a time, in the controller runner). Commits wake the
// controllers whose inputs they touch. Errors are domain errors (src/settings, src/datastore,
// src/applier); src/api/errors.ts gives each kind its status.
import type { Datastore } from "../datastore/store.js";
import { checkTxName } from "../datastore/store.js";
import { ApplyError, type Applier } from "../applier/applier.js";
import type { ApplyPlan, DryRun } from "../protocol/types.js";
import type { ControllerRunner } from "../controller/runner.js";
import { changedKeys, deepMerge, KeyError, parseSettingsKey, setPath, splitKeyPair, type JsonObject } from "../settings/keys.js";
import { coerceKeypairValue, generatorsFor, SettingsError, validateSettings } from "../settings/model.js";
import { checkSettingsSize, LimitError, MAX_TRANSACTIONS } from "../settings/limits.js";
import { NothingPendingError } from "../datastore/store.js";
import type { Variant } from "../settings/schema.js";
import type { SettingsService } from "../api/services.js";

export const CONFIG_FILES = "configuration-files";

export class HostSettings implements SettingsService {
  private liveJsonCache: string | undefined;

  constructor(
    private readonly o: {
      store: Datastore;
      variant: Variant;
      applier: Applier;
      runner: ControllerRunner;
      log: (msg: string) => void;
    },
  ) {}

  live(): JsonObject {
    return this.o.store.liveSettings();
  }

  liveJson(): string {
    return (this.liveJsonCache ??= JSON.stringify(this.o.store.liveSettings()));
  }

  pending(tx: string): JsonObject {
    checkTxName(tx);
    return this.o.store.pendingSettings(tx);
  }

  transactions(): string[] {
    return this.o.store.transactions();
  }

  patch(tx: string, patch: JsonObject): void {
    checkTxName(tx);
    if (Object.keys(patch).length === 0) throw new SettingsError("nothing to set: the settings object is empty", "settings", "at least one setting");
    // Size and depth first: validation walks the tree and previews bad values with JSON.stringify.
    checkSettingsSize(patch, "the settings to set");
    validateSettings(this.o.variant, patch);
    // Repeated PATCHes must not grow a transaction past the limit either.
    checkSettingsSize(deepMerge(this.o.store.pendingSettings(tx), patch), `transaction '${tx}' with these settings`);
    const open = this.o.store.transactions();
    if (!open.includes(tx) && open.length >= MAX_TRANSACTIONS) {
      throw new LimitError(
        `${open.length} transactions are pending, the limit: commit or delete one (DELETE /tx?tx=NAME; GET /tx/list names them) before starting '${tx}'`,
        "transactions",
        413,
      );
    }
    this.o.store.patch(tx, patch);
  }

  patchKeypairs(tx: string, pairs: string[]): void {
    let patch: JsonObject = {};
    for (const pair of pairs) {
      const split = splitKeyPair(pair);
      if (split === "unterminated") throw new KeyError(`invalid key pair '${pair.slice(0, 200)}': unterminated quote in the key`, pair.slice(0, 200));
      if (split === "no-equals") throw new KeyError(`invalid key pair '${pair.slice(0, 200)}': expected key=value`, pair.slice(0, 200));
      const { key, value: raw } = split;
      const path = parseSettingsKey(key);
      if (path.length === 0) throw new KeyError(`invalid key '${key.slice(0, 200)}': name a setting, e.g. settings.motd`, key.slice(0, 200));
      patch = setPath(patch, path, coerceKeypairValue(this.o.variant, path, raw));
    }
    this.patch(tx, patch);
  }

  deleteTx(tx: string): string[] {
    checkTxName(tx);
    return this.o.store.deleteTx(tx);
  }

  async commit(tx: string): Promise<string[]> {
    const changed = this.commitNow(tx);
    // Controllers whose inputs changed reconcile in the background; their state is in /boot-status.
    if (changed.length) void this.o.runner.notify(changed);
    return changed;
  }

  private commitNow(tx: string): string[] {
    checkTxName(tx);
    this.checkCommitSize(tx);
    const changed = this.o.store.commit(tx);
    this.liveJsonCache = undefined;
    this.o.log(`committed transaction '${tx}': ${changed.join(", ") || "no value changed"}`);
    return changed;
  }

  /** Live settings merged with a transaction must stay within the limits of a settings tree. */
  private checkCommitSize(tx: string): void {
    const pending = this.o.store.pendingSettings(tx);
    if (Object.keys(pending).length) checkSettingsSize(deepMerge(this.o.store.liveSettings(), pending), `live settings with transaction '${tx}'`);
  }

  async apply(keys: string[] | "all", context?: string): Promise<ApplyPlan> {
    const out = await this.o.runner.run<ApplyPlan>(CONFIG_FILES, "apply", keys);
    if (out.ok) return out.value!;
    const e = out.error;
    if (e instanceof ApplyError) throw context ? new ApplyError(e.failures, e.plan, context) : e;
    throw e instanceof Error ? new Error(`${context ? `${context}: ` : ""}${e.message}`) : e;
  }

  async commitAndApply(tx: string): Promise<string[]> {
    const changed = this.commitNow(tx);
    if (changed.length) {
      // The other controllers in the background; the files before answering.
      void this.o.runner.notify(changed);
      await this.apply(changed, "settings committed, but applying them failed");
    }
    return changed;
  }

  preview(tx: string): DryRun {
    checkTxName(tx);
    const pending = this.o.store.pendingSettings(tx);
    if (Object.keys(pending).length === 0) throw new NothingPendingError(`transaction '${tx}' has no pending settings to commit`);
    this.checkCommitSize(tx);
    const live = this.o.store.liveSettings();
    const next = deepMerge(live, pending);
    const changed = changedKeys(live, next);
    const plan = changed.length ? this.o.applier.dryRun(next, changed) : { files: [], services: [], "restart-units": [] };
    return { "changed-keys": changed, ...plan };
  }

  generators(): Record<string, string> {
    return Object.fromEntries([...generatorsFor(this.o.variant)].map(([k, g]) => [k, g.generator]));
  }
}
