// The API on the network, over mutual TLS (as Talos' API): the same routes as the Unix socket,
// for clients holding a certificate the configured client CA signed. Off unless a setting turns it
// on (the dev variant's default), and only with certificates given in settings.api.network.
import { createServer, type Server } from "node:https";
import type { RequestListener } from "node:http";
import type { JsonObject } from "../settings/keys.js";
import { asSettings, DEFAULT_NETWORK_API_PORT } from "../settings/schema.js";
import { answerClientError, applyLimits, DEFAULT_LIMITS, serverOptions, stopServer, type ServerLimits } from "./limits.js";
import type { Controller } from "../controller/runner.js";

export interface NetworkApiConfig {
  port: number;
  cert: string;
  key: string;
  ca: string;
}

/** The network API's configuration from settings, or why it is off. */
export function networkApiConfig(settings: JsonObject): NetworkApiConfig | string {
  const n = asSettings(settings).api?.network ?? {};
  if (n.enabled !== true) return "off (settings.api.network.enabled is false)";
  const cert = n["server-certificate"];
  const key = n["server-key"];
  const ca = n["client-ca"];
  const missing = Object.entries({ "server-certificate": cert, "server-key": key, "client-ca": ca }).filter(([, v]) => typeof v !== "string").map(([k]) => k);
  if (cert === undefined || key === undefined || ca === undefined) return `off: settings.api.network.${missing.join(", ")} not set`;
  const b64 = (v: string) => Buffer.from(v, "base64").toString("utf8");
  return { port: n.port ?? DEFAULT_NETWORK_API_PORT, cert: b64(cert), key: b64(key), ca: b64(ca) };
}

/** The network API server, with the same limits as the Unix socket's (limits.ts). */
export function createNetworkApiServer(c: NetworkApiConfig, handler: RequestListener, limits: ServerLimits = DEFAULT_LIMITS, log: (msg: string) => void = () => {}): Server {
  // requestCert + rejectUnauthorized: a client without a certificate from `ca` never gets an HTTP answer.
  const server = createServer(
    { cert: c.cert, key: c.key, ca: c.ca, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.2", ...serverOptions(limits),
      // A TLS handshake that never completes holds a connection too: it gets the headers' time.
      handshakeTimeout: limits.headersTimeoutMs },
    handler,
  );
  applyLimits(server, limits, log);
  server.on("clientError", answerClientError);
  return server;
}

/**
 * The network API listener as a controller: owns the mTLS server on settings.api.network.port.
 * A change of settings.api.* makes a new server before the old one closes, so certificates that
 * do not work leave the old listener serving (the run fails, is retried, and says why). Its
 * failure only degrades the host: the Unix socket stays the way in, and a boot must not roll
 * back for a certificate.
 */
export class NetworkApiController implements Controller {
  readonly name = "network-api";
  readonly inputs: readonly string[] = ["settings.api"];
  readonly output = "the network API listener (mutual TLS) on settings.api.network.port";
  readonly failure = "degrades";
  private server: Server | undefined;
  private current: string | undefined;

  constructor(
    private readonly o: {
      /** The API's request handler (the same routes as the Unix socket). */
      handler: () => RequestListener;
      limits: ServerLimits;
      log: (msg: string) => void;
      /** Where to listen: all addresses on the image; loopback in tests. */
      host?: string;
      /** The address shown in the status. */
      address?: () => string | undefined;
    },
  ) {}

  async reconcile(ctx: { settings: Record<string, unknown> }) {
    const cfg = networkApiConfig(ctx.settings as JsonObject);
    const key = typeof cfg === "string" ? cfg : JSON.stringify(cfg);
    if (key === this.current && (typeof cfg === "string" || this.server?.listening)) return { detail: this.describe(cfg) };
    let next: Server | undefined;
    if (typeof cfg !== "string") {
      try {
        next = createNetworkApiServer(cfg, this.o.handler(), this.o.limits, this.o.log);
      } catch (e) {
        throw new Error(`not changed: the certificates in settings.api.network do not work (${(e as Error).message})`);
      }
      await new Promise<void>((resolve, reject) => {
        next!.once("error", reject);
        next!.listen(cfg.port, this.o.host ?? "0.0.0.0", () => {
          next!.off("error", reject);
          resolve();
        });
      }).catch((e: Error) => {
        throw new Error(`cannot listen on port ${cfg.port}: ${e.message}`);
      });
      next.on("error", (e) => this.o.log(`network API: ${e.message}`));
    }
    const old = this.server;
    this.server = next;
    this.current = key;
    if (old) void stopServer(old, this.o.limits.shutdownGraceMs);
    return { detail: this.describe(cfg) };
  }

  private describe(cfg: NetworkApiConfig | string): string {
    return typeof cfg === "string" ? cfg : `https://${this.o.address?.() ?? "0.0.0.0"}:${cfg.port} (mutual TLS)`;
  }

  async stop(): Promise<void> {
    if (this.server) await stopServer(this.server, this.o.limits.shutdownGraceMs);
    this.server = undefined;
  }
}
