// The update agent (Bottlerocket's thar-be-updates): the state machine behind /updates/status and
// /actions/*-update, the command lock, and the status. The work is elsewhere: staging an update
// (stage.ts, with write.ts and migration-cache.ts), rollback planning (rollback.ts), the persistent
// state and boot history (state.ts), boot entries (src/boot/slots.ts). The state table, the
// commands and how each failure ends are in src/update/README.md.
//
// Commands run in the background, one at a time (423 while one runs, 409 when the state forbids
// it); the outcome lands in most_recent_command. The state is re-derived from the disk (ESP
// entries + state.json) before and after every command.
import type { JsonObject } from "../settings/keys.js";
import { asSettings } from "../settings/schema.js";
import { faultPoint } from "../fsutil/faults.js";
import { BootSlots, NoBootSlotsError, type SlotImage, usable } from "../boot/slots.js";
import { osArch } from "./arch.js";
import { applicableUpdates, chooseUpdate } from "./choose.js";
import { AgentError } from "./errors.js";
import { httpGet, proxyOptions } from "./http.js";
import { MAX_SEED, type Manifest, type Update } from "./manifest.js";
import type { HttpGet } from "./migration-cache.js";
import { bootTries, planRollback, rollbackUpdate, type RollbackPlan } from "./rollback.js";
import { fetchManifest, stageUpdate } from "./stage.js";
import { readState, reconcile, recordBoot, stagedState, writeState } from "./state.js";
import type { CommandRecord, CommandType, DownloadProgress, Image, UpdateState, UpdateStatus } from "../protocol/types.js";
import { tufClientFor, type TufSource } from "./tuf.js";
import { sameVersion } from "./version.js";

export { AgentError } from "./errors.js";
export type { AgentErrorKind } from "./errors.js";

export const UPDATE_STATES: readonly UpdateState[] = ["Idle", "Available", "Staged", "Ready"];

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
  /** Boot control as the ESP is now, loaded at each use. Default: BootSlots.load(root). */
  slots?: () => BootSlots;
  /** The TUF repository for the live settings. Default: TufClient over settings.updates.*-base-url, through the proxy. */
  tuf?: (settings: JsonObject) => TufSource;
  /** HTTP GET for the live settings (the migrator's root chain). Default: httpGet through settings.network's proxy. */
  http?: (settings: JsonObject) => HttpGet;
}

/** The states each command is allowed in (else 409 DisallowCommand). */
const ALLOWED: Record<CommandType, readonly UpdateState[]> = {
  refresh: ["Idle", "Available", "Staged", "Ready"],
  prepare: ["Available", "Staged"],
  activate: ["Staged"],
  deactivate: ["Ready"],
  rollback: ["Idle", "Available"],
};

const imageOf = (u: Pick<Update, "arch" | "version" | "variant">): Image => ({ arch: u.arch, version: u.version, variant: u.variant });

/** What the slot's boot entry is made of. */
const slotImageOf = (u: Update): SlotImage => ({
  version: u.version,
  roothash: u.roothash,
  fsType: u.images.root.endsWith(".squashfs") ? "squashfs" : "erofs",
  kernelParameters: u["kernel-parameters"],
});

export class UpdateAgent {
  private readonly arch: string;
  private readonly slots: () => BootSlots;
  private readonly tuf: (settings: JsonObject) => TufSource;
  private readonly http: (settings: JsonObject) => HttpGet;
  private initialized = false;
  private state: UpdateState = "Idle";
  private available: string[] = [];
  private chosen: Update | undefined;
  private recent: CommandRecord | null = null;
  private progress: DownloadProgress | null = null;
  private running: CommandType | undefined;
  /** Settles when the running command does (tests, shutdown). */
  idle: Promise<void> = Promise.resolve();

  constructor(private readonly o: AgentOptions) {
    this.arch = o.arch ?? osArch();
    this.slots = o.slots ?? (() => BootSlots.load(o.root));
    this.tuf = o.tuf ?? ((s) => tufClientFor(o.root, s));
    this.http = o.http ?? ((s) => (url) => httpGet(url, proxyOptions(s)));
    try {
      this.recordBoot();
    } catch (e) {
      o.log(`update agent: the boot history was not updated: ${(e as Error).message}`);
    }
  }

  /** The running version and slot into the boot history; a root whose command line names no slot (not an A/B host) records nothing. */
  private recordBoot(): void {
    let slots: BootSlots;
    try {
      slots = this.slots();
    } catch {
      return;
    }
    recordBoot(this.o.root, { version: this.o.version, slot: slots.active, at: this.now().toISOString() });
  }

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** GET /updates/status. */
  status(): UpdateStatus {
    if (!this.initialized) throw new AgentError("UninitializedUpdateStatus", "no update command has run yet; refresh first (apiclient update check)");
    return this.snapshot();
  }

  private snapshot(): UpdateStatus {
    const st = readState(this.o.root);
    const slots = this.slots().status();
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

  /** Re-derive the state from the disk (state.ts's reconcile: failed trials, stale staged records). */
  private sync(): void {
    this.recordBoot();
    const slots = this.slots();
    const st = readState(this.o.root);
    const { changed, failed } = reconcile(st, slots, { root: this.o.root, variant: this.o.variant, at: this.now().toISOString() });
    if (failed) this.o.log(`update ${failed.version} ${failed.reason}`);
    if (changed) writeState(this.o.root, st);
    const staged = stagedState(st, slots);
    if (staged) this.state = staged;
    else if (this.state === "Staged" || this.state === "Ready") this.state = this.chosen ? "Available" : "Idle";
  }

  /** Start a command in the background (the API answers 204 at once); throws AgentError if refused. */
  command(cmd: CommandType): void {
    if (this.running) throw new AgentError("UpdateLockHeld", `'${this.running}' is still running; wait for it (GET /updates/status)`);
    try {
      this.sync();
    } catch (e) {
      if (!(e instanceof NoBootSlotsError)) throw e;
      throw new AgentError(
        "NoBootSlots",
        `this host has no A/B boot slots to update (${e.message}); update actions run on a Caisson image, or in workstation mode on a root with ` +
          "<root>/proc/cmdline naming caisson.slot= and an ESP under <root>/efi",
      );
    }
    this.initialized = true;
    if (!ALLOWED[cmd].includes(this.state)) {
      throw new AgentError("DisallowCommand", `'${cmd}' is not allowed in state ${this.state} (allowed in ${ALLOWED[cmd].join(", ")})`);
    }
    if (cmd === "prepare" && !this.chosen) throw new AgentError("UpdateDoesNotExist", "no update is chosen; refresh first");
    const plan = cmd === "rollback" ? planRollback(this.slots(), readState(this.o.root), this.o.version) : undefined;
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
    const slots = this.slots();
    const e = slots.activeOnTrial();
    if (e) throw new AgentError("DisallowCommand", `the running slot ${slots.active} is still on trial (entry ${e.file}); wait until it is blessed`);
  }

  private async run(cmd: CommandType, plan?: RollbackPlan): Promise<void> {
    switch (cmd) {
      case "refresh":
        return this.refresh();
      case "prepare":
        return this.prepare();
      case "activate":
        return this.activate();
      case "deactivate": {
        const slots = this.slots();
        slots.deactivateInactive();
        slots.write();
        faultPoint("deactivate:after-remove");
        this.sync();
        return;
      }
      case "rollback": {
        if (plan?.kind === "download") return this.rollbackTo(plan.version);
        const tries = bootTries(this.o.root, this.o.log);
        const slots = this.slots();
        const e = slots.rollbackToInactive(tries);
        slots.write();
        this.o.log(`rollback: slot ${e.slot} (${e.version ?? "unknown version"}) boots next, on trial (${e.file})`);
        this.sync();
        return;
      }
    }
  }

  private async refresh(): Promise<void> {
    const { manifest } = await fetchManifest(this.o.root, this.tuf(this.o.settings()));
    const u = asSettings(this.o.settings()).updates ?? {};
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
      failed: new Set(readState(this.o.root).failed.map((f) => f.version)),
    };
    this.available = applicableUpdates(input).map((x) => x.version);
    this.chosen = chooseUpdate(input);
    if (this.state === "Idle" || this.state === "Available") this.state = this.chosen ? "Available" : "Idle";
  }

  private async prepare(): Promise<void> {
    const chosen = this.chosen!;
    const settings = this.o.settings();
    const tuf = this.tuf(settings);
    const { manifest, bytes } = await fetchManifest(this.o.root, tuf);
    const update = manifest.updates.find((u) => sameVersion(u.version, chosen.version) && u.variant === chosen.variant && u.arch === chosen.arch);
    if (!update) throw new Error(`update ${chosen.version} is no longer in the signed manifest; refresh again`);
    await this.stage(settings, tuf, manifest, bytes, update, "prepare");
  }

  /** Rollback when the other slot cannot boot: `version` from the repository into it, then on trial. */
  private async rollbackTo(version: string): Promise<void> {
    const settings = this.o.settings();
    const tuf = this.tuf(settings);
    const { manifest, bytes } = await fetchManifest(this.o.root, tuf);
    const inactive = this.slots().inactive;
    const update = rollbackUpdate(manifest, version, this.o.variant, this.arch, inactive);
    this.o.log(`rollback: slot ${inactive} holds no bootable image; writing the previous version ${update.version} into it`);
    await this.stage(settings, tuf, manifest, bytes, update, "rollback");
    this.chosen = update;
    await this.activate();
  }

  private async stage(settings: JsonObject, tuf: TufSource, manifest: Manifest, bytes: Buffer, update: Update, cmd: CommandType): Promise<void> {
    await stageUpdate({
      root: this.o.root,
      running: this.o.version,
      tuf,
      http: this.http(settings),
      manifest,
      manifestBytes: bytes,
      update,
      slots: this.slots,
      cmd,
      log: this.o.log,
      now: () => this.now(),
      progress: (p) => (this.progress = p),
    });
    this.state = "Staged";
  }

  private async activate(): Promise<void> {
    const st = readState(this.o.root);
    if (!st.staged) throw new AgentError("NoStagedImage", "nothing is staged");
    faultPoint("activate:before");
    const slots = this.slots();
    const e = slots.activateInactive(slotImageOf(st.staged.update), st.staged.update["boot-tries"]);
    slots.write();
    this.o.log(`activate: ${e.file} (generation ${e.generation}) boots next, on trial`);
    this.sync();
  }
}
