// The update agent: the one owner of the inactive slot and of the update status. Bottlerocket's
// thar-be-updates state machine (reference §1.4) over our TUF client and slots:
//   refresh     Idle|Available → Available (an update is chosen) or Idle; Staged|Ready: list only
//   prepare     Available|Staged → Staged (images written and verified, migrations cached)
//   activate    Staged → Ready (entry on trial, highest generation)
//   deactivate  Ready → Staged
//   rollback    (ours) Idle|Available → back to the version that ran before this one, in one command:
//               - the other slot's entry is usable (blessed or tries left): it becomes the default
//                 on trial (generation max+1, the tries of usr/share/caisson/boot.json), so a boot
//                 that fails its health gate there (e.g. its backward migration) falls back to the
//                 running slot; systemd-bless-boot makes it permanent. Nothing is downloaded;
//               - otherwise (the other slot holds no bootable image, e.g. an update that failed its
//                 trial there) the previous version: the newest boot-history record whose version
//                 is not the running one and never failed a trial here. It is prepared into the
//                 inactive slot exactly as prepare does (manifest verified through TUF, images
//                 streamed and verified, migrations cached for the hop chain down to it) and
//                 activated (on trial, generation max+1): Ready, chosen_update = that version.
//                 Waves and max_version do not apply (an operator's explicit order); a failed
//                 version is never picked. A version the signed manifest no longer lists fails the
//                 command before the inactive slot is touched;
//               - neither: 409 "nothing to roll back to".
// prepare, and rollback when it downloads, are refused (409) while the running boot is still on
// trial (its entry has a try counter): clearing the inactive slot would delete the only fallback.
// The boot history (state.json, last BOOT_HISTORY_MAX records, newest last, in the status as
// boot_history) gets the running version and slot at agent start and before every command when
// they differ from its last record.
// Commands run in the background, one at a time (423 while one runs, 409 when the state forbids
// it); the outcome lands in most_recent_command. The state is re-derived from the disk (ESP
// entries + state.json) before and after every command, so a crash, a reboot or a command that
// failed halfway never leaves it stale.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { JsonObject } from "../settings/keys.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { faultPoint } from "../fsutil/faults.js";
import { osArch } from "../host/os-release.js";
import { MAX_SEED, updatePaths, type Manifest, type Update } from "./manifest.js";
import { applicableUpdates, chooseUpdate } from "./choose.js";
import { Slots, SlotConflict, usable, verifyFile } from "./slots.js";
import { TufClient } from "./tuf.js";
import { httpGet, type HttpOptions } from "./http.js";
import { appendBoot, readHealthFailure, readState, writeState, type AgentState, type BootRecord } from "./state.js";
import { normalizeVersion } from "./version.js";
import { findMigrations } from "../migrations/find.js";
import type { Slot } from "../boot/entries.js";

export type UpdateState = "Idle" | "Available" | "Staged" | "Ready";
export type CommandType = "refresh" | "prepare" | "activate" | "deactivate" | "rollback";
export const COMMANDS: readonly CommandType[] = ["refresh", "prepare", "activate", "deactivate", "rollback"];

export interface Image {
  arch: string;
  version: string;
  variant: string;
}

export interface CommandRecord {
  cmd_type: CommandType;
  cmd_status: "Success" | "Failed" | "Unknown";
  timestamp: string;
  exit_status: number;
  stderr: string;
}

export interface Progress {
  target: string;
  bytes: number;
  total: number;
  mb_per_s: number;
}

export interface UpdateStatus {
  update_state: UpdateState;
  available_updates: string[];
  chosen_update: Image | null;
  active_partition: { image: Image; next_to_boot: boolean };
  /** The inactive slot, only while an update is staged there (prepared) or activated (on trial, boots next); else null. */
  staging_partition: { image: Image; next_to_boot: boolean } | null;
  most_recent_command: CommandRecord | null;
  /** Ours: versions whose boot trial failed on this host, with the reason. */
  failed_updates: { version: string; reason: string; at: string }[];
  /** Ours: the download of the running prepare or rollback, else null. */
  progress: Progress | null;
  /** Ours: the versions this host booted and their slots, newest last. */
  boot_history: BootRecord[];
}

/** A refusal with Bottlerocket's HTTP meaning: 404 (nothing to act on), 409 (state), 423 (busy). */
export class AgentError extends Error {
  constructor(
    readonly status: 404 | 409 | 423,
    message: string,
  ) {
    super(message);
  }
}

export interface AgentOptions {
  root: string;
  variant: string;
  /** The running OS version. */
  version: string;
  arch?: string;
  /** Live settings (the tree under `settings`), read at every command. */
  settings: () => JsonObject;
  log: (msg: string) => void;
  now?: () => Date;
}

const ALLOWED: Record<CommandType, UpdateState[]> = {
  refresh: ["Idle", "Available", "Staged", "Ready"],
  prepare: ["Available", "Staged"],
  activate: ["Staged"],
  deactivate: ["Ready"],
  rollback: ["Idle", "Available"],
};

const sameVersion = (a: string, b: string) => normalizeVersion(a) === normalizeVersion(b);

/** Boot tries when the image names none (the default of `caisson build --boot-tries`). */
const DEFAULT_BOOT_TRIES = 3;

/** How rollback goes back: switch to the other slot's usable entry, or download `version` into it. */
type RollbackPlan = { kind: "switch" } | { kind: "download"; version: string };

const imageOf = (u: Pick<Update, "arch" | "version" | "variant">): Image => ({ arch: u.arch, version: u.version, variant: u.variant });

export class UpdateAgent {
  readonly slots: Slots;
  private readonly arch: string;
  private initialized = false;
  private state: UpdateState = "Idle";
  private available: string[] = [];
  private chosen: Update | undefined;
  private recent: CommandRecord | null = null;
  private progress: Progress | null = null;
  private running: CommandType | undefined;
  /** Settles when the running command does (tests, shutdown). */
  idle: Promise<void> = Promise.resolve();

  constructor(private readonly o: AgentOptions) {
    this.slots = new Slots(o.root);
    this.arch = o.arch ?? osArch();
    try {
      this.recordBoot();
    } catch (e) {
      o.log(`update agent: the boot history was not updated: ${(e as Error).message}`);
    }
  }

  /**
   * Append the running version and slot to the boot history if they differ from its last record.
   * A root whose kernel command line names no slot (not an A/B host) records nothing.
   */
  private recordBoot(): void {
    let slot: Slot;
    try {
      slot = this.slots.active();
    } catch {
      return;
    }
    const st = this.persisted();
    // Its own fault name: the crash tests' update-state points stay on prepare's write.
    if (appendBoot(st, { version: this.o.version, slot, at: this.now().toISOString() })) writeState(this.o.root, st, "update-history");
  }

  /** The version this host ran before the running one: the newest boot record of another version that never failed a trial. */
  previousVersion(): string | undefined {
    const st = this.persisted();
    return [...st.history]
      .reverse()
      .find((r) => !sameVersion(r.version, this.o.version) && !st.failed.some((f) => sameVersion(f.version, r.version)))?.version;
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  private persisted(): AgentState {
    return readState(this.o.root);
  }

  /** GET /updates/status. */
  status(): UpdateStatus {
    if (!this.initialized) throw new AgentError(404, "UninitializedUpdateStatus: no update command has run yet; refresh first (apiclient update check)");
    return this.snapshot();
  }

  private snapshot(): UpdateStatus {
    const st = this.persisted();
    const slots = this.slots.status();
    const active = slots.find((s) => s.active)!;
    const inactive = slots.find((s) => !s.active)!;
    const staged = st.staged && st.staged.slot === inactive.slot ? st.staged.update : undefined;
    // Activated without a staged record: a rollback's switch put the entry on trial as the default.
    const e = inactive.entry;
    const activated = e?.version && e.triesLeft !== undefined && usable(e) && inactive.nextToBoot ? e.version : undefined;
    const inactiveImage = staged ? imageOf(staged) : activated ? { arch: this.arch, variant: this.o.variant, version: activated } : undefined;
    return {
      update_state: this.state,
      available_updates: this.available,
      chosen_update: this.chosen ? imageOf(this.chosen) : null,
      active_partition: { image: { arch: this.arch, version: this.o.version, variant: this.o.variant }, next_to_boot: active.nextToBoot },
      staging_partition: inactiveImage ? { image: inactiveImage, next_to_boot: inactive.nextToBoot } : null,
      most_recent_command: this.recent,
      failed_updates: st.failed,
      progress: this.progress,
      boot_history: st.history,
    };
  }

  /**
   * Re-derive what the disk says: a trial that failed (recorded once, with the health gate's
   * reason when it left one), a staged record that no longer describes the inactive slot, and
   * the state when something is staged.
   */
  private sync(): void {
    this.recordBoot();
    const st = this.persisted();
    let dirty = false;
    const failed = this.slots.failedTrial();
    if (failed?.version && !st.failed.some((f) => sameVersion(f.version, failed.version!))) {
      const h = readHealthFailure(this.o.root);
      const checks = h && sameVersion(h.version, failed.version) ? h.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`) : [];
      const reason = checks.length
        ? `failed its health gate: ${checks.join("; ")}`
        : `its boot on trial used up ${failed.triesDone ?? "its"} tries without passing the health gate; slot ${this.slots.active()} booted instead`;
      st.failed.push({ version: failed.version, reason, at: this.now().toISOString() });
      this.o.log(`update ${failed.version} ${reason}`);
      if (st.staged && sameVersion(st.staged.update.version, failed.version)) st.staged = undefined;
      dirty = true;
    }
    const inactive = this.slots.inactive();
    if (st.staged && (st.staged.slot !== inactive || st.staged.update.variant !== this.o.variant)) {
      st.staged = undefined;
      dirty = true;
    }
    if (dirty) writeState(this.o.root, st);
    if (st.staged) {
      const e = this.slots.entryOf(inactive);
      this.state = e?.version && usable(e) && sameVersion(e.version, st.staged.update.version) && this.slots.nextToBoot()?.slot === inactive ? "Ready" : "Staged";
    } else if (this.state === "Staged" || this.state === "Ready") {
      this.state = this.chosen ? "Available" : "Idle";
    }
  }

  /** Start a command in the background (the API answers 204 at once); throws AgentError if refused. */
  command(cmd: CommandType): void {
    if (this.running) throw new AgentError(423, `UpdateLockHeld: '${this.running}' is still running; wait for it (GET /updates/status)`);
    this.sync();
    this.initialized = true;
    if (!ALLOWED[cmd].includes(this.state)) {
      throw new AgentError(409, `DisallowCommand: '${cmd}' is not allowed in state ${this.state} (allowed in ${ALLOWED[cmd].join(", ")})`);
    }
    if (cmd === "prepare" && !this.chosen) throw new AgentError(404, "UpdateDoesNotExist: no update is chosen; refresh first");
    const plan = cmd === "rollback" ? this.planRollback() : undefined;
    if (cmd === "prepare" || plan?.kind === "download") this.refuseOnTrial();
    this.running = cmd;
    this.recent = { cmd_type: cmd, cmd_status: "Unknown", timestamp: this.now().toISOString(), exit_status: 0, stderr: "" };
    const started = this.recent;
    this.idle = this.run(cmd, plan).then(
      () => {
        this.recent = { ...started, cmd_status: "Success", exit_status: 0 };
        this.o.log(`update ${cmd}: done (${this.state})`);
      },
      (e: Error) => {
        this.recent = { ...started, cmd_status: "Failed", exit_status: 1, stderr: e.message };
        this.o.log(`update ${cmd} failed: ${e.message}`);
      },
    ).finally(() => {
      this.running = undefined;
      this.progress = null;
      // A command that failed halfway (a prepare from Staged drops the staged record first).
      try {
        this.sync();
      } catch (e) {
        this.o.log(`update ${cmd}: the state could not be re-derived from the disk: ${(e as Error).message}`);
      }
    });
  }

  /** Writing the inactive slot while the running boot is on trial would delete the only fallback. */
  private refuseOnTrial(): void {
    const slot = this.slots.active();
    const e = this.slots.entryOf(slot);
    if (e && e.triesLeft !== undefined) {
      throw new AgentError(409, `DisallowCommand: the running slot ${slot} is still on trial (entry ${e.file}); wait until it is blessed`);
    }
  }

  /** The boot tries the image gives a slot on trial: usr/share/caisson/boot.json, written by the build. */
  private bootTries(): number {
    const path = join(this.o.root, "usr/share/caisson/boot.json");
    try {
      const tries = (JSON.parse(readFileSync(path, "utf8")) as { "boot-tries"?: unknown })["boot-tries"];
      if (typeof tries === "number" && Number.isInteger(tries) && tries >= 1) return tries;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") this.o.log(`update: ${path}: ${(e as Error).message}; ${DEFAULT_BOOT_TRIES} boot tries`);
    }
    return DEFAULT_BOOT_TRIES;
  }

  private async run(cmd: CommandType, plan?: RollbackPlan): Promise<void> {
    switch (cmd) {
      case "refresh":
        return this.refresh();
      case "prepare":
        return this.prepare();
      case "activate":
        return this.activate();
      case "deactivate":
        this.slots.deactivateInactive();
        faultPoint("deactivate:after-remove");
        this.sync();
        return;
      case "rollback": {
        if (plan?.kind === "download") return this.rollbackTo(plan.version);
        const e = this.slots.rollbackToInactive(this.bootTries());
        this.o.log(`rollback: slot ${e.slot} (${e.version ?? "unknown version"}) boots next, on trial (${e.file})`);
        this.sync();
        return;
      }
    }
  }

  /** Decided before the command starts, so "nothing to roll back to" is the request's 409. */
  private planRollback(): RollbackPlan {
    const inactive = this.slots.inactive();
    const e = this.slots.entryOf(inactive);
    if (usable(e)) return { kind: "switch" };
    const version = this.previousVersion();
    if (version) return { kind: "download", version };
    const holds = e ? `holds no bootable image (its entry ${e.file} has no tries left)` : "holds no bootable image (no boot entry)";
    const failed = this.persisted().failed.map((f) => f.version);
    throw new AgentError(
      409,
      `nothing to roll back to: slot ${inactive} ${holds} and no earlier version than the running ${this.o.version} is known on this host` +
        (failed.length ? ` (failed versions are never rolled back to: ${failed.join(", ")})` : ""),
    );
  }

  /** Rollback when the other slot cannot boot: `version` from the repository into it, then on trial. */
  private async rollbackTo(version: string): Promise<void> {
    const tuf = this.client();
    const { manifest, bytes } = await this.fetchManifest(tuf);
    const update = manifest.updates.find((u) => sameVersion(u.version, version) && u.variant === this.o.variant && u.arch === this.arch);
    if (!update) {
      throw new Error(
        `the previous version ${version} (${this.o.variant}, ${this.arch}) is not in the repository's signed manifest: nothing to roll back to; slot ${this.slots.inactive()} is untouched`,
      );
    }
    this.o.log(`rollback: slot ${this.slots.inactive()} holds no bootable image; writing the previous version ${update.version} into it`);
    await this.stage(tuf, manifest, bytes, update, "rollback");
    this.chosen = update;
    await this.activate();
  }

  private client(): TufClient {
    const s = this.o.settings();
    const u = (s.updates ?? {}) as Record<string, unknown>;
    const meta = u["metadata-base-url"];
    const targets = u["targets-base-url"];
    if (typeof meta !== "string" || !meta) throw new Error("settings.updates.metadata-base-url is not set");
    if (typeof targets !== "string" || !targets) throw new Error("settings.updates.targets-base-url is not set");
    return new TufClient({
      root: this.o.root,
      metadataBaseUrl: meta,
      targetsBaseUrl: targets,
      http: this.http(),
    });
  }

  /** settings.network.https-proxy and no-proxy, for every request the agent makes. */
  private http(): HttpOptions {
    const n = (this.o.settings().network ?? {}) as Record<string, unknown>;
    return { proxy: typeof n["https-proxy"] === "string" ? n["https-proxy"] : undefined, noProxy: Array.isArray(n["no-proxy"]) ? (n["no-proxy"] as string[]) : undefined };
  }

  private async fetchManifest(tuf: TufClient): Promise<{ manifest: Manifest; bytes: Buffer }> {
    await tuf.refresh();
    const tmp = join(this.o.root, updatePaths.metadata, "..", ".manifest.json.download");
    try {
      return await tuf.manifest(tmp);
    } finally {
      rmSync(tmp, { force: true });
    }
  }

  private async refresh(): Promise<void> {
    const { manifest } = await this.fetchManifest(this.client());
    const u = (this.o.settings().updates ?? {}) as Record<string, unknown>;
    const input = {
      manifest,
      variant: this.o.variant,
      arch: this.arch,
      running: this.o.version,
      // Without a seed (the generator sets one at first boot) a host waits for the last wave.
      seed: typeof u.seed === "number" ? u.seed : MAX_SEED - 1,
      now: this.now(),
      ignoreWaves: u["ignore-waves"] === true,
      versionLock: typeof u["version-lock"] === "string" ? u["version-lock"] : "latest",
      failed: new Set(this.persisted().failed.map((f) => f.version)),
    };
    this.available = applicableUpdates(input).map((x) => x.version);
    this.chosen = chooseUpdate(input);
    if (this.state === "Idle" || this.state === "Available") this.state = this.chosen ? "Available" : "Idle";
  }

  private async prepare(): Promise<void> {
    const chosen = this.chosen!;
    const tuf = this.client();
    const { manifest, bytes } = await this.fetchManifest(tuf);
    const update = manifest.updates.find((u) => sameVersion(u.version, chosen.version) && u.variant === chosen.variant && u.arch === chosen.arch);
    if (!update) throw new Error(`update ${chosen.version} is no longer in the signed manifest; refresh again`);
    await this.stage(tuf, manifest, bytes, update, "prepare");
  }

  /**
   * Write `update` into the inactive slot (cleared first, so it cannot boot half-written), verify
   * it, cache what the migrator needs for the hop chain from the running version, and record it
   * as staged. Shared by prepare and rollback; progress and logs name `cmd`.
   */
  private async stage(tuf: TufClient, manifest: Manifest, bytes: Buffer, update: Update, cmd: CommandType): Promise<void> {
    // The migrator runs the same walk after the reboot, from this cache and offline.
    const hops = findMigrations(this.o.version, update.version, manifest).map((m) => m.name);
    const infos = {
      root: await tuf.target(update.images.root),
      hash: await tuf.target(update.images.hash),
      kernel: await tuf.target(update.images.kernel),
      initrd: await tuf.target(update.images.initrd),
    };

    // From here the inactive slot is being rewritten: first make sure it cannot boot.
    const st = this.persisted();
    if (st.staged) writeState(this.o.root, { ...st, staged: undefined });
    this.slots.clearInactive();
    faultPoint("prepare:after-clear");

    for (const [part, info] of [["root", infos.root], ["verity", infos.hash]] as const) {
      const t0 = Date.now();
      let lastLog = 0;
      const report = (bytes: number, total: number) => {
        const secs = (Date.now() - t0) / 1000;
        this.progress = { target: info.name, bytes, total, mb_per_s: secs > 0 ? Math.round((bytes / 1e6 / secs) * 10) / 10 : 0 };
        if (bytes === total || Date.now() - lastLog > 2000) {
          lastLog = Date.now();
          this.o.log(`${cmd}: ${info.name} ${Math.floor((bytes / total) * 100)}% (${bytes}/${total} bytes, ${this.progress.mb_per_s} MB/s)`);
        }
      };
      report(0, info.length);
      await this.slots.writeInactivePartition(part, tuf.stream(info), info, report);
    }
    await this.slots.writeInactiveBootFile("kernel", tuf.stream(infos.kernel), infos.kernel);
    await this.slots.writeInactiveBootFile("initrd", tuf.stream(infos.initrd), infos.initrd);
    this.progress = null;
    faultPoint("prepare:after-images");

    try {
      await this.cache(tuf, bytes, hops);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const cache = join(this.o.root, updatePaths.cache);
      if (err.code === "ENOSPC" || /ENOSPC/.test(err.message)) {
        throw new Error(`no space left on the device of ${cache} (ENOSPC) while caching the update's metadata and migrations; the running slot and the settings are untouched; free space and prepare again`);
      }
      throw new Error(`caching the update's metadata and migrations in ${cache} failed: ${err.message}`);
    }
    faultPoint("prepare:after-cache");
    writeState(this.o.root, { ...this.persisted(), staged: { update, slot: this.slots.inactive(), at: this.now().toISOString() } });
    this.state = "Staged";
  }

  /**
   * What the migrator needs after the reboot, usable offline: the metadata (the root chain from
   * the URL the TUF client used), the manifest and the hops' modules. The migrator verifies the
   * chain and the modules at boot.
   */
  private async cache(tuf: TufClient, manifestBytes: Buffer, hops: string[]): Promise<void> {
    const cache = join(this.o.root, updatePaths.cache);
    const metaOut = join(cache, "metadata");
    const targetsOut = join(cache, "targets");
    mkdirSync(metaOut, { recursive: true });
    mkdirSync(targetsOut, { recursive: true });
    // The root chain: the migrator starts from the shipped root and needs every signed rotation.
    const root = JSON.parse(readFileSync(join(tuf.metadataDir, "root.json"), "utf8")) as { signed: { version: number } };
    for (let v = 2; v <= root.signed.version; v++) {
      const res = await httpGet(`${tuf.metadataBaseUrl.replace(/\/+$/, "")}/${v}.root.json`, this.http());
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of res as AsyncIterable<Buffer>) {
        n += c.length;
        if (n > 512_000) throw new Error(`${v}.root.json is larger than 512000 bytes`);
        chunks.push(c);
      }
      writeFileAtomic(join(metaOut, `${v}.root.json`), Buffer.concat(chunks), { durable: true });
    }
    for (const f of readdirSync(tuf.metadataDir).filter((x) => x.endsWith(".json"))) {
      writeFileAtomic(join(metaOut, f), readFileSync(join(tuf.metadataDir, f)), { durable: true });
    }
    writeFileAtomic(join(targetsOut, "manifest.json"), manifestBytes, { durable: true });
    for (const name of hops) {
      const info = await tuf.target(name);
      const path = join(targetsOut, name);
      if (existsSync(path)) {
        try {
          await verifyFile(path, info, name);
          continue;
        } catch {
          // stale or damaged: download again
        }
      }
      const tmp = join(targetsOut, `.${name}.download`);
      try {
        await tuf.download(name, tmp);
        renameSync(tmp, path);
      } finally {
        rmSync(tmp, { force: true });
      }
    }
  }

  private async activate(): Promise<void> {
    const st = this.persisted();
    if (!st.staged) throw new Error("NoStagedImage: nothing is staged");
    faultPoint("activate:before");
    const e = this.slots.activateInactive(st.staged.update, st.staged.update["boot-tries"]);
    this.o.log(`activate: ${e.file} (generation ${e.generation}) boots next, on trial`);
    this.sync();
  }
}

export { SlotConflict };
