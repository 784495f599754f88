// Boot control of the A/B slots (Bottlerocket's signpost, with systemd-boot's boot counting in
// place of GPT priority bits): load the ESP's Boot Loader Spec entries (src/boot/entries.ts) into
// memory, change them with pure transitions, write the result back. Which slot boots next, and
// whether it is on trial, is nothing but these entry files (see src/boot/README.md).
//
//   const s = BootSlots.load(root);      // the running slot (kernel command line) and the entries
//   s.activateInactive(image, tries);    // in memory only
//   s.write();                           // new entries first, then removals, then the directory fsync
//
// Transitions (all on the inactive slot, the running one is never touched):
//   clearInactive       remove its entries: from here on it cannot boot
//   activateInactive    its entry on trial (try counter) with the highest generation: next boot tries it
//   deactivateInactive  remove that entry again
//   rollbackToInactive  its usable entry on trial with the highest generation: a failed health gate on
//                       that boot falls back to the slot it came from
// The images inside the slot (partitions, kernel, initrd) are written by src/update/write.ts.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { entryFileName, entryText, otherSlot, parseEntryName, parseEntryText, SLOTS, type Slot } from "./entries.js";
import { fsyncDir, renameDurable } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { hostPaths } from "../fsutil/paths.js";

/** The EFI system partition under a host's root ("/" on the image, any directory in workstation mode). */
export const ESP_DIR = hostPaths.esp;
/** The Boot Loader Spec entries under the ESP. */
export const ENTRIES_DIR = "loader/entries";

/**
 * A transition the slots do not allow, e.g. a rollback to a slot with no usable entry (signpost's
 * InactiveNotValid). It is thrown while an update command runs, so it ends in that command's record
 * (most_recent_command.stderr), not in an HTTP status: the update agent refuses the same case with
 * 409 (NothingToRollBack) before it starts the command (src/update/rollback.ts).
 */
export class SlotConflict extends Error {
  readonly kind = "InactiveNotBootable" as const;
  constructor(
    readonly slot: Slot,
    message: string,
  ) {
    super(message);
  }
}

export interface SlotEntry {
  file: string;
  slot: Slot;
  generation: number;
  /** From the entry's `caisson.version=` kernel parameter. */
  version?: string;
  /** undefined: blessed. */
  triesLeft?: number;
  triesDone?: number;
}

export interface SlotStatus {
  slot: Slot;
  active: boolean;
  entry?: SlotEntry;
  /** What systemd-boot boots next. */
  nextToBoot: boolean;
}

/** What an activated slot boots: the entry's title, kernel command line and version come from it. */
export interface SlotImage {
  version: string;
  /** dm-verity root hash of the slot's root image. */
  roothash: string;
  fsType: "erofs" | "squashfs";
  /** Kernel parameters besides the verity ones; `caisson.version=` is added when missing. */
  kernelParameters: string[];
}

/** Blessed, or on trial with tries left: systemd-boot may pick it. */
export const usable = (e: SlotEntry | undefined) => e !== undefined && (e.triesLeft === undefined || e.triesLeft > 0);

/** An entry file's name and text, as read from the ESP. */
export function parseEntry(file: string, text: string): SlotEntry | undefined {
  const name = parseEntryName(file);
  if (!name) return undefined;
  const fields = parseEntryText(text);
  const version = /(?:^|\s)caisson\.version=(\S+)/.exec(fields.options ?? "")?.[1];
  return { file, slot: name.slot, generation: Number(fields.version ?? 0) || 0, version, triesLeft: name.triesLeft, triesDone: name.triesDone };
}

/** This root has no A/B boot slots to act on (no slot named on the kernel command line). */
export class NoBootSlotsError extends Error {}

/** The running slot, from the kernel command line the bootloader passed (`<root>/proc/cmdline`). */
export function activeSlot(root: string): Slot {
  const path = join(root, hostPaths.cmdline);
  const cmdline = existsSync(path) ? readFileSync(path, "utf8") : "";
  const slot = /(?:^|\s)caisson\.slot=([ab])(?:\s|$)/.exec(cmdline)?.[1] as Slot | undefined;
  if (!slot) throw new NoBootSlotsError(`no caisson.slot= on the kernel command line (${path}): cannot tell the active slot`);
  return slot;
}

/** Where write() puts the entries: the ESP's directory, or a fake in tests. */
export interface EntryStore {
  /** The whole new entry, or the old one after a crash: never a mix. */
  put(file: string, text: string): void;
  remove(file: string): void;
  /** Make the puts and removes durable (the directory's fsync). */
  sync(): void;
}

/** Entry files in `<esp>/loader/entries`, in the crash-safe way vfat allows. */
export class EspEntryStore implements EntryStore {
  constructor(readonly dir: string) {}

  /** Temp file + fsync + rename + fsync again (renameDurable: vfat keeps a renamed file's size only then). */
  put(file: string, text: string): void {
    mkdirSync(this.dir, { recursive: true });
    // Not ending in .conf: systemd-boot ignores it if a crash leaves it behind.
    const tmp = join(this.dir, `.${file}.tmp`);
    const fd = openSync(tmp, "w", 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    faultPoint("slots:entry:after-write");
    renameDurable(tmp, join(this.dir, file));
    faultPoint("slots:entry:after-rename");
  }

  remove(file: string): void {
    rmSync(join(this.dir, file), { force: true });
  }

  sync(): void {
    fsyncDir(this.dir);
  }
}

/** The entries as they are on disk: name and text of each `caisson-*.conf`. */
export function readEntries(dir: string): { file: string; text: string }[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .filter((file) => parseEntryName(file))
    .map((file) => ({ file, text: readFileSync(join(dir, file), "utf8") }));
}

export class BootSlots {
  /** Entry files as loaded (or last written): what write() compares against. */
  private onDisk: Set<string>;
  private entries: SlotEntry[];
  private readonly texts = new Map<string, string>();
  /** Entries whose text write() must put (new or rewritten since load). */
  private readonly pending = new Set<string>();

  /**
   * `files`: the entry files as they are now; `store`: where write() puts changes. load() is the
   * production constructor; tests pass a fake store.
   */
  constructor(
    readonly active: Slot,
    files: { file: string; text: string }[],
    private readonly store: EntryStore,
  ) {
    this.entries = [];
    for (const { file, text } of files) {
      const e = parseEntry(file, text);
      if (!e) continue;
      this.entries.push(e);
      this.texts.set(file, text);
    }
    this.onDisk = new Set(this.entries.map((e) => e.file));
  }

  /** The running slot and the ESP's entries under `root`; throws if the command line names no slot. */
  static load(root: string): BootSlots {
    const dir = join(root, ESP_DIR, ENTRIES_DIR);
    return new BootSlots(activeSlot(root), readEntries(dir), new EspEntryStore(dir));
  }

  get inactive(): Slot {
    return otherSlot(this.active);
  }

  /** All entries, in file-name order. */
  all(): SlotEntry[] {
    return [...this.entries];
  }

  entryOf(slot: Slot): SlotEntry | undefined {
    // Normally one per slot; if a crash left two, the newest generation is the one that counts.
    return this.entries.filter((e) => e.slot === slot).sort((a, b) => b.generation - a.generation)[0];
  }

  /** systemd-boot's pick: entries with tries left or blessed by generation (descending); exhausted ones last. */
  nextToBoot(): SlotEntry | undefined {
    return [...this.entries].sort((a, b) => Number(usable(b)) - Number(usable(a)) || b.generation - a.generation)[0];
  }

  status(): SlotStatus[] {
    const next = this.nextToBoot();
    return SLOTS.map((slot) => ({ slot, active: slot === this.active, entry: this.entryOf(slot), nextToBoot: next?.slot === slot }));
  }

  /**
   * A trial that failed: the inactive slot's entry has used up its tries (+0-N) yet was activated
   * after the running slot's (higher generation), so the bootloader fell back to us.
   */
  failedTrial(): SlotEntry | undefined {
    const active = this.entryOf(this.active);
    const other = this.entryOf(this.inactive);
    if (!other || other.triesLeft !== 0) return undefined;
    return other.generation > (active?.generation ?? 0) ? other : undefined;
  }

  /** Whether the running slot is on trial (its entry still has a counter: not blessed yet). */
  activeOnTrial(): SlotEntry | undefined {
    const e = this.entryOf(this.active);
    return e && e.triesLeft !== undefined ? e : undefined;
  }

  private nextGeneration(): number {
    return Math.max(0, ...this.entries.map((e) => e.generation)) + 1;
  }

  /** Replace every entry of `slot` with `entry` (text `text`). */
  private replace(slot: Slot, entry: SlotEntry | undefined, text?: string): void {
    this.entries = this.entries.filter((e) => e.slot !== slot);
    if (entry && text !== undefined) {
      this.entries.push(entry);
      this.entries.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
      this.texts.set(entry.file, text);
      this.pending.add(entry.file);
    }
  }

  /** First step of every prepare: a half-written slot must never be bootable. */
  clearInactive(): void {
    this.replace(this.inactive, undefined);
  }

  /** Put the inactive slot on trial: its entry with `tries` and a generation above every other. */
  activateInactive(image: SlotImage, tries: number): SlotEntry {
    const slot = this.inactive;
    const generation = this.nextGeneration();
    const extra = [...image.kernelParameters];
    if (!extra.some((p) => p.startsWith("caisson.version="))) extra.push(`caisson.version=${image.version}`);
    const text = entryText({ slot, generation, title: `Caisson ${image.version}`, roothash: image.roothash, fsType: image.fsType, extra });
    const triesLeft = Math.max(1, tries);
    const entry: SlotEntry = { file: entryFileName({ slot, triesLeft }), slot, generation, version: image.version, triesLeft, triesDone: 0 };
    this.replace(slot, entry, text);
    return entry;
  }

  deactivateInactive(): void {
    this.replace(this.inactive, undefined);
  }

  /**
   * Make the other slot the default, if it can boot at all: its entry goes on trial (`tries`, the
   * highest generation), so a boot that fails its health gate there (e.g. a backward migration)
   * falls back to the running slot, whose entry stays; systemd-bless-boot makes it permanent.
   */
  rollbackToInactive(tries: number): SlotEntry {
    const target = this.entryOf(this.inactive);
    if (!target || !usable(target)) {
      throw new SlotConflict(
        this.inactive,
        target ? `slot ${target.slot}'s entry ${target.file} has no tries left: nothing to roll back to` : `slot ${this.inactive} has no boot entry: nothing to roll back to`,
      );
    }
    const generation = this.nextGeneration();
    const text = this.texts.get(target.file)!.replace(/^version\s+\S+$/m, `version ${generation}`);
    const triesLeft = Math.max(1, tries);
    const entry: SlotEntry = { ...target, file: entryFileName({ slot: target.slot, triesLeft }), generation, triesLeft, triesDone: 0 };
    this.replace(target.slot, entry, text);
    return entry;
  }

  /**
   * Bring the ESP to the in-memory entries. The order is the crash contract: new entries go in
   * whole (temp file, fsync, rename) before any old one goes, so a crash between two steps leaves
   * the old entry or both (entryOf takes the newer generation); then the directory is fsynced
   * when anything changed.
   */
  write(): void {
    const wanted = new Set(this.entries.map((e) => e.file));
    let changed = false;
    for (const file of this.pending) {
      if (!wanted.has(file)) continue;
      this.store.put(file, this.texts.get(file)!);
      changed = true;
    }
    this.pending.clear();
    for (const file of this.onDisk) {
      if (wanted.has(file)) continue;
      this.store.remove(file);
      changed = true;
    }
    if (changed) this.store.sync();
    this.onDisk = wanted;
  }
}
