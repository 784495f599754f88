// Offline verification of what the update agent cached for the migrator (the cache is written by
// src/update/migration-cache.ts at prepare; migrator.ts reads it after the reboot): the cached TUF
// metadata is checked against the trust anchor in the read-only image, with expiry IGNORED (a host
// may boot weeks after it downloaded an update, and the migrator must still run), then every
// cached target is checked against targets.json. All signature and hash work is @tufjs/models'
// (Metadata.verifyDelegate, MetaFile/TargetFile.verify): no crypto of our own.
//
// Cache layout (src/update/manifest.ts, updatePaths.cache):
//   metadata/root.json, timestamp.json, snapshot.json, targets.json   as tuf-js' Updater writes
//       them (it keeps only the newest root as root.json); an optional <N>.root.json per version
//       lets a root rotated more than once since the image was built be followed step by step.
//   targets/manifest.json and the migration modules, by target name.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { Metadata, MetadataKind, type Root, type Snapshot, type Targets, type Timestamp } from "@tufjs/models";
import { parseManifest, updatePaths, type Manifest } from "../update/manifest.js";

export class VerificationError extends Error {}

export interface VerifiedCache {
  manifest: Manifest;
  /** Verified bytes of the targets asked for, by target name. */
  targets: Map<string, Buffer>;
  /** Version of the targets metadata that vouched for them (for logs). */
  targetsVersion: number;
}

type AnyMeta = Metadata<Root> | Metadata<Timestamp> | Metadata<Snapshot> | Metadata<Targets>;

function readJson(path: string): { bytes: Buffer; json: Record<string, unknown> } {
  if (!existsSync(path)) throw new VerificationError(`${path} is missing`);
  const bytes = readFileSync(path);
  try {
    return { bytes, json: JSON.parse(bytes.toString("utf8")) as Record<string, unknown> };
  } catch (e) {
    throw new VerificationError(`${path} is not JSON: ${(e as Error).message}`);
  }
}

function load<K extends MetadataKind>(kind: K, path: string): { bytes: Buffer; md: AnyMeta } {
  const { bytes, json } = readJson(path);
  try {
    // fromJSON checks the structure and that `_type` is `kind` (it throws on a mismatch).
    return { bytes, md: Metadata.fromJSON(kind as MetadataKind.Root, json as never) as AnyMeta };
  } catch (e) {
    throw new VerificationError(`${path} is not valid ${kind} metadata: ${(e as Error).message}`);
  }
}

/** `delegator` must vouch for `md` as `role` (threshold of its keys); errors name the file. */
function vouch(delegator: Metadata<Root>, role: string, md: AnyMeta, path: string, by: string): void {
  try {
    delegator.verifyDelegate(role, md);
  } catch (e) {
    throw new VerificationError(`${path}: ${role} metadata not signed by a threshold of ${by}'s keys: ${(e as Error).message}`);
  }
}

/**
 * The root to trust: the image's anchor, then each newer root in the cache, each signed by a
 * threshold of the previous root's keys and of its own (the TUF root rotation rule).
 */
function trustedRoot(root: string, metaDir: string): Metadata<Root> {
  const anchorPath = join(root, updatePaths.trustedRoot);
  let trusted = load(MetadataKind.Root, anchorPath).md as Metadata<Root>;
  // The anchor is in the verified image: it is trusted as is, but must at least be consistent.
  vouch(trusted, "root", trusted, anchorPath, "itself");
  const cachedPath = join(metaDir, "root.json");
  const cached = load(MetadataKind.Root, cachedPath).md as Metadata<Root>;
  const latest = cached.signed.version;
  if (latest < trusted.signed.version) throw new VerificationError(`${cachedPath}: version ${latest} is older than the image's root (${trusted.signed.version})`);
  if (latest === trusted.signed.version) {
    if (JSON.stringify(cached.toJSON()) !== JSON.stringify(trusted.toJSON())) {
      throw new VerificationError(`${cachedPath}: version ${latest} differs from the image's root of the same version`);
    }
    return trusted;
  }
  const step = (next: Metadata<Root>, path: string) => {
    vouch(trusted, "root", next, path, `root version ${trusted.signed.version}`);
    vouch(next, "root", next, path, "itself");
    trusted = next;
  };
  for (let v = trusted.signed.version + 1; v < latest; v++) {
    const path = join(metaDir, `${v}.root.json`);
    // tuf-js keeps only the newest root, having walked the whole chain online before the agent
    // cached it: without the intermediate files, the newest root must be signed by a threshold of
    // the newest keys this chain trusts (any root rotation that kept a threshold of old keys).
    if (!existsSync(path)) break;
    const next = load(MetadataKind.Root, path).md as Metadata<Root>;
    if (next.signed.version !== v) throw new VerificationError(`${path}: version ${next.signed.version}, expected ${v}`);
    step(next, path);
  }
  step(cached, cachedPath);
  return trusted;
}

/** Verify the cached metadata and the named targets; returns the manifest and their bytes. */
export async function verifyCache(root: string, wanted: (manifest: Manifest) => string[]): Promise<VerifiedCache> {
  const cacheDir = join(root, updatePaths.cache);
  const metaDir = join(cacheDir, "metadata");
  const rootMd = trustedRoot(root, metaDir);

  // timestamp -> snapshot -> targets: each signed by its role's keys in the root, and each naming
  // the version (and, when listed, length and hashes) of the next. Expiry is not checked.
  const tsPath = join(metaDir, "timestamp.json");
  const ts = load(MetadataKind.Timestamp, tsPath).md as Metadata<Timestamp>;
  vouch(rootMd, "timestamp", ts, tsPath, "the root");
  const snapPath = join(metaDir, "snapshot.json");
  const snap = load(MetadataKind.Snapshot, snapPath);
  vouch(rootMd, "snapshot", snap.md, snapPath, "the root");
  checkMeta(ts.signed.snapshotMeta, snap.md.signed.version, snap.bytes, snapPath, "timestamp.json");
  const tgPath = join(metaDir, "targets.json");
  const tg = load(MetadataKind.Targets, tgPath);
  vouch(rootMd, "targets", tg.md, tgPath, "the root");
  checkMeta((snap.md as Metadata<Snapshot>).signed.meta["targets.json"], tg.md.signed.version, tg.bytes, tgPath, "snapshot.json");
  const targets = (tg.md as Metadata<Targets>).signed.targets;

  const targetsDir = join(cacheDir, "targets");
  const verified = new Map<string, Buffer>();
  const verifyTarget = async (name: string): Promise<Buffer> => {
    const info = targets[name];
    if (!info) throw new VerificationError(`${tgPath} has no target '${name}'`);
    if (Object.keys(info.hashes).length === 0) throw new VerificationError(`${tgPath}: target '${name}' has no hashes`);
    const path = join(targetsDir, name);
    if (!existsSync(path)) throw new VerificationError(`${path} is missing (target '${name}')`);
    const bytes = readFileSync(path);
    try {
      await info.verify(Readable.from([bytes]));
    } catch (e) {
      throw new VerificationError(`${path} does not match targets.json (length or hash): ${(e as Error).message}`);
    }
    verified.set(name, bytes);
    return bytes;
  };

  const manifestBytes = await verifyTarget("manifest.json");
  let manifest: Manifest;
  try {
    manifest = parseManifest(manifestBytes.toString("utf8"));
  } catch (e) {
    // Signed, so not expected; but a clear error beats a crash in the walk over its hops.
    throw new VerificationError(`${join(targetsDir, "manifest.json")}: ${(e as Error).message}`);
  }
  for (const name of wanted(manifest)) if (!verified.has(name)) await verifyTarget(name);
  return { manifest, targets: verified, targetsVersion: tg.md.signed.version };
}

function checkMeta(meta: { version: number; verify(data: Buffer): void } | undefined, version: number, bytes: Buffer, path: string, by: string): void {
  if (!meta) throw new VerificationError(`${by} does not list ${path.split("/").pop()}`);
  if (meta.version !== version) throw new VerificationError(`${path}: version ${version}, but ${by} names version ${meta.version}`);
  try {
    meta.verify(bytes); // length and hashes, if the referring metadata lists them
  } catch (e) {
    throw new VerificationError(`${path} does not match ${by}: ${(e as Error).message}`);
  }
}
