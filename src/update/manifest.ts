// The update index (`manifest.json`), a TUF target like Bottlerocket's (its update_metadata
// crate), and the host paths the update tool chain agrees on. This file is the contract between
// the repository tool (src/repo), the update agent (src/update) and the migrator (src/migrations):
// the types, the one validating reader (parseManifest) and its writer (serializeManifest), the
// repository's rules for changing it (addUpdate, setCeiling, addHop: pure functions over a
// Manifest, as Bottlerocket's add_update and update_max_version), and the walk over the migration
// hops (findMigrations), so the agent at prepare time and the migrator after the reboot plan the
// same chain.
//
// Differences from Bottlerocket, on purpose:
// - `images` names the slot's four files (root, verity hash tree, kernel, initrd: each slot boots
//   its own kernel from the ESP) and the update carries the slot's root hash and kernel
//   parameters, from which the agent writes the slot's Boot Loader Spec entry.
// - Migrations are JavaScript modules (run on the image's Node runtime), not binaries.
import { ESP_DIR } from "../boot/slots.js";
import { MAX_SEED } from "../settings/schema.js";
import { compareVersions, maxVersion } from "./version.js";
import { hostPaths } from "../fsutil/paths.js";

/** The waves' seeds (settings.updates.seed) are in [0, MAX_SEED); settings owns the bound. */
export { MAX_SEED };

export interface UpdateImages {
  /** TUF target names. */
  root: string;
  /** The dm-verity hash tree (`verity` everywhere else; `hash` is the field's name on the wire). */
  hash: string;
  kernel: string;
  initrd: string;
}

export interface Update {
  variant: string;
  arch: string;
  version: string;
  /** Ceiling: hosts never go above it; hosts already above it go down to the highest allowed. */
  max_version: string;
  /** Starting seed (decimal string, 0..2047) → RFC 3339 UTC start time; ascending in both. */
  waves: Record<string, string>;
  images: UpdateImages;
  /** dm-verity root hash of `images.root`, for the slot's kernel command line. */
  roothash: string;
  /** Kernel parameters of the slot besides the verity ones (from build.json). */
  "kernel-parameters": string[];
  /** Boot tries the bootloader gives the new slot before falling back. */
  "boot-tries": number;
}

export interface Manifest {
  updates: Update[];
  /** "(FROM, TO)" → ordered TUF target names of the migrations for that hop ([] = none needed). */
  migrations: Record<string, string[]>;
}

/** Target names, as the repository tool publishes them. */
export const targetName = {
  image: (variant: string, arch: string, version: string, part: keyof UpdateImages) =>
    `caisson-${variant}-${arch}-v${version}-${part}${part === "kernel" ? ".vmlinuz" : part === "initrd" ? ".img" : part === "root" ? ".erofs" : ".verity"}`,
  /** Migration module `name` introduced with `version`. */
  migration: (version: string, name: string) => `migrate_v${version}_${name}.mjs`,
};

export const hopKey = (from: string, to: string) => `(${from}, ${to})`;

/**
 * Host paths, relative to the host's root ("/" on the image, any directory in workstation mode).
 * The repository's base URLs come from settings.updates.{metadata,targets}-base-url.
 */
export const updatePaths = {
  /** The trust anchor shipped in the read-only image (Bottlerocket: /usr/share/updog/root.json). */
  trustedRoot: hostPaths.updateTrustedRoot,
  /** tuf-js' local metadata (root chain, timestamp, snapshot, targets), refreshed by the agent. */
  metadata: hostPaths.updateMetadata,
  /**
   * What prepare caches for the migrator, verified and kept for offline use after reboot:
   *   <cache>/metadata/{root.json,targets.json,...} (the metadata that verified the targets)
   *   <cache>/targets/manifest.json and the migration modules by target name
   */
  cache: hostPaths.updateCache,
  /** The agent's persistent state (failed versions, staged update, boot history), survives reboots. */
  state: hostPaths.updateState,
  /** Slot block devices (regular files in workstation mode). */
  partition: hostPaths.partition,
  /** The EFI system partition (loader/entries, caisson/<slot>/{vmlinuz,initrd.img}). */
  esp: ESP_DIR,
  /** The settings datastore (current -> v<version>_<rand>). */
  datastore: hostPaths.datastore,
} as const;

export class ManifestError extends Error {}

const isStr = (v: unknown): v is string => typeof v === "string";

/** Parse and check the shape of manifest.json (signed, but still checked: a clear error beats a crash later). */
export function parseManifest(text: string): Manifest {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new ManifestError(`manifest.json is not JSON: ${(e as Error).message}`);
  }
  const m = j as Partial<Manifest>;
  if (!m || typeof m !== "object" || !Array.isArray(m.updates)) throw new ManifestError("manifest.json: 'updates' must be an array");
  m.updates.forEach((u, i) => {
    const where = `manifest.json: updates[${i}]`;
    for (const k of ["variant", "arch", "version", "max_version", "roothash"] as const) if (!isStr(u?.[k])) throw new ManifestError(`${where}.${k} must be a string`);
    if (!u.images || !["root", "hash", "kernel", "initrd"].every((k) => isStr((u.images as unknown as Record<string, unknown>)[k]))) {
      throw new ManifestError(`${where}.images must name root, hash, kernel and initrd`);
    }
    if (!u.waves || typeof u.waves !== "object" || !Object.values(u.waves).every(isStr)) throw new ManifestError(`${where}.waves must map seeds to times`);
    if (!Array.isArray(u["kernel-parameters"]) || !u["kernel-parameters"].every(isStr)) throw new ManifestError(`${where}.kernel-parameters must be a list of strings`);
    if (!Number.isInteger(u["boot-tries"]) || u["boot-tries"] < 1) throw new ManifestError(`${where}.boot-tries must be a positive integer`);
  });
  const mig = m.migrations ?? {};
  if (typeof mig !== "object" || !Object.values(mig).every((v) => Array.isArray(v) && v.every(isStr))) {
    throw new ManifestError("manifest.json: 'migrations' must map \"(FROM, TO)\" to lists of target names");
  }
  return { updates: m.updates, migrations: mig };
}

/** manifest.json's bytes as the repository tool publishes them (indented, newline-terminated). */
export const serializeManifest = (m: Manifest): Buffer => Buffer.from(JSON.stringify(m, null, 2) + "\n");

// ---------------------------------------------------------------------------------------------
// The repository tool's rules for changing the manifest (pure: each returns a new Manifest).

const sameTarget = (a: Pick<Update, "variant" | "arch">, b: Pick<Update, "variant" | "arch">) => a.variant === b.variant && a.arch === b.arch;

/** The published update of this variant, arch and version, if any. */
const findUpdate = (m: Manifest, u: Pick<Update, "variant" | "arch" | "version">): Update | undefined =>
  m.updates.find((x) => sameTarget(x, u) && x.version === u.version);

/** The highest version of `variant` (any arch) published below `version`: a new hop's lower end. */
export function previousVersion(m: Manifest, variant: string, version: string): string | undefined {
  return m.updates
    .filter((u) => u.variant === variant && compareVersions(u.version, version) < 0)
    .map((u) => u.version)
    .sort(compareVersions)
    .at(-1);
}

/** Newest first, like updog lists them. */
const byNewest = (a: Update, b: Update) => compareVersions(b.version, a.version) || a.variant.localeCompare(b.variant) || a.arch.localeCompare(b.arch);

/** addUpdate's refusal, on its own: the repository tool checks it before copying any image. */
export function checkAddable(m: Manifest, u: Pick<Update, "variant" | "arch" | "version">, o: { replace?: boolean } = {}): void {
  if (findUpdate(m, u) && !o.replace) throw new ManifestError(`${u.variant} ${u.arch} ${u.version} is already published; pass replace (--replace) to publish it again`);
}

/**
 * Bottlerocket's add_update: `update` joins the manifest (replacing one of the same variant, arch
 * and version only with `replace`). Its max_version, when not given, is the higher of its version
 * and the current ceiling of its variant+arch; whichever it is becomes the ceiling of every update
 * of that variant+arch. The list stays newest first.
 */
export function addUpdate(m: Manifest, update: Omit<Update, "max_version"> & { max_version?: string }, o: { replace?: boolean } = {}): { manifest: Manifest; update: Update } {
  checkAddable(m, update, o);
  // The ceiling counts the update being replaced too: replacing one never lowers it by itself.
  const ceiling = update.max_version ?? m.updates.filter((u) => sameTarget(u, update)).reduce((acc, u) => maxVersion(acc, u.max_version), update.version);
  const others = m.updates.filter((u) => !(sameTarget(u, update) && u.version === update.version));
  // Built in the wire's key order: max_version right after version (a given one is the ceiling).
  const { variant, arch, version, ...rest } = update;
  const added: Update = { variant, arch, version, max_version: ceiling, ...rest };
  const updates = [...others.map((u) => (sameTarget(u, update) ? { ...u, max_version: ceiling } : u)), added].sort(byNewest);
  return { manifest: { updates, migrations: { ...m.migrations } }, update: added };
}

/**
 * Bottlerocket's update_max_version: set the ceiling of every update of `variant` (and `arch`, when
 * given). Lowering it pulls a bad release back. Throws when no update matches.
 */
export function setCeiling(m: Manifest, o: { variant: string; arch?: string; maxVersion: string }): { manifest: Manifest; updated: number } {
  const matches = (u: Update) => u.variant === o.variant && (o.arch === undefined || u.arch === o.arch);
  const updated = m.updates.filter(matches).length;
  if (updated === 0) throw new ManifestError(`no update of variant ${o.variant}${o.arch ? ` (${o.arch})` : ""} is published`);
  return { manifest: { updates: m.updates.map((u) => (matches(u) ? { ...u, max_version: o.maxVersion } : u)), migrations: { ...m.migrations } }, updated };
}

/**
 * The hop `(from, to)` and its migrations (replacing any list it had). The migrator needs every
 * hop to exist, even with nothing to run.
 */
export function addHop(m: Manifest, from: string, to: string, migrations: string[]): Manifest {
  return { updates: [...m.updates], migrations: { ...m.migrations, [hopKey(from, to)]: [...migrations] } };
}

// Which migrations take the datastore from one version to another: Bottlerocket's find_migrations
// over the manifest's "(FROM, TO)" hops. The agent caches the chain's modules at prepare; the
// migrator (src/migrations/migrator.ts) walks the same chain after the reboot, offline.

export class MissingMigrationError extends Error {}

export interface PlannedMigration {
  /** TUF target name of the module. */
  name: string;
  direction: "forward" | "backward";
}

const HOP = /^\(\s*([^,\s]+)\s*,\s*([^)\s]+)\s*\)$/;

/** The manifest's hops, parsed; a malformed or duplicate key is an error (as update_metadata). */
function parseHops(manifest: Pick<Manifest, "migrations">): { from: string; to: string; migrations: string[] }[] {
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
