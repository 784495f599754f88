// Test helpers: a real host (production Host + API server) on a Unix socket in a temp directory,
// and a tiny HTTP client for it.
import { request as httpRequest } from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Server } from "node:http";
import { startHost as startRunningHost, type RunningHost } from "../../src/host/host.js";
import { apiRequestHandler, createApiServer, listenOnSocket } from "../../src/api/server.js";
import { DEFAULT_LIMITS } from "../../src/api/limits.js";
import type { Services } from "../../src/api/services.js";
import { RecordingServiceManager } from "../../src/applier/service-manager.js";
import { fileSource } from "../../src/userdata/userdata.js";
import { imageDataDir } from "../../src/fsutil/package-root.js";
import type { Variant } from "../../src/settings/schema.js";

export interface Response {
  status: number;
  text: string;
  json: () => unknown;
}

/** A request on the socket; a Buffer body is sent as raw bytes (e.g. not UTF-8), an object as JSON. */
export function call(socket: string, method: string, path: string, body?: string | object | Buffer): Promise<Response> {
  const data = body === undefined ? undefined : typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const headers = data === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(data) };
    const req = httpRequest({ socketPath: socket, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, text, json: () => JSON.parse(text) as unknown });
      });
    });
    req.on("error", reject);
    if (data) req.write(data);
    req.end();
  });
}

export interface TestHost {
  host: RunningHost;
  server: Server;
  socket: string;
  root: string;
  logs: string[];
  restarts: RecordingServiceManager;
  stop: () => Promise<void>;
}

export function tempDir(prefix = "caisson-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Start a host in workstation mode. `userData` is TOML text (or bytes) written to a file source. */
export async function startHost(opts: { root?: string; variant?: Variant; userData?: string | Buffer; network?: boolean } = {}): Promise<TestHost> {
  const base = opts.root ? dirname(opts.root) : tempDir();
  const root = opts.root ?? join(base, "root");
  const logs: string[] = [];
  const restarts = new RecordingServiceManager();
  const sources = [];
  if (opts.userData !== undefined) {
    const f = join(base, `user-data-${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(f, opts.userData);
    sources.push(fileSource(f));
  }
  const host = await startRunningHost({
    root,
    variant: opts.variant ?? "dev",
    version: "0.1.0",
    imageDir: imageDataDir(),
    serviceManager: restarts,
    userDataSources: sources,
    log: (m) => logs.push(m),
    // The network API controller, on loopback, when a test needs it.
    ...(opts.network ? { network: { limits: DEFAULT_LIMITS, bind: "127.0.0.1", handler: (svc: Services) => apiRequestHandler(svc, (m) => logs.push(m)) } } : {}),
  });
  const server = createApiServer(host.services, (m) => logs.push(m));
  const socket = join(base, `api-${Math.random().toString(36).slice(2)}.sock`);
  await listenOnSocket(server, socket);
  return { host, server, socket, root, logs, restarts, stop: async () => (await host.stop(), await new Promise<void>((r) => server.close(() => r()))) };
}
