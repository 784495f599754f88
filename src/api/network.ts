// The API on the network, over mutual TLS (as Talos' API): the same routes as the Unix socket,
// for clients holding a certificate the configured client CA signed. Off unless a setting turns it
// on (the dev variant's default), and only with certificates given in settings.api.network.
import { createServer, type Server } from "node:https";
import type { RequestListener } from "node:http";
import type { JsonObject } from "../settings/keys.js";
import { getPath } from "../settings/keys.js";
import { DEFAULT_NETWORK_API_PORT } from "../settings/schema.js";
import { answerClientError, applyLimits, DEFAULT_LIMITS, serverOptions, type ServerLimits } from "./limits.js";

export interface NetworkApiConfig {
  port: number;
  cert: string;
  key: string;
  ca: string;
}

/** The network API's configuration from settings, or why it is off. */
export function networkApiConfig(settings: JsonObject): NetworkApiConfig | string {
  const n = (getPath(settings, ["api", "network"]) ?? {}) as Record<string, unknown>;
  if (n.enabled !== true) return "off (settings.api.network.enabled is false)";
  const missing = ["server-certificate", "server-key", "client-ca"].filter((k) => typeof n[k] !== "string");
  if (missing.length) return `off: settings.api.network.${missing.join(", ")} not set`;
  const b64 = (k: string) => Buffer.from(n[k] as string, "base64").toString("utf8");
  return { port: (n.port as number | undefined) ?? DEFAULT_NETWORK_API_PORT, cert: b64("server-certificate"), key: b64("server-key"), ca: b64("client-ca") };
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
