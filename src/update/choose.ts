// Which updates apply to this host and which one it takes (the rules of Bottlerocket's updog):
// same variant and arch, version <= max_version, wave-ready unless waves are ignored; newest first.
// "latest" takes the first that is newer than the running version or whose ceiling is below it
// (a lowered max_version pulls hosts down); a version lock takes exactly that version.
import type { Manifest, Update } from "./manifest.js";
import { updateReady } from "./waves.js";
import { compareVersions, normalizeVersion } from "./version.js";

export interface ChoiceInput {
  manifest: Manifest;
  variant: string;
  arch: string;
  running: string;
  seed: number;
  now: Date;
  ignoreWaves: boolean;
  /** "latest" or a version, with an optional leading v. */
  versionLock: string;
  /** Versions that failed their boot trial on this host: never chosen by "latest". */
  failed: ReadonlySet<string>;
}

export function applicableUpdates(i: Omit<ChoiceInput, "running" | "versionLock" | "failed">): Update[] {
  return i.manifest.updates
    .filter((u) => u.variant === i.variant && u.arch === i.arch)
    .filter((u) => compareVersions(u.version, u.max_version) <= 0)
    .filter((u) => i.ignoreWaves || updateReady(u.waves, i.seed, i.now))
    .sort((a, b) => compareVersions(b.version, a.version));
}

export function chooseUpdate(i: ChoiceInput): Update | undefined {
  const list = applicableUpdates(i);
  const lock = i.versionLock.trim();
  if (lock === "" || lock === "latest") {
    return list.find(
      (u) => !i.failed.has(u.version) && (compareVersions(i.running, u.version) < 0 || compareVersions(i.running, u.max_version) > 0),
    );
  }
  // An explicit lock is the operator's decision: it may name a version that failed before.
  const want = normalizeVersion(lock);
  return list.find((u) => compareVersions(u.version, want) === 0 && compareVersions(u.version, i.running) !== 0);
}
