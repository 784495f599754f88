// The update agent's persistent state (src/update/state.ts): the boot history appended at agent
// start and before commands, newest last, capped, tolerant of old or damaged state files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { appendBoot, BOOT_HISTORY_MAX, readState, writeState, type AgentState } from "../../src/update/state.js";
import { updatePaths } from "../../src/update/manifest.js";
import { UpdateAgent } from "../../src/update/agent.js";

const at = (i: number) => new Date(Date.UTC(2030, 0, 1, 0, i)).toISOString();

test("appendBoot adds a record only when the version or the slot changed, and keeps the last ones", () => {
  const s: AgentState = { failed: [], history: [] };
  assert.equal(appendBoot(s, { version: "1.0.0", slot: "a", at: at(0) }), true);
  assert.equal(appendBoot(s, { version: "1.0.0", slot: "a", at: at(1) }), false, "same version, same slot: a plain reboot");
  assert.equal(appendBoot(s, { version: "1.1.0", slot: "b", at: at(2) }), true);
  assert.equal(appendBoot(s, { version: "1.1.0", slot: "a", at: at(3) }), true, "same version from the other slot");
  assert.equal(appendBoot(s, { version: "1.0.0", slot: "a", at: at(4) }), true, "back to an earlier version");
  assert.deepEqual(s.history.map((r) => `${r.version}@${r.slot}`), ["1.0.0@a", "1.1.0@b", "1.1.0@a", "1.0.0@a"]);
  assert.equal(s.history[0]!.at, at(0), "the first boot's time is kept");
  for (let i = 0; i < 30; i++) appendBoot(s, { version: `2.0.${i}`, slot: i % 2 ? "a" : "b", at: at(10 + i) });
  assert.equal(s.history.length, BOOT_HISTORY_MAX);
  assert.equal(s.history.at(-1)!.version, "2.0.29", "newest last");
  assert.equal(s.history[0]!.version, `2.0.${30 - BOOT_HISTORY_MAX}`);
});

test("readState: no file, an older file without history, damaged records", () => {
  const root = mkdtempSync(join(tmpdir(), "caisson-state-"));
  assert.deepEqual(readState(root), { failed: [], history: [] });
  const path = join(root, updatePaths.state);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ failed: [{ version: "1.1.0", reason: "x", at: at(0) }] }));
  assert.deepEqual(readState(root).history, []);
  assert.equal(readState(root).failed.length, 1);
  writeFileSync(path, JSON.stringify({ failed: [], history: [{ version: "1.0.0", slot: "a", at: at(0) }, { version: 1 }, null, { version: "1.1.0", slot: "c", at: at(1) }] }));
  assert.deepEqual(readState(root).history, [{ version: "1.0.0", slot: "a", at: at(0) }]);
  writeFileSync(path, "{not json");
  assert.deepEqual(readState(root), { failed: [], history: [] });
  writeState(root, { failed: [], history: [{ version: "1.0.0", slot: "b", at: at(2) }] });
  assert.deepEqual(readState(root).history, [{ version: "1.0.0", slot: "b", at: at(2) }]);
});

test("the agent records the running version and slot at start, once per change; no slot, no record", () => {
  const root = mkdtempSync(join(tmpdir(), "caisson-state-"));
  const logs: string[] = [];
  const agent = (version: string, now: Date) => new UpdateAgent({ root, variant: "dev", version, arch: "x86_64", settings: () => ({}), log: (m) => logs.push(m), now: () => now });
  agent("1.0.0", new Date(at(0)));
  assert.ok(!existsSync(join(root, updatePaths.state)), "no caisson.slot= on the command line: not an A/B host, nothing written");
  mkdirSync(join(root, "proc"));
  writeFileSync(join(root, "proc/cmdline"), "root=/dev/mapper/root caisson.slot=a\n");
  agent("1.0.0", new Date(at(1)));
  agent("1.0.0", new Date(at(2)));
  writeFileSync(join(root, "proc/cmdline"), "root=/dev/mapper/root caisson.slot=b\n");
  agent("1.1.0", new Date(at(3)));
  assert.deepEqual(readState(root).history, [
    { version: "1.0.0", slot: "a", at: at(1) },
    { version: "1.1.0", slot: "b", at: at(3) },
  ]);
  assert.deepEqual(JSON.parse(readFileSync(join(root, updatePaths.state), "utf8")).failed, []);
  assert.deepEqual(logs, []);
});
