// `caisson host`: the resident host daemon — management plane plus API server — on the image
// (root "/", systemctl) or in workstation mode (any directory as the root, restarts recorded).
import { join } from "node:path";
import { readFileSync } from "node:fs";
import { Host } from "./host.js";
import { createApiServer, groupId, listenOnSocket } from "../api/server.js";
import { RecordingServiceManager, SystemctlServiceManager } from "../applier/service-manager.js";
import { fileSource } from "../userdata/userdata.js";
import { imageDataDir, packageRoot } from "../fsutil/package-root.js";
import type { Variant } from "../settings/schema.js";

export interface DaemonOptions {
  root: string;
  socket: string;
  variant: Variant;
  userData: string[];
  socketGid?: number;
  serviceManager: "systemctl" | "record";
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), "package.json"), "utf8")) as { version: string }).version;
}

export async function runDaemon(o: DaemonOptions): Promise<void> {
  const log = (msg: string) => process.stderr.write(`caisson-host: ${msg}\n`);
  const serviceManager =
    o.serviceManager === "systemctl" ? new SystemctlServiceManager() : new RecordingServiceManager(join(o.root, "run/caisson/restarts.log"));
  const host = await Host.start({
    root: o.root,
    variant: o.variant,
    version: packageVersion(),
    imageDir: imageDataDir(),
    serviceManager,
    // Ordered: the data partition's local file, then files given on the command line (later wins).
    userDataSources: [fileSource(join(o.root, "var/lib/caisson/user-data.toml")), ...o.userData.map(fileSource)],
    log,
  });
  const server = createApiServer(host, log);
  await listenOnSocket(server, o.socket, o.socketGid ?? groupId("api"));
  const status = host.bootStatus();
  const ud = status["user-data"];
  process.stdout.write(
    `API ready on ${o.socket} (variant ${o.variant}; user data ${ud.state}${ud.error ? `: ${ud.error.message}` : ""}; settings ${status["settings-applied"] ? "applied" : "NOT applied"})\n`,
  );
  const stop = () => server.close(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
