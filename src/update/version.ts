// Version comparison for X.Y.Z[-pre][+build]. A tiny comparator instead of the `semver` package:
// semver is only a transitive dependency here (not in package.json), and the manifest's versions
// are plain X.Y.Z, so importing it would tie us to another package's dependency tree.

export interface Version {
  major: number;
  minor: number;
  patch: number;
  pre: string[];
}

const RE = /^v?(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

export function parseVersion(s: string): Version | undefined {
  const m = RE.exec(s.trim());
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre: m[4] ? m[4].split(".") : [] };
}

function must(s: string): Version {
  const v = parseVersion(s);
  if (!v) throw new Error(`not a version (X.Y.Z): '${s}'`);
  return v;
}

/** Semver precedence: -1, 0, 1. A pre-release sorts before its release. */
export function compareVersions(a: string, b: string): number {
  const x = must(a);
  const y = must(b);
  for (const k of ["major", "minor", "patch"] as const) if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1;
  if (!x.pre.length || !y.pre.length) return x.pre.length === y.pre.length ? 0 : x.pre.length ? -1 : 1;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn && Number(p) !== Number(q)) return Number(p) < Number(q) ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1;
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}

/** "v1.2.3" → "1.2.3" (version-lock accepts either). */
export const normalizeVersion = (s: string) => s.trim().replace(/^v/, "");
