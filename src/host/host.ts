// The host's management plane, assembled: bring-up (bring-up.ts), the settings service
// (settings-service.ts), the controllers (controllers.ts) under one runner, and the typed service
// record the API calls (src/api/services.ts). One resident daemon hosts all of it (an idle Node
// process costs ~45 MiB; one is enough); the daemon (daemon.ts) adds the socket, signals and the
// health verdict. Tests start the same assembly in-process.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Applier } from "../applier/applier.js";
import { loadServiceCatalog } from "../applier/services.js";
import { loadTemplates } from "../applier/templates.js";
import type { ServiceManager } from "../applier/service-manager.js";
import { ConfigFilesController } from "../applier/controller.js";
import { ControllerRunner } from "../controller/runner.js";
import type { JsonObject } from "../settings/keys.js";
import type { Variant } from "../settings/schema.js";
import type { UserDataSource } from "../userdata/userdata.js";
import type { BootStatus } from "../protocol/types.js";
import type { Services } from "../api/services.js";
import type { ServerLimits } from "../api/limits.js";
import type { UpdateAgent } from "../update/agent.js";
import { readOs } from "./os-release.js";
import { memoryReport } from "./memory.js";
import { bringUp } from "./bring-up.js";
import { CONFIG_FILES, HostSettings } from "./settings-service.js";
import { hostControllers } from "./controllers.js";
import { hostPaths } from "../fsutil/paths.js";

export interface HostOptions {
  /** The host's root: "/" on the image, a directory in workstation mode. */
  root: string;
  variant: Variant;
  /** Package version; the data-store version and the fallback OS version. */
  version: string;
  /** Directory with services.toml and templates/. */
  imageDir: string;
  serviceManager: ServiceManager;
  userDataSources: UserDataSource[];
  log: (msg: string) => void;
  /** The network API controller: its server limits and the address it binds; absent, none. */
  network?: { limits: ServerLimits; bind: string; handler: (svc: Services) => import("node:http").RequestListener };
  /** The update agent, made once settings are up (it reads them live at each command). */
  updates?: (settings: () => JsonObject) => UpdateAgent;
}

export interface RunningHost {
  services: Services;
  settings: HostSettings;
  runner: ControllerRunner;
  liveSettings(): JsonObject;
  bootStatus(): BootStatus;
  /** Add what only the daemon knows (boot, health, data partition) to the boot status. */
  reportBoot<K extends "boot" | "health" | "data-partition" | "bootstrap-commands">(part: K, value: BootStatus[K]): void;
  /** Stop the controllers (their servers and timers). */
  stop(): Promise<void>;
}

/**
 * Bring the host up: settings first (migrations, defaults, first-boot user data, generated
 * values), then every controller's first reconcile (the configuration files among them).
 */
export async function startHost(o: HostOptions): Promise<RunningHost> {
  const up = await bringUp(o);
  const { store } = up;
  const caBase = join(o.root, hostPaths.caBundleBase);
  const os = readOs(o.root, { version: o.version, variant: o.variant });
  const applier = new Applier({
    root: o.root,
    catalog: loadServiceCatalog(o.imageDir),
    templates: loadTemplates(join(o.imageDir, "templates")),
    serviceManager: o.serviceManager,
    os,
    host: { "ca-bundle-base": existsSync(caBase) ? readFileSync(caBase, "utf8") : "" },
  });
  const configFiles = new ConfigFilesController(applier, o.log);
  // The services record exists before the runner starts: the network API serves it.
  const ref: { services?: Services } = {};
  const controllers = hostControllers({
    configFiles,
    log: o.log,
    network: o.network && { limits: o.network.limits, bind: o.network.bind, handler: () => o.network!.handler(ref.services!) },
  });
  const runner = new ControllerRunner(controllers, { settings: () => store.liveSettings(), log: o.log });
  const settings = new HostSettings({ store, variant: o.variant, applier, runner, log: o.log });
  const extra: Pick<BootStatus, "boot" | "health" | "data-partition" | "bootstrap-commands"> = {};
  let applied: { ok: boolean; error?: string } = { ok: false, error: "not applied yet" };
  const bootStatus = (): BootStatus => ({
    "user-data": up["user-data"],
    migration: up.migration,
    datastore: up.datastore,
    "settings-applied": applied.ok,
    ...(applied.error ? { "apply-error": applied.error } : {}),
    generated: up.generated,
    "started-at": up["started-at"],
    controllers: runner.statuses(),
    ...extra,
  });
  const services: Services = {
    settings,
    catalog: {
      services: () => applier.servicesView() as unknown as JsonObject,
      configurationFiles: () => applier.configurationFilesView() as unknown as JsonObject,
      affectedServices: (keys) => applier.affectedServices(keys),
      templatesFor: (keys) => applier.templatesFor(keys),
      history: () => configFiles.applyHistory(),
    },
    os: () => os,
    bootStatus,
    /**
     * Reboot shortly after answering: systemd starts stopping services (this daemon too) as soon
     * as the job is queued, so the caller would otherwise lose its answer. A failure to queue it
     * is logged (the API has already answered 204).
     */
    reboot: () => {
      o.log("reboot requested through the API");
      setTimeout(() => o.serviceManager.reboot().catch((e: Error) => o.log(`reboot failed: ${e.message}`)), 500);
    },
    updates: o.updates?.(() => store.liveSettings()),
    memory: () => memoryReport(),
  };
  ref.services = services;

  await runner.start();
  const first = runner.statuses()[CONFIG_FILES]!;
  applied = first.state === "ok" ? { ok: true } : { ok: false, error: first.error ?? "unknown error" };
  if (!applied.ok) o.log(`applying settings failed: ${applied.error}`);

  return {
    services,
    settings,
    runner,
    liveSettings: () => store.liveSettings(),
    bootStatus,
    reportBoot: (part, value) => void (extra[part] = value),
    stop: () => runner.stop(),
  };
}
