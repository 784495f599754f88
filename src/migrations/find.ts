// Which migrations take the datastore from one version to another: Bottlerocket's
// find_migrations (reference §5.6) over the manifest's "(FROM, TO)" hops.
import type { Manifest } from "../update/manifest.js";
import { compareVersions } from "../update/version.js";

export class MissingMigrationError extends Error {}

export interface PlannedMigration {
  /** TUF target name of the module. */
  name: string;
  direction: "forward" | "backward";
}

const HOP = /^\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$/;

/** The manifest's hops, parsed; a malformed or duplicate key is an error (as update_metadata). */
export function parseHops(manifest: Pick<Manifest, "migrations">): { from: string; to: string; migrations: string[] }[] {
  const seen = new Set<string>();
  return Object.entries(manifest.migrations ?? {}).map(([key, migrations]) => {
    const m = HOP.exec(key);
    if (!m) throw new Error(`manifest.json: migration key '${key}' is not "(FROM, TO)"`);
    const [from, to] = [m[1]!, m[2]!];
    compareVersions(from, to); // both must parse
    const norm = `${from}|${to}`;
    if (seen.has(norm)) throw new Error(`manifest.json: migration hop ${key} appears twice`);
    seen.add(norm);
    if (!Array.isArray(migrations) || migrations.some((n) => typeof n !== "string")) throw new Error(`manifest.json: migrations of ${key} are not a list of target names`);
    return { from, to, migrations };
  });
}

/**
 * The migrations from `from` to `to`, in the order to run them. Walks up from the lower version,
 * at each step taking the hop from the current version that goes furthest without passing the
 * higher one. A downgrade runs the same list in reverse, each module backward.
 */
export function findMigrations(from: string, to: string, manifest: Pick<Manifest, "migrations">): PlannedMigration[] {
  const order = compareVersions(from, to);
  if (order === 0) return [];
  const [low, high] = order < 0 ? [from, to] : [to, from];
  const hops = parseHops(manifest);
  const names: string[] = [];
  let at = low;
  while (compareVersions(at, high) < 0) {
    let best: (typeof hops)[number] | undefined;
    for (const h of hops) {
      if (compareVersions(h.from, at) !== 0 || compareVersions(h.to, high) > 0 || compareVersions(h.to, at) <= 0) continue;
      if (!best || compareVersions(h.to, best.to) > 0) best = h;
    }
    if (!best) throw new MissingMigrationError(`no migration hop from ${at} towards ${high} in the manifest (needed for ${from} -> ${to})`);
    names.push(...best.migrations);
    at = best.to;
  }
  return order < 0 ? names.map((name) => ({ name, direction: "forward" })) : names.reverse().map((name) => ({ name, direction: "backward" }));
}
