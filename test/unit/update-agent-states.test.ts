// The update agent's state table (src/update/agent.ts) driven with fakes: boot entries in memory
// (BootSlots over a fake EntryStore), a fake TUF repository serving a small manifest and images,
// and no network. Every command in every state: the accepted ones with the state they lead to, the
// refused ones with their HTTP status and error kind. The wire (routes, a real signed repository)
// is test/integration/update-agent.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentError, UPDATE_STATES, UpdateAgent, type AgentErrorKind } from "../../src/update/agent.js";
import type { CommandType, UpdateState, UpdateStatus } from "../../src/protocol/types.js";
import { BootSlots, type EntryStore } from "../../src/boot/slots.js";
import { entryFileName, entryText, type Slot } from "../../src/boot/entries.js";
import type { Manifest, Update } from "../../src/update/manifest.js";
import type { TargetInfo, TufSource } from "../../src/update/tuf.js";
import { readState, writeState } from "../../src/update/state.js";

/** The ESP's entries directory in memory. */
class MemoryEsp implements EntryStore {
  readonly files = new Map<string, string>();
  put(file: string, text: string): void {
    this.files.set(file, text);
  }
  remove(file: string): void {
    this.files.delete(file);
  }
  sync(): void {}
  list(): { file: string; text: string }[] {
    return [...this.files.keys()].sort().map((file) => ({ file, text: this.files.get(file)! }));
  }
  entry(slot: Slot, generation: number, version: string, tries?: number): void {
    this.files.set(entryFileName({ slot, triesLeft: tries }), entryText({ slot, generation, title: `Caisson ${version}`, roothash: "00", fsType: "erofs", extra: [`caisson.version=${version}`] }));
  }
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

const updateOf = (version: string): Update => ({
  variant: "dev", arch: "x86_64", version, max_version: version, waves: {},
  images: { root: `root-${version}.erofs`, hash: `hash-${version}`, kernel: `kernel-${version}`, initrd: `initrd-${version}` },
  roothash: "ab".repeat(32), "kernel-parameters": [], "boot-tries": 2,
});

/** A TUF repository with `versions`, each image a few KiB of its own bytes. */
function fakeTuf(root: string, versions: string[]): TufSource & { manifestFetches: number } {
  const manifest: Manifest = {
    updates: versions.map(updateOf),
    migrations: { "(0.9.0, 1.0.0)": [], "(1.0.0, 1.1.0)": [] },
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const blobs = new Map<string, Buffer>();
  for (const u of manifest.updates) for (const name of Object.values(u.images)) blobs.set(name, Buffer.from(name.repeat(300)));
  const metadataDir = join(root, "fake-metadata");
  mkdirSync(metadataDir, { recursive: true });
  writeFileSync(join(metadataDir, "root.json"), JSON.stringify({ signed: { version: 1 } }));
  const info = (name: string): TargetInfo => {
    const b = blobs.get(name);
    if (!b) throw new Error(`target ${name} is not in the signed targets metadata`);
    return { name, length: b.length, sha256: sha(b), url: `fake:${name}` };
  };
  return {
    metadataDir,
    metadataBaseUrl: "fake:",
    manifestFetches: 0,
    async refresh() {},
    async target(name) {
      return info(name);
    },
    async download(name, path) {
      writeFileSync(path, blobs.get(name)!);
    },
    async manifest() {
      this.manifestFetches++;
      return { manifest, bytes };
    },
    stream(t) {
      return async (sink) => sink(blobs.get(t.name)!);
    },
  };
}

interface Harness {
  agent: UpdateAgent;
  esp: MemoryEsp;
  root: string;
  logs: string[];
}

/** A host running 1.0.0 from slot a (blessed), with slot b's partitions as small files. */
function harness(o: { versions?: string[]; setup?: (esp: MemoryEsp, root: string) => void } = {}): Harness {
  const root = mkdtempSync(join(tmpdir(), "caisson-agent-states-"));
  const parts = join(root, "dev/disk/by-partlabel");
  mkdirSync(parts, { recursive: true });
  for (const p of ["root-b", "root-b-verity"]) writeFileSync(join(parts, p), Buffer.alloc(64 * 1024));
  const esp = new MemoryEsp();
  esp.entry("a", 1, "1.0.0");
  o.setup?.(esp, root);
  const tuf = fakeTuf(root, o.versions ?? ["1.1.0"]);
  const logs: string[] = [];
  const agent = new UpdateAgent({
    root,
    variant: "dev",
    version: "1.0.0",
    arch: "x86_64",
    settings: () => ({ updates: { seed: 1, "ignore-waves": true } }),
    log: (m) => logs.push(m),
    now: () => new Date(Date.UTC(2030, 0, 1)),
    slots: () => new BootSlots("a", esp.list(), esp),
    tuf: () => tuf,
    http: () => async () => {
      throw new Error("no network in this test");
    },
  });
  return { agent, esp, root, logs };
}

/** Run `cmd`, wait for it, and require success. */
async function run(h: Harness, cmd: CommandType): Promise<UpdateStatus> {
  h.agent.command(cmd);
  await h.agent.idle;
  const s = h.agent.status();
  assert.equal(s.most_recent_command?.cmd_status, "Success", `${cmd}: ${s.most_recent_command?.stderr}`);
  return s;
}

/** A harness whose agent is in `state`, reached through the commands that lead there. */
async function inState(state: UpdateState): Promise<Harness> {
  const h = harness();
  const path: Record<UpdateState, CommandType[]> = { Idle: [], Available: ["refresh"], Staged: ["refresh", "prepare"], Ready: ["refresh", "prepare", "activate"] };
  for (const cmd of path[state]) await run(h, cmd);
  if (state !== "Idle") assert.equal(h.agent.status().update_state, state);
  return h;
}

/** An accepted command and the state it leads to, or a refusal's status and kind. */
type Outcome = UpdateState | [404 | 409 | 423, AgentErrorKind];
const DISALLOWED: Outcome = [409, "DisallowCommand"];

const EXPECTED: Record<UpdateState, Record<CommandType, Outcome>> = {
  Idle: { refresh: "Available", prepare: DISALLOWED, activate: DISALLOWED, deactivate: DISALLOWED, rollback: [409, "NothingToRollBack"] },
  Available: { refresh: "Available", prepare: "Staged", activate: DISALLOWED, deactivate: DISALLOWED, rollback: [409, "NothingToRollBack"] },
  Staged: { refresh: "Staged", prepare: "Staged", activate: "Ready", deactivate: DISALLOWED, rollback: DISALLOWED },
  Ready: { refresh: "Ready", prepare: DISALLOWED, activate: DISALLOWED, deactivate: "Staged", rollback: DISALLOWED },
};
/** Every command: EXPECTED's rows are records over CommandType, so the compiler keeps this whole. */
const COMMANDS = Object.keys(EXPECTED.Idle) as CommandType[];

const refusal = (status: number, kind: AgentErrorKind, message?: RegExp) => (e: unknown) =>
  e instanceof AgentError && e.status === status && e.kind === kind && e.message === `${kind === "NothingToRollBack" ? "nothing to roll back to" : kind}: ${e.detail}` && (!message || message.test(e.message));

for (const state of UPDATE_STATES) {
  for (const cmd of COMMANDS) {
    const want = EXPECTED[state][cmd];
    test(`${state} + ${cmd} → ${typeof want === "string" ? want : `${want[0]} ${want[1]}`}`, async () => {
      const h = await inState(state);
      if (typeof want === "string") {
        const s = await run(h, cmd);
        assert.equal(s.update_state, want);
        assert.equal(s.most_recent_command?.cmd_type, cmd);
      } else {
        // Idle is the state of an agent that has run no command yet: it has no status to compare.
        const before = state === "Idle" ? null : h.agent.status().most_recent_command;
        assert.throws(() => h.agent.command(cmd), refusal(want[0], want[1]));
        const after = h.agent.status();
        assert.equal(after.update_state, state, "a refusal changes no state");
        assert.deepEqual(after.most_recent_command, before, "a refusal is not a command");
      }
    });
  }
}

test("DisallowCommand names the state and the states the command is allowed in", async () => {
  const h = await inState("Idle");
  assert.throws(() => h.agent.command("activate"), refusal(409, "DisallowCommand", /^DisallowCommand: 'activate' is not allowed in state Idle \(allowed in Staged\)$/));
});

test("status before any command: 404 UninitializedUpdateStatus", () => {
  const h = harness();
  assert.throws(() => h.agent.status(), refusal(404, "UninitializedUpdateStatus", /^UninitializedUpdateStatus: no update command has run yet; refresh first/));
});

test("a command while one runs: 423 UpdateLockHeld, whatever the command", async () => {
  const h = harness();
  h.agent.command("refresh");
  for (const cmd of COMMANDS) assert.throws(() => h.agent.command(cmd), refusal(423, "UpdateLockHeld", /^UpdateLockHeld: 'refresh' is still running; wait for it/));
  await h.agent.idle;
  assert.equal(h.agent.status().update_state, "Available");
});

test("prepare with nothing chosen (staged before a restart, not refreshed since): 404 UpdateDoesNotExist", async () => {
  const first = await inState("Staged");
  const h = harness({ setup: (esp) => esp.files.clear() });
  // The same disk after a restart: the staged record and slot a's entry, no choice in memory.
  for (const [f, t] of first.esp.files) h.esp.files.set(f, t);
  writeState(h.root, readState(first.root));
  assert.throws(() => h.agent.command("prepare"), refusal(404, "UpdateDoesNotExist", /refresh first$/));
  assert.equal(h.agent.status().update_state, "Staged", "the state comes from the disk");
});

test("prepare while the running slot is on trial: 409 DisallowCommand naming the entry", async () => {
  const h = harness({ setup: (esp) => (esp.files.clear(), esp.entry("a", 1, "1.0.0", 2)) });
  await run(h, "refresh");
  assert.throws(() => h.agent.command("prepare"), refusal(409, "DisallowCommand", /the running slot a is still on trial \(entry caisson-a\+2\.conf\)/));
});

test("nothing to roll back to: 409 with the old message, naming the failed versions", async () => {
  const h = harness({ setup: (esp) => esp.entry("b", 2, "1.1.0", 0) });
  assert.throws(
    () => h.agent.command("rollback"),
    refusal(409, "NothingToRollBack", /^nothing to roll back to: slot b holds no bootable image \(its entry caisson-b\+0\.conf has no tries left\) and no earlier version than the running 1\.0\.0 is known on this host \(failed versions are never rolled back to: 1\.1\.0\)$/),
  );
});

test("rollback by switch (Idle and Available): the other slot's usable entry goes on trial, nothing downloaded", async () => {
  for (const refreshFirst of [false, true]) {
    const h = harness({ setup: (esp) => esp.entry("b", 0, "0.9.0") });
    if (refreshFirst) await run(h, "refresh");
    const s = await run(h, "rollback");
    assert.deepEqual([...h.esp.files.keys()].sort(), ["caisson-a.conf", "caisson-b+3.conf"], "on trial with the default tries (no boot.json)");
    assert.equal(s.staging_partition?.image.version, "0.9.0");
    assert.equal(s.staging_partition?.next_to_boot, true);
    assert.equal(s.update_state, refreshFirst ? "Available" : "Idle");
  }
});

test("rollback by download: the previous version from the boot history, prepared and activated", async () => {
  const h = harness({
    versions: ["0.9.0", "1.1.0"],
    setup: (_esp, root) => writeState(root, { failed: [], history: [{ version: "0.9.0", slot: "b", at: new Date(Date.UTC(2029, 0, 1)).toISOString() }] }),
  });
  const s = await run(h, "rollback");
  assert.equal(s.update_state, "Ready");
  assert.equal(s.chosen_update?.version, "0.9.0");
  assert.deepEqual([...h.esp.files.keys()].sort(), ["caisson-a.conf", "caisson-b+2.conf"], "the manifest's boot-tries");
  assert.equal(readState(h.root).staged?.update.version, "0.9.0");
});

test("a failed trial is recorded once with its reason, and the staged record goes", async () => {
  const h = await inState("Ready");
  // The bootloader spent slot b's tries and fell back to a.
  const [trial] = [...h.esp.files.keys()].filter((f) => f.startsWith("caisson-b"));
  const text = h.esp.files.get(trial!)!;
  h.esp.files.delete(trial!);
  h.esp.files.set(entryFileName({ slot: "b", triesLeft: 0, triesDone: 2 }), text);
  const s = await run(h, "refresh");
  assert.equal(s.update_state, "Idle", "the failed version is never chosen again");
  assert.deepEqual(s.failed_updates.map((f) => f.version), ["1.1.0"]);
  assert.match(s.failed_updates[0]!.reason, /used up 2 tries without passing the health gate; slot a booted instead/);
  assert.equal(readState(h.root).staged, undefined);
  await run(h, "refresh");
  assert.equal(h.agent.status().failed_updates.length, 1, "recorded once");
});

test("AgentError builds the message from kind and detail", () => {
  assert.equal(new AgentError("NoStagedImage", "nothing is staged").message, "NoStagedImage: nothing is staged");
  assert.equal(new AgentError("NoStagedImage", "x").status, 404);
  assert.equal(new AgentError("NothingToRollBack", "x").message, "nothing to roll back to: x");
});
