// Rollback planning: how `rollback` goes back to the version that ran before this one, decided
// before the command starts so that "nothing to roll back to" is the request's 409.
//   switch    the other slot's entry is usable (blessed or tries left): it becomes the default on
//             trial (boot control's rollbackToInactive), nothing is downloaded;
//   download  the other slot holds no bootable image (e.g. an update that failed its trial there):
//             the previous version, the newest boot-history record whose version is not the running
//             one and never failed a trial here, is prepared into it and activated on trial.
// Neither: NothingToRollBack. Waves and max_version do not apply to a rollback (an operator's
// explicit order), and a version that failed here is never picked.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { usable, type BootSlots } from "../boot/slots.js";
import { AgentError } from "./errors.js";
import type { Manifest, Update } from "./manifest.js";
import type { AgentState } from "./state.js";
import { sameVersion } from "./version.js";
import { hostPaths } from "../fsutil/paths.js";

/** How rollback goes back: switch to the other slot's usable entry, or download `version` into it. */
export type RollbackPlan = { kind: "switch" } | { kind: "download"; version: string };

/**
 * Boot tries when the root has no usr/share/caisson/boot.json (a workstation root, or an image from
 * before the build wrote it). Not the build's default (`caisson build --boot-tries`, now 1): kept
 * at 3 so such roots behave as they always have.
 */
export const DEFAULT_BOOT_TRIES = 3;

/** The version this host ran before `running`: the newest boot record of another version that never failed a trial. */
export function previousVersion(st: AgentState, running: string): string | undefined {
  return [...st.history]
    .reverse()
    .find((r) => !sameVersion(r.version, running) && !st.failed.some((f) => sameVersion(f.version, r.version)))?.version;
}

/** The plan, or AgentError NothingToRollBack naming why neither way works. */
export function planRollback(slots: BootSlots, st: AgentState, running: string): RollbackPlan {
  const inactive = slots.inactive;
  const e = slots.entryOf(inactive);
  if (usable(e)) return { kind: "switch" };
  const version = previousVersion(st, running);
  if (version) return { kind: "download", version };
  const holds = e ? `holds no bootable image (its entry ${e.file} has no tries left)` : "holds no bootable image (no boot entry)";
  const failed = st.failed.map((f) => f.version);
  throw new AgentError(
    "NothingToRollBack",
    `slot ${inactive} ${holds} and no earlier version than the running ${running} is known on this host` +
      (failed.length ? ` (failed versions are never rolled back to: ${failed.join(", ")})` : ""),
  );
}

/** The manifest's entry for a download rollback to `version`; fails before the inactive slot is touched. */
export function rollbackUpdate(manifest: Manifest, version: string, variant: string, arch: string, inactive: string): Update {
  const update = manifest.updates.find((u) => sameVersion(u.version, version) && u.variant === variant && u.arch === arch);
  if (!update) {
    throw new Error(`the previous version ${version} (${variant}, ${arch}) is not in the repository's signed manifest: nothing to roll back to; slot ${inactive} is untouched`);
  }
  return update;
}

/** The boot tries the image gives a slot on trial: usr/share/caisson/boot.json, written by the build. */
export function bootTries(root: string, log: (msg: string) => void): number {
  const path = join(root, hostPaths.bootJson);
  try {
    const tries = (JSON.parse(readFileSync(path, "utf8")) as { "boot-tries"?: unknown })["boot-tries"];
    if (typeof tries === "number" && Number.isInteger(tries) && tries >= 1) return tries;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") log(`update: ${path}: ${(e as Error).message}; ${DEFAULT_BOOT_TRIES} boot tries`);
  }
  return DEFAULT_BOOT_TRIES;
}
