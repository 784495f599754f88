// Bring-up of the host's settings, once at start, before any controller runs (Bottlerocket's
// migrator → storewolf → early-boot-config → sundog → settings-committer, in one process):
// migrate the datastore to this version, open it, drop pending transactions, then commit in one
// launch transaction the defaults for absent keys, first-boot user data and generated values.
import { join } from "node:path";
import { Datastore } from "../datastore/store.js";
import { deepMerge, getPath, leafPaths, setPath, type Json, type JsonObject } from "../settings/keys.js";
import { defaultsFor, generatorsFor, redactSettings, validateSettings } from "../settings/model.js";
import { generators } from "../settings/generators.js";
import type { Variant } from "../settings/schema.js";
import { FirstBootUserData } from "../userdata/first-boot.js";
import type { MigrationStatus, OpenState, UserDataStatus } from "../protocol/types.js";
import type { UserDataSource } from "../userdata/userdata.js";
import { migrateDatastore, MigrationError } from "../migrations/migrator.js";
import { hostPaths } from "../fsutil/paths.js";

export const LAUNCH_TX = "caisson-launch";

export interface BringUpOptions {
  root: string;
  variant: Variant;
  version: string;
  userDataSources: UserDataSource[];
  log: (msg: string) => void;
}

export interface BroughtUp {
  store: Datastore;
  migration: MigrationStatus;
  /** How live settings were found (src/datastore): not "ok" fails the health gate. */
  datastore: OpenState;
  "user-data": UserDataStatus;
  /** Keys whose values a generator made at this start. */
  generated: string[];
  "started-at": string;
}

export async function bringUp(o: BringUpOptions): Promise<BroughtUp> {
  const started = new Date().toISOString();
  const migration = await migrate(o);
  const store = Datastore.open(join(o.root, hostPaths.datastore), o.version);
  // Pending transactions do not outlive a restart (as storewolf): a half-made change from before
  // must not be committed by accident later.
  for (const tx of store.transactions()) store.deleteTx(tx);
  const opened = store.opened;
  if (opened.state !== "ok") {
    o.log(
      `datastore DEGRADED: ${opened.error}; started on ${opened.state === "last-good" ? "its last good copy (the last commit may be missing)" : "default settings (no good copy left)"}` +
        (opened.kept ? `; the unreadable file is kept as ${opened.kept}` : ""),
    );
  }

  const live = store.liveSettings();
  let launch = missingLeaves(defaultsFor(o.variant), live);

  const firstBoot = new FirstBootUserData({ record: join(o.root, hostPaths.userDataRecord), variant: o.variant, sources: o.userDataSources, log: o.log });
  const userData = firstBoot.read();
  if (userData?.settings) launch = deepMerge(launch, userData.settings);

  const generated: string[] = [];
  const sofar = deepMerge(live, launch);
  for (const [key, { path, generator }] of generatorsFor(o.variant)) {
    if (getPath(sofar, path) !== undefined) continue;
    const value = await generators[generator]!();
    if (value === undefined) continue;
    launch = setPath(launch, path, value);
    generated.push(key);
  }
  if (Object.keys(launch).length) {
    validateSettings(o.variant, launch);
    store.patch(LAUNCH_TX, launch);
    const changed = store.commit(LAUNCH_TX);
    o.log(`committed launch settings: ${changed.join(", ")}`);
  }
  if (userData) firstBoot.recordDone(userData.status);
  o.log(`settings: ${JSON.stringify(redactSettings(o.variant, store.liveSettings()))}`);
  return { store, migration, datastore: opened, "user-data": firstBoot.status(), generated, "started-at": started };
}

/**
 * Bring the datastore to this version (src/migrations) before it is opened. A failure leaves the
 * old store in place and the host still comes up on it (the API answers, files are rendered so
 * the host is usable), but the boot status says so and the health gate fails the boot: a slot on
 * trial then falls back to the previous version, whose datastore this still is.
 */
async function migrate(o: BringUpOptions): Promise<MigrationStatus> {
  try {
    const r = await migrateDatastore({ root: o.root, toVersion: o.version, variant: o.variant, log: o.log });
    return r ? { state: "done", ...r } : { state: "none", to: o.version, ran: [] };
  } catch (e) {
    const msg = (e as Error).message;
    o.log(`datastore migration FAILED, starting on the old datastore: ${msg}`);
    return { state: "failed", ...(e instanceof MigrationError ? { from: e.from } : {}), to: o.version, ran: [], error: msg };
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
