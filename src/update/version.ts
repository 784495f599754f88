// Semantic versions (semver.org), through the `semver` package: the project's one home for version
// helpers. The update manifest's versions and hop keys, the repository tool and the migrator all
// order versions here (semver precedence: a pre-release sorts before its release, build metadata
// is ignored).
//
// What each caller accepts:
// - compareVersions/maxVersion: X.Y.Z[-pre][+build], with an optional leading v (manifest data,
//   hop keys, version-lock);
// - assertSemver: exactly X.Y.Z or X.Y.Z-pre (what the repository tool publishes: no v, no +build);
// - normalizeVersion: a version-lock's leading v dropped, nothing else checked.
import semver from "semver";

function parse(v: string): semver.SemVer {
  const p = semver.parse(v);
  if (!p) throw new Error(`not a semantic version (X.Y.Z): '${v}'`);
  return p;
}

/** Semver precedence: -1, 0, 1. Throws on a string that is not a version. */
export function compareVersions(a: string, b: string): -1 | 0 | 1 {
  return semver.compare(parse(a), parse(b));
}

/** The higher of two versions (`a` when they are equal). */
export const maxVersion = (a: string, b: string) => (compareVersions(a, b) >= 0 ? a : b);

/** Exactly X.Y.Z or X.Y.Z-pre: no leading v, no build metadata, no surrounding blanks. */
export const isSemver = (v: string) => semver.valid(v) === v;

export function assertSemver(v: string, what = "version"): void {
  if (!isSemver(v)) throw new Error(`${what} "${v}" is not a semantic version (X.Y.Z or X.Y.Z-pre)`);
}

/** "v1.2.3" → "1.2.3" (version-lock accepts either). */
export const normalizeVersion = (s: string) => s.trim().replace(/^v/, "");

/** The same version, a leading v aside (a version-lock may carry one). */
export const sameVersion = (a: string, b: string) => normalizeVersion(a) === normalizeVersion(b);
