// A simulated firmware + systemd-boot for update tests: pick the entry systemd-boot would
// (not used-up first, then highest `version`), count the try down by renaming the entry
// (+LEFT-DONE → +LEFT-1-DONE+1), and "boot" it by writing the root's proc/cmdline.
import { readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { entryFileName, parseEntryName, parseEntryText, type Slot } from "../../src/boot/entries.js";

export interface Booted {
  slot: Slot;
  entry: string;
  counted: boolean;
}

export function bootOnce(root: string): Booted {
  const dir = join(root, "efi/loader/entries");
  const entries = readdirSync(dir)
    .map((file) => ({ file, name: parseEntryName(file) }))
    .filter((e) => e.name !== undefined)
    .map((e) => ({ ...e, fields: parseEntryText(readFileSync(join(dir, e.file), "utf8")) }));
  const good = (e: (typeof entries)[number]) => e.name!.triesLeft === undefined || e.name!.triesLeft > 0;
  entries.sort((x, y) => Number(good(y)) - Number(good(x)) || Number(y.fields.version ?? 0) - Number(x.fields.version ?? 0));
  const pick = entries[0];
  if (!pick) throw new Error("no boot entry: the machine does not boot");
  let file = pick.file;
  const n = pick.name!;
  if (n.triesLeft !== undefined && n.triesLeft > 0) {
    file = entryFileName({ slot: n.slot, triesLeft: n.triesLeft - 1, triesDone: (n.triesDone ?? 0) + 1 });
    renameSync(join(dir, pick.file), join(dir, file));
  }
  writeFileSync(join(root, "proc/cmdline"), `${pick.fields.options ?? ""}\n`);
  return { slot: n.slot, entry: file, counted: n.triesLeft !== undefined };
}
