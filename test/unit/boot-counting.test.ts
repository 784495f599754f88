// Which boot systemd-boot counted: LoaderBootCountPath must name the entry that booted. A counted
// entry that failed to load leaves the variable behind when another entry boots in the same
// power-on (secureboot-spike §6); then the boot is not counted and nothing may be blessed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootCounted, withoutCounter } from "../../src/boot/entries.js";
import { readBootInfo } from "../../src/host/health.js";

const GUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

function efivars(vars: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), "caisson-efivars-"));
  for (const [name, value] of Object.entries(vars)) {
    // efivarfs: 4 bytes of attributes (BS|RT), then UTF-16LE with a NUL.
    writeFileSync(join(dir, `${name}-${GUID}`), Buffer.concat([Buffer.from([6, 0, 0, 0]), Buffer.from(`${value}\0`, "utf16le")]));
  }
  return dir;
}

function proc(cmdline: string): string {
  const dir = mkdtempSync(join(tmpdir(), "caisson-proc-"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "cmdline"), cmdline);
  return dir;
}

test("withoutCounter strips the try counter of entry and UKI names only", () => {
  assert.equal(withoutCounter("caisson-b+0-1.conf"), "caisson-b.conf");
  assert.equal(withoutCounter("caisson-b+3.conf"), "caisson-b.conf");
  assert.equal(withoutCounter("caisson-a.conf"), "caisson-a.conf");
  assert.equal(withoutCounter("caisson-a+2-1.efi"), "caisson-a.efi");
  assert.equal(withoutCounter("caisson+1.x-b.conf"), "caisson+1.x-b.conf");
});

test("a boot is counted only when LoaderBootCountPath names the entry that booted", () => {
  // The entry on trial booted: systemd-boot renamed b+1 to b+0-1 and reports it by its old name.
  assert.equal(bootCounted("\\loader\\entries\\caisson-b+0-1.conf", "caisson-b+1.conf"), true);
  assert.equal(bootCounted("/loader/entries/caisson-b+2-1.conf", "caisson-b+3.conf"), true);
  // b failed to load; the firmware ran systemd-boot again and blessed a booted: the variable is stale.
  assert.equal(bootCounted("\\loader\\entries\\caisson-b+0-1.conf", "caisson-a.conf"), false);
  // Same slot but the booted entry carries no counter (blessed meanwhile): nothing to bless.
  assert.equal(bootCounted("\\loader\\entries\\caisson-a+0-1.conf", "caisson-a.conf"), false);
  assert.equal(bootCounted(undefined, "caisson-a+1.conf"), false);
  assert.equal(bootCounted("\\loader\\entries\\caisson-a+0-1.conf", undefined), false);
});

test("readBootInfo: a stale LoaderBootCountPath is reported but the boot is not counted", () => {
  const stale = readBootInfo(proc("caisson.slot=a ro"), efivars({ LoaderEntrySelected: "caisson-a.conf", LoaderBootCountPath: "\\loader\\entries\\caisson-b+0-1.conf" }));
  assert.equal(stale.slot, "a");
  assert.equal(stale.entry, "caisson-a.conf");
  assert.equal(stale.counted, false);
  assert.equal(stale["count-path"], "\\loader\\entries\\caisson-b+0-1.conf");

  const trial = readBootInfo(proc("caisson.slot=b ro"), efivars({ LoaderEntrySelected: "caisson-b+1.conf", LoaderBootCountPath: "\\loader\\entries\\caisson-b+0-1.conf" }));
  assert.equal(trial.counted, true);

  const blessed = readBootInfo(proc("caisson.slot=a ro"), efivars({ LoaderEntrySelected: "caisson-a.conf" }));
  assert.equal(blessed.counted, false);
  assert.equal(blessed["count-path"], undefined);
});
