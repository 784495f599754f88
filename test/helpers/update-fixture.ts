// Test fixture for the update agent: a real signed repository (src/repo) with fake builds, served
// on loopback, and a host root laid out like the image's: file-backed slot partitions, an ESP with
// slot a's entry and boot files, proc/cmdline naming slot a, the trusted root.json.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { addUpdate, initRepository, readRepository, serveRepository, type InitOptions, type ServedRepository } from "../../src/repo/repository.js";
import { entryText } from "../../src/boot/entries.js";
import { updatePaths } from "../../src/update/manifest.js";
import { fakeBuild } from "./fake-build.js";
import assert from "node:assert/strict";
import { call, startHost, tempDir, type TestHost } from "./host.js";
import { UpdateAgent } from "../../src/update/agent.js";
import type { CommandType, UpdateStatus } from "../../src/protocol/types.js";
import { UPDATE_ACTION, type Path } from "../../src/protocol/routes.js";
import type { JsonObject } from "../../src/settings/keys.js";

export const PART_SIZE = 4 << 20;
export const PARTS = ["root-a", "root-a-verity", "root-b", "root-b-verity"];

export interface RepoFixture {
  dir: string;
  served: ServedRepository;
  builds: Record<string, string>;
}

/** A repository with `versions` (all waves "none", hop from the previous, one migration each). */
export async function makeRepo(base: string, versions: string[] = ["1.1.0"], o: { init?: InitOptions; size?: number; from?: string } = {}): Promise<RepoFixture> {
  const dir = join(base, "repo");
  await initRepository(dir, o.init ?? {});
  const builds: Record<string, string> = {};
  let from = o.from ?? "1.0.0";
  for (const v of versions) {
    const b = join(base, `build-${v}`);
    fakeBuild(b, { version: v, size: o.size ?? 256 * 1024 });
    const mig = join(base, `mig-${v}`);
    mkdirSync(mig, { recursive: true });
    writeFileSync(join(mig, "touch.mjs"), `export const version = ${JSON.stringify(v)};\n// ${"x".repeat(200_000)}\n`);
    await addUpdate(dir, { buildDir: b, waves: "none", from, migrationsDir: mig, progress: () => {} });
    builds[v] = b;
    from = v;
  }
  const served = await serveRepository(dir, 0);
  return { dir, served, builds };
}

/** A host root running slot a (version `running`), trusting `repoDir`'s root. */
export function makeHostRoot(root: string, repoDir: string, running = "1.0.0"): void {
  const parts = join(root, "dev/disk/by-partlabel");
  mkdirSync(parts, { recursive: true });
  for (const p of PARTS) writeFileSync(join(parts, p), Buffer.alloc(PART_SIZE, p.startsWith("root-a") ? 0xa5 : 0));
  mkdirSync(join(root, "efi/loader/entries"), { recursive: true });
  mkdirSync(join(root, "efi/caisson/a"), { recursive: true });
  writeFileSync(join(root, "efi/caisson/a/vmlinuz"), "kernel a");
  writeFileSync(join(root, "efi/caisson/a/initrd.img"), "initrd a");
  writeFileSync(
    join(root, "efi/loader/entries/caisson-a.conf"),
    entryText({ slot: "a", generation: 1, title: `Caisson ${running}`, roothash: "00".repeat(32), fsType: "erofs", extra: [`caisson.version=${running}`] }),
  );
  mkdirSync(join(root, "proc"), { recursive: true });
  writeFileSync(join(root, "proc/cmdline"), `root=/dev/mapper/root caisson.slot=a caisson.version=${running}\n`);
  mkdirSync(join(root, "usr/share/caisson/updates"), { recursive: true });
  copyFileSync(readRepository(repoDir).rootJson, join(root, updatePaths.trustedRoot));
}

/** Bytes and mtimes of everything that belongs to slot a: must never change during an update. */
export function slotAFingerprint(root: string): string {
  const files = [
    ...PARTS.filter((p) => p.startsWith("root-a")).map((p) => join(root, "dev/disk/by-partlabel", p)),
    join(root, "efi/caisson/a/vmlinuz"),
    join(root, "efi/caisson/a/initrd.img"),
    ...readdirSync(join(root, "efi/loader/entries")).filter((f) => f.startsWith("caisson-a")).map((f) => join(root, "efi/loader/entries", f)),
  ];
  return files.map((f) => `${f} ${statSync(f).mtimeMs} ${createHash("sha256").update(readFileSync(f)).digest("hex")}`).join("\n");
}

export const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** The slot b partition holds exactly `file`'s bytes (and zeros after them). */
export function slotHolds(root: string, label: string, file: string): boolean {
  const want = readFileSync(file);
  const got = readFileSync(join(root, "dev/disk/by-partlabel", label));
  return got.subarray(0, want.length).equals(want) && got.subarray(want.length).every((b) => b === 0);
}

export const isZero = (root: string, label: string) => readFileSync(join(root, "dev/disk/by-partlabel", label)).every((b) => b === 0);

export interface Env {
  base: string;
  root: string;
  repo: RepoFixture;
  t: TestHost;
  agent: UpdateAgent;
  close: () => Promise<void>;
}

export async function setSettings(t: TestHost, updates: JsonObject): Promise<void> {
  const tx = `u${Math.random().toString(36).slice(2)}`;
  const p = await call(t.socket, "PATCH", `/settings?tx=${tx}`, { updates });
  assert.equal(p.status, 204, p.text);
  const c = await call(t.socket, "POST", `/tx/commit_and_apply?tx=${tx}`);
  assert.equal(c.status, 200, c.text);
}

export async function env(o: { versions?: string[]; running?: string; repo?: RepoFixture; base?: string; init?: InitOptions } = {}): Promise<Env> {
  const base = o.base ?? tempDir("caisson-update-");
  const repo = o.repo ?? (await makeRepo(base, o.versions, { init: o.init }));
  const root = join(base, "root");
  makeHostRoot(root, repo.dir, o.running);
  const t = await startHost({ root });
  const agent = new UpdateAgent({ root, variant: "dev", version: o.running ?? "1.0.0", settings: () => t.host.liveSettings(), log: (m) => t.logs.push(m) });
  t.host.services.updates = agent;
  await setSettings(t, { "metadata-base-url": repo.served.metadataUrl, "targets-base-url": repo.served.targetsUrl, seed: 100 });
  return { base, root, repo, t, agent, close: async () => (await t.stop(), await repo.served.close()) };
}

const STATUS: Path = "/updates/status";

/** POST the command (204 at once), wait for it, return the status. */
export async function run(e: Env, cmd: CommandType): Promise<UpdateStatus> {
  const r = await call(e.t.socket, "POST", UPDATE_ACTION[cmd]);
  assert.equal(r.status, 204, `${cmd}: ${r.text}`);
  await e.agent.idle;
  const s = await call(e.t.socket, "GET", STATUS);
  assert.equal(s.status, 200, s.text);
  return s.json() as UpdateStatus;
}

export function succeeded(s: UpdateStatus, cmd: CommandType): void {
  assert.equal(s.most_recent_command?.cmd_type, cmd);
  assert.equal(s.most_recent_command?.cmd_status, "Success", s.most_recent_command?.stderr);
}
