// The migrator: at boot, before the host opens its datastore, bring the datastore to the running
// image's version by running the signed migration modules the update agent cached (Bottlerocket's
// migrator; the hop walk is src/update/manifest.ts's findMigrations, the offline check of the
// cache verify.ts).
//
// The old data directory is never written: the migrated settings go into a NEW data directory
// and only then is `current` flipped to it (src/datastore/layout.ts: writeVersionDir, flipCurrent;
// that file states the crash contract). A crash at any instant leaves `current` pointing at a whole
// old or a whole new directory; a failed migration leaves it untouched. The newest few old
// directories are kept for inspection (never booted against: going back to an older version runs
// the backward migrations into a new directory too); the rest are removed.
import { join } from "node:path";
import { isObject, type JsonObject } from "../settings/keys.js";
import { validateSettings } from "../settings/model.js";
import type { Variant } from "../settings/schema.js";
import { findMigrations, updatePaths, type PlannedMigration } from "../update/manifest.js";
import { helpers } from "./helpers.js";
import { verifyCache } from "./verify.js";
import { currentVersion, flipCurrent, pruneOldDirs, readCurrent, removeLeftovers, writeVersionDir } from "../datastore/layout.js";

export class MigrationError extends Error {
  constructor(
    message: string,
    readonly from: string,
    readonly to: string,
    /** The module that failed, if one did. */
    readonly module?: string,
  ) {
    super(message);
  }
}

export interface MigrationResult {
  from: string;
  to: string;
  /** Modules run, as `<target name> (forward|backward)`. */
  ran: string[];
}

/** Old data directories kept besides the current one. */
const KEEP_OLD = 2;

/**
 * Migrate the datastore under `root` to `toVersion`. undefined: nothing to do (already there, or
 * no datastore yet). Throws MigrationError, with `current` untouched, when anything fails.
 */
export async function migrateDatastore(o: { root: string; toVersion: string; variant: Variant; log: (s: string) => void }): Promise<MigrationResult | undefined> {
  const base = join(o.root, updatePaths.datastore);
  removeLeftovers(base);
  let cur;
  try {
    // Already at this version (as the link's name says): nothing to read, nothing to do.
    if (currentVersion(base) === o.toVersion) return undefined;
    cur = readCurrent(base);
    // An unusable live.json across versions: the migration fails with the reason (the host starts
    // on the old store, degraded; at the same version the store opens on its last good copy).
    if (cur && cur.opened.state !== "ok") throw new Error(`${cur.dir}/live.json cannot be read (${cur.opened.error}): not migrating it`);
  } catch (e) {
    throw new MigrationError(`datastore: ${(e as Error).message}`, "?", o.toVersion);
  }
  if (!cur || cur.version === o.toVersion) return undefined;
  const { version: from } = cur;
  const to = o.toVersion;
  const fail = (msg: string, module?: string): never => {
    throw new MigrationError(`migrating the datastore from ${from} to ${to}: ${msg}`, from, to, module);
  };

  let plan: PlannedMigration[] = [];
  let modules: Map<string, Buffer>;
  try {
    const cache = await verifyCache(o.root, (manifest) => (plan = findMigrations(from, to, manifest)).map((p) => p.name));
    modules = cache.targets;
  } catch (e) {
    return fail((e as Error).message);
  }
  o.log(`migrating the datastore from ${from} to ${to}: ${plan.map((p) => `${p.name} (${p.direction})`).join(", ") || "no migration needed"}`);

  let settings = structuredClone(cur.settings);
  const ran: string[] = [];
  for (const p of plan) {
    const step = `${p.name} (${p.direction})`;
    let out: unknown;
    try {
      const mod = await importVerified(modules.get(p.name)!);
      const fn = mod[p.direction];
      if (typeof fn !== "function") throw new Error(`it exports no ${p.direction} function`);
      // A copy: a module that mutates its argument cannot reach the tree we would fall back to.
      out = await (fn as (s: JsonObject, h: typeof helpers) => unknown)(structuredClone(settings), helpers);
      if (!isObject(out)) throw new Error(`${p.direction} returned ${out === null ? "null" : Array.isArray(out) ? "a list" : typeof out}, not a settings table`);
      out = JSON.parse(JSON.stringify(out)) as JsonObject; // only JSON survives in the store
    } catch (e) {
      return fail(`${step} failed: ${(e as Error).message}`, p.name);
    }
    settings = out as JsonObject;
    ran.push(step);
    o.log(`ran ${step}`);
  }
  try {
    validateSettings(o.variant, settings);
  } catch (e) {
    return fail(`the settings after ${ran.join(", ") || "copying"} do not fit the ${o.variant} settings of ${to}: ${(e as Error).message}`, plan[plan.length - 1]?.name);
  }

  flipCurrent(base, writeVersionDir(base, to, settings, "migrate"), "migrate");
  o.log(`datastore now at ${to}; previous data kept in ${cur.dir}`);
  pruneOldDirs(base, KEEP_OLD);
  return { from, to, ran };
}

/**
 * Import a module from its verified bytes through a data: URL, so what runs is exactly what was
 * verified: importing a file path would read it again after the check (it could have changed in
 * between), and the module loader would resolve imports beside it. (Bottlerocket runs its
 * migration binaries from a sealed memfd for the same reason.)
 */
async function importVerified(bytes: Buffer): Promise<Record<string, unknown>> {
  return (await import(`data:text/javascript;base64,${bytes.toString("base64")}`)) as Record<string, unknown>;
}
