// Boot Loader Spec entries, one per slot, with systemd-boot's boot counting in the file name:
//   caisson-a.conf         blessed (good) entry of slot a
//   caisson-b+3.conf       slot b on trial, 3 tries left
//   caisson-b+1-2.conf     on trial, 1 try left, 2 used
//   caisson-b+0-3.conf     tries used up: systemd-boot sorts it last, so the other slot boots
// Entries sort by `version`, which holds an install generation that grows with every activation;
// so the last activated slot (an update, a rollback or a downgrade) is the default.
// State lives with what it describes (the ESP), and renames are the atomic step (systemd's design).

import type { Slot } from "../protocol/types.js";

export type { Slot } from "../protocol/types.js";
export const SLOTS: Slot[] = ["a", "b"];
export const otherSlot = (s: Slot): Slot => (s === "a" ? "b" : "a");

export interface EntryName {
  slot: Slot;
  /** undefined: blessed (no counter). */
  triesLeft?: number;
  triesDone?: number;
}

const NAME = /^caisson-([ab])(?:\+(\d+)(?:-(\d+))?)?\.conf$/;

export function parseEntryName(file: string): EntryName | undefined {
  const m = NAME.exec(file);
  if (!m) return undefined;
  return {
    slot: m[1] as Slot,
    ...(m[2] !== undefined ? { triesLeft: Number(m[2]), triesDone: Number(m[3] ?? 0) } : {}),
  };
}

export function entryFileName(e: EntryName): string {
  if (e.triesLeft === undefined) return `caisson-${e.slot}.conf`;
  return `caisson-${e.slot}+${e.triesLeft}${e.triesDone ? `-${e.triesDone}` : ""}.conf`;
}

export interface SlotBoot {
  slot: Slot;
  generation: number;
  title: string;
  /** The slot's dm-verity root hash. */
  roothash: string;
  fsType: "erofs" | "squashfs";
  /** Extra kernel parameters (SELinux, console, settings.boot.kernel-parameters...). */
  extra: string[];
}

/** Kernel command line of a slot: verity root by partition label, safety options from the spike. */
export function kernelCommandLine(b: SlotBoot): string {
  return [
    `roothash=${b.roothash}`,
    `systemd.verity_root_data=/dev/disk/by-partlabel/root-${b.slot}`,
    `systemd.verity_root_hash=/dev/disk/by-partlabel/root-${b.slot}-verity`,
    // Without it a corrupt block hangs the boot forever and the try is never used up.
    "systemd.verity_root_options=restart-on-corruption",
    "root=/dev/mapper/root",
    `rootfstype=${b.fsType}`,
    "ro",
    "rd.shell=0",
    "rd.emergency=reboot",
    "rd.timeout=60",
    "panic=5",
    `caisson.slot=${b.slot}`,
    ...b.extra,
  ].join(" ");
}

export function entryText(b: SlotBoot): string {
  return [
    `title ${b.title}`,
    // systemd-boot compares `version` only between entries that both have a sort-key.
    "sort-key caisson",
    `version ${b.generation}`,
    `linux /caisson/${b.slot}/vmlinuz`,
    `initrd /caisson/${b.slot}/initrd.img`,
    `options ${kernelCommandLine(b)}`,
    "",
  ].join("\n");
}

export function parseEntryText(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

export const LOADER_CONF = "timeout 0\ndefault caisson-*\nconsole-mode keep\neditor no\n";

/** An entry's name without its boot counter: `caisson-b+0-1.conf` → `caisson-b.conf` (also for `.efi`). */
export function withoutCounter(file: string): string {
  return file.replace(/\+\d+(?:-\d+)?(?=\.[^.+]+$)/, "");
}

/**
 * Whether this boot is the one systemd-boot counted. `countPath` is LoaderBootCountPath (the
 * entry file it renamed when it counted a try, e.g. `\loader\entries\caisson-b+0-1.conf`),
 * `selected` is LoaderEntrySelected (the entry that booted, by the name it had when chosen,
 * e.g. `caisson-b+1.conf`). systemd-boot 252 sets LoaderBootCountPath only when it counts a
 * try and never clears it: when a counted entry fails to load, systemd-boot returns to the
 * firmware, and the firmware runs it again in the same power-on, the variable still names the
 * failed entry while another one boots. Only a path naming the booted entry means "counted".
 */
export function bootCounted(countPath: string | undefined, selected: string | undefined): boolean {
  if (countPath === undefined || selected === undefined) return false;
  const counted = countPath.split(/[\\/]/).pop() ?? "";
  // The booted entry must itself carry a counter, and the counted file must be that entry.
  return withoutCounter(selected) !== selected && withoutCounter(counted) === withoutCounter(selected);
}
