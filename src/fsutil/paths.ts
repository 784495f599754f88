// Where things live on a host, relative to its root ("/" on the image, a directory in workstation
// mode): one table, so that no folder spells out another's files. Each entry names its owner.
export const hostPaths = {
  /** src/datastore: current -> v<version>_<rand>/live.json, pending/. */
  datastore: "var/lib/caisson/datastore",
  /** src/userdata: what first boot did with user data. */
  userDataRecord: "var/lib/caisson/early-boot-config.json",
  /** src/userdata: user data a user put on the data partition (read at first boot). */
  localUserData: "var/lib/caisson/user-data.toml",
  /** src/userdata: where a config drive is mounted. */
  configDrive: "run/caisson/config-drive",
  /** src/update: the trust anchor shipped in the read-only image (Bottlerocket: /usr/share/updog/root.json). */
  updateTrustedRoot: "usr/share/caisson/updates/root.json",
  /** src/update: tuf-js' local metadata, refreshed by the agent. */
  updateMetadata: "var/lib/caisson/updates/metadata",
  /** src/update: what prepare caches for the migrator (metadata/, targets/manifest.json and modules). */
  updateCache: "var/lib/caisson/updates/cache",
  /** src/update: the agent's persistent state (failed versions, staged update, boot history). */
  updateState: "var/lib/caisson/updates/state.json",
  /** src/host (the health gate) → src/update: why the last boot on trial failed. */
  healthFailure: "var/lib/caisson/health/last-failure.json",
  /** src/image → src/update: the boot tries a slot on trial gets. */
  bootJson: "usr/share/caisson/boot.json",
  /** src/image → src/applier: the CA bundle the image ships, before settings.pki is added. */
  caBundleBase: "usr/share/caisson/ca-bundle-base.crt",
  /** src/boot: the EFI system partition (loader/entries, caisson/<slot>/). */
  esp: "efi",
  /** src/boot: the kernel command line (caisson.slot=). */
  cmdline: "proc/cmdline",
  /** src/update: slot block devices (regular files in workstation mode). */
  partition: (label: string) => `dev/disk/by-partlabel/${label}`,
  /** src/host: the daemon's pid lock (one daemon per root). */
  pidLock: "run/caisson/host.pid",
  /** src/host, workstation mode: the unit restarts a real host would have done. */
  restartsLog: "run/caisson/restarts.log",
} as const;
