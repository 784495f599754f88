// Semantic versions (X.Y.Z with an optional pre-release), compared as semver.org §11 says:
// what max_version, "highest version below" and the migration hops are ordered by.
const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?$/;

export function isSemver(v: string): boolean {
  return SEMVER.test(v);
}

export function assertSemver(v: string, what = "version"): void {
  if (!isSemver(v)) throw new Error(`${what} "${v}" is not a semantic version (X.Y.Z or X.Y.Z-pre)`);
}

/** <0, 0, >0 like a sort comparator. */
export function compareVersions(a: string, b: string): number {
  const pa = SEMVER.exec(a);
  const pb = SEMVER.exec(b);
  if (!pa || !pb) throw new Error(`cannot compare "${a}" and "${b}": not semantic versions`);
  for (let i = 1; i <= 3; i++) {
    const d = Number(pa[i]) - Number(pb[i]);
    if (d !== 0) return d;
  }
  const ra = pa[4];
  const rb = pb[4];
  // A pre-release sorts below its release.
  if (ra === undefined || rb === undefined) return ra === rb ? 0 : ra === undefined ? 1 : -1;
  const xa = ra.split(".");
  const xb = rb.split(".");
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    const ia = xa[i];
    const ib = xb[i];
    if (ia === undefined) return -1;
    if (ib === undefined) return 1;
    const na = /^\d+$/.test(ia);
    const nb = /^\d+$/.test(ib);
    if (na && nb) {
      const d = Number(ia) - Number(ib);
      if (d !== 0) return d;
    } else if (na !== nb) {
      return na ? -1 : 1; // numeric identifiers sort below alphanumeric ones
    } else if (ia !== ib) {
      return ia < ib ? -1 : 1;
    }
  }
  return 0;
}

export const maxVersion = (a: string, b: string) => (compareVersions(a, b) >= 0 ? a : b);
