// The update index (`manifest.json`), a TUF target like Bottlerocket's (reference §5.3), and the
// host paths the update tool chain agrees on. This file is the contract between the repository
// tool (src/repo), the update agent (src/update) and the migrator (src/migrations).
//
// Differences from Bottlerocket, on purpose:
// - `images` names the slot's four files (root, verity hash tree, kernel, initrd: each slot boots
//   its own kernel from the ESP) and the update carries the slot's root hash and kernel
//   parameters, from which the agent writes the slot's Boot Loader Spec entry.
// - Migrations are JavaScript modules (run on the image's Node runtime), not binaries.

export const MAX_SEED = 2048;

export interface UpdateImages {
  /** TUF target names. */
  root: string;
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
  trustedRoot: "usr/share/caisson/updates/root.json",
  /** tuf-js' local metadata (root chain, timestamp, snapshot, targets), refreshed by the agent. */
  metadata: "var/lib/caisson/updates/metadata",
  /**
   * What prepare caches for the migrator, verified and kept for offline use after reboot:
   *   <cache>/metadata/{root.json,targets.json,...} (the metadata that verified the targets)
   *   <cache>/targets/manifest.json and the migration modules by target name
   */
  cache: "var/lib/caisson/updates/cache",
  /** The agent's persistent state (failed versions, staged update), survives reboots. */
  state: "var/lib/caisson/updates/state.json",
  /** Slot block devices (regular files in workstation mode). */
  partition: (label: string) => `dev/disk/by-partlabel/${label}`,
  /** The EFI system partition (loader/entries, caisson/<slot>/{vmlinuz,initrd.img}). */
  esp: "efi",
  /** The settings datastore (current -> v<version>_<rand>). */
  datastore: "var/lib/caisson/datastore",
} as const;
