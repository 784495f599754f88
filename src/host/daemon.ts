// The resident host daemon — management plane plus API servers — on the image (root "/",
// systemctl, network API, health gate) or in workstation mode (any directory as
// the root, restarts recorded). Same code path for both but for those seams.
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { primaryAddress } from "../settings/generators.js";
import { startHost, type RunningHost } from "./host.js";
import { CONFIG_FILES } from "./settings-service.js";
import { runBootstrapCommands } from "./bootstrap.js";

/** The transaction that turns a `once` bootstrap command off after it ran. */
const BOOTSTRAP_TX = "caisson-bootstrap";
import { apiRequestHandler, createApiServer, groupId, listenOnSocket } from "../api/server.js";
import { limitsFromEnv, socketAnswers, stopServer } from "../api/limits.js";
import { acquirePidLock, LockedError } from "../fsutil/pidfile.js";
import { RecordingServiceManager, SystemctlServiceManager, type ServiceManager } from "../applier/service-manager.js";
import type { UserDataSource } from "../userdata/userdata.js";
import { imageDataDir, packageRoot } from "../fsutil/package-root.js";
import type { Variant } from "../settings/schema.js";
import { evaluateHealth } from "./health.js";
import type { BootInfo, BootStatus } from "../protocol/types.js";
import { UpdateAgent } from "../update/agent.js";
import { hostPaths } from "../fsutil/paths.js";

export interface DaemonOptions {
  root: string;
  variant: Variant;
  version: string;
  userDataSources: UserDataSource[];
  /** The Unix socket to bind (mode 0660, group `gid` or the `api` group). */
  listen: { path: string; gid?: number };
  serviceManager: "systemctl" | "record";
  /** On the image: what booted, so the daemon can judge and report health. */
  boot?: BootInfo;
  /** On the image: what growing the data partition at start did. */
  dataPartition?: BootStatus["data-partition"];
  /** Where the one-line status goes (the console on the image). */
  announce?: (line: string) => void;
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}


/**
 * One daemon per root and per socket: a second one would take the socket over and write the same
 * datastore. A live daemon answering on the socket, or holding `<root>/run/caisson/host.pid`
 * (pid and start time), makes this one stop with an error before it touches anything.
 */
async function claimInstance(o: DaemonOptions, log: (msg: string) => void): Promise<() => void> {
  if (await socketAnswers(o.listen.path)) throw new Error(`another server answers on ${o.listen.path}: is a caisson host already running? Not starting a second one`);
  const lock = join(o.root, hostPaths.pidLock);
  try {
    return acquirePidLock(lock);
  } catch (e) {
    if (e instanceof LockedError) throw new Error(`a caisson host (pid ${e.pid}) already runs on the root ${o.root} (${lock}): not starting a second one`);
    // Cannot write it at all (permissions, a policy, a read-only /run): the host must still come
    // up; the socket check above is then the only guard.
    log(`cannot take the pid lock ${lock} (${(e as Error).message}); only the socket guards against a second daemon`);
    return () => {};
  }
}

export async function runDaemon(o: DaemonOptions): Promise<void> {
  const log = (msg: string) => process.stderr.write(`caisson-host: ${msg}\n`);
  const limits = limitsFromEnv();
  const release = await claimInstance(o, log);
  process.once("exit", release);
  const serviceManager: ServiceManager =
    o.serviceManager === "systemctl" ? new SystemctlServiceManager() : new RecordingServiceManager(join(o.root, hostPaths.restartsLog));

  const host: RunningHost = await startHost({
    root: o.root,
    variant: o.variant,
    version: o.version,
    imageDir: imageDataDir(),
    serviceManager,
    userDataSources: o.userDataSources,
    log,
    // On the image the network API listens on every address; a workstation host only on loopback.
    network: { limits, bind: o.root === "/" ? "0.0.0.0" : "127.0.0.1", handler: (svc) => apiRequestHandler(svc, log) },
    // The update agent reads settings.updates.* live at each command.
    updates: (settings) => new UpdateAgent({ root: o.root, variant: o.variant, version: o.version, settings, log }),
  });
  const server = createApiServer(host.services, log, limits);
  await listenOnSocket(server, o.listen.path, o.listen.gid ?? groupId("api"));

  // Bootstrap commands talk to the API like any client: after it listens, before the verdict.
  const bootstrap = await runBootstrapCommands({
    settings: () => host.liveSettings(),
    socket: o.listen.path,
    turnOff: async (name) => {
      host.settings.patch(BOOTSTRAP_TX, { "bootstrap-commands": { [name]: { mode: "off" } } });
      await host.settings.commit(BOOTSTRAP_TX);
    },
    log,
  });
  if (bootstrap.length) host.reportBoot("bootstrap-commands", bootstrap);

  const status = host.bootStatus();
  const ud = status["user-data"];
  const network = status.controllers["network-api"];
  const summary =
    `API ready on ${o.listen.path}; network API ${network?.state === "failed" ? `failed: ${network.error}` : network?.detail ?? "off"}; variant ${o.variant}; ` +
    `user data ${ud.state}${ud.error ? ` (${ud.error.message})` : ""}; settings ${status["settings-applied"] ? "applied" : `NOT applied: ${status["apply-error"]}`}` +
    (bootstrap.length ? `; bootstrap commands: ${bootstrap.map((b) => `${b.name} ${b.state}`).join(", ")}` : "") +
    (status.datastore.state === "ok" ? "" : `; datastore DEGRADED, on ${status.datastore.state === "last-good" ? "its last good copy" : "defaults"}: ${status.datastore.error}`);
  process.stdout.write(`${summary}\n`);

  if (o.boot) {
    const boot = o.boot;
    host.reportBoot("boot", boot);
    if (o.dataPartition !== undefined) host.reportBoot("data-partition", o.dataPartition);
    host.reportBoot("health", { state: "checking", checks: [], degraded: false });
    // The configuration files are the `settings` check; other fatal controllers get their own.
    const fatalControllers = host.runner.fatalFailures().filter((c) => c.name !== CONFIG_FILES);
    void evaluateHealth({ settingsApplied: status["settings-applied"], applyError: status["apply-error"], migration: status.migration, datastore: status.datastore, fatalControllers, bootstrap, boot }).then((health) => {
      host.reportBoot("health", health);
      const failed = health.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail}`);
      o.announce?.(
        `Caisson ${o.version} (${o.variant}) slot ${boot.slot ?? "?"} at ${primaryAddress() ?? "no address"}: ` +
          (health.state === "healthy" ? "healthy, API up" : `${health.degraded ? "DEGRADED" : "UNHEALTHY"} (${failed.join("; ")}), API up`),
      );
    });
  }

  // Stop within shutdownGraceMs whatever clients do: no new connections, idle ones closed at once,
  // in-flight requests given the grace, then every connection cut and the process gone (timers of
  // the update agent and others must not keep it alive either).
  const stop = () => {
    log(`stopping: API closed, exiting within ${limits.shutdownGraceMs} ms`);
    const deadline = setTimeout(() => process.exit(0), limits.shutdownGraceMs + 500);
    deadline.unref();
    void Promise.all([stopServer(server, limits.shutdownGraceMs), host.stop()]).then(() => process.exit(0));
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

/** Workstation mode: `caisson host --root DIR --socket PATH`. */
export function workstationDaemon(o: { root: string; socket: string; variant: Variant; userData: UserDataSource[]; socketGid?: number; serviceManager: "systemctl" | "record"; version?: string }): Promise<void> {
  return runDaemon({
    root: o.root,
    variant: o.variant,
    // A workstation host can play any version (update tests go from one to the next).
    version: o.version ?? packageVersion(),
    userDataSources: o.userData,
    listen: { path: o.socket, gid: o.socketGid },
    serviceManager: o.serviceManager,
  });
}
