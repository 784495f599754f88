// Limits of both API servers (the Unix socket and the network mTLS one), so no client can hold the
// daemon: time to send the headers (408 after it), time for the whole request, idle connections
// closed, a cap on open connections (one over it is refused at once), and how long a stop waits.
// Each has an environment override (milliseconds or a count), for tests.
import type { Server as HttpServer } from "node:http";
import { connect, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { ApiError, errorBody } from "./errors.js";

export interface ServerLimits {
  /** A request's headers must arrive within this (else 408 and the connection is closed). */
  headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this (else 408). */
  requestTimeoutMs: number;
  /** A kept-alive connection with no request for this long is closed. */
  keepAliveTimeoutMs: number;
  /** A connection that sends nothing at all (no request in flight) is closed after this. */
  idleTimeoutMs: number;
  /** Connections open at once; one over it is closed as soon as it is accepted. */
  maxConnections: number;
  /** On SIGTERM: how long in-flight requests get before every connection is cut and the process exits. */
  shutdownGraceMs: number;
}

export const DEFAULT_LIMITS: ServerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 30_000,
  maxConnections: 64,
  shutdownGraceMs: 3_000,
};

const ENV: Record<keyof ServerLimits, string> = {
  headersTimeoutMs: "CAISSON_API_HEADERS_TIMEOUT_MS",
  requestTimeoutMs: "CAISSON_API_REQUEST_TIMEOUT_MS",
  keepAliveTimeoutMs: "CAISSON_API_KEEPALIVE_TIMEOUT_MS",
  idleTimeoutMs: "CAISSON_API_IDLE_TIMEOUT_MS",
  maxConnections: "CAISSON_API_MAX_CONNECTIONS",
  shutdownGraceMs: "CAISSON_SHUTDOWN_GRACE_MS",
};

/** The defaults with any valid environment override (a positive integer) applied. */
export function limitsFromEnv(env: NodeJS.ProcessEnv = process.env): ServerLimits {
  const out = { ...DEFAULT_LIMITS };
  for (const k of Object.keys(ENV) as (keyof ServerLimits)[]) {
    const v = env[ENV[k]];
    if (v === undefined) continue;
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${ENV[k]}=${v}: expected a positive integer`);
    out[k] = n;
  }
  // Node refuses a headers timeout above the request timeout.
  out.headersTimeoutMs = Math.min(out.headersTimeoutMs, out.requestTimeoutMs);
  return out;
}

/** Options for http.createServer / https.createServer that only take effect at creation. */
export function serverOptions(l: ServerLimits): { headersTimeout: number; requestTimeout: number; keepAliveTimeout: number; connectionsCheckingInterval: number } {
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    // How often Node looks for requests over their time (default 30 s, so a 10 s limit would be ~40 s).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(l.headersTimeoutMs / 4))),
  };
}

/** Apply what can be set after creation: the connection cap and the idle-connection timeout. */
export function applyLimits(server: HttpServer, l: ServerLimits, log: (msg: string) => void): void {
  server.maxConnections = l.maxConnections;
  let lastDropLog = 0;
  let dropped = 0;
  server.on("drop", () => {
    dropped++;
    if (Date.now() - lastDropLog < 10_000) return;
    lastDropLog = Date.now();
    log(`refused ${dropped} connection(s): ${l.maxConnections} are open (the limit)`);
    dropped = 0;
  });
  // A connection with a request in flight is not idle however long its handler takes; one without
  // (nothing sent yet, or between requests) is closed after idleTimeoutMs.
  const busy = new WeakSet<Socket>();
  server.on("request", (req, res) => {
    busy.add(req.socket);
    res.once("close", () => busy.delete(req.socket));
  });
  server.timeout = l.idleTimeoutMs;
  server.on("timeout", (socket: Socket) => {
    if (!busy.has(socket)) socket.destroy();
  });
}

/** An HTTP status for a client error of Node's parser or timers. */
export function clientErrorStatus(err: NodeJS.ErrnoException): { status: number; reason: string } {
  if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") return { status: 408, reason: "Request Timeout" };
  if (err.code === "HPE_HEADER_OVERFLOW") return { status: 431, reason: "Request Header Fields Too Large" };
  return { status: 400, reason: "Bad Request" };
}

/**
 * Stop a server within `graceMs` whatever its clients do: no new connections, idle ones closed now,
 * the rest cut at the deadline. Resolves when the server has closed.
 */
export function stopServer(server: HttpServer, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** Answer a client error (bad bytes, a timeout) with a JSON body and close the connection. */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable) return void socket.destroy();
  const { status, reason } = clientErrorStatus(err);
  const message = status === 408 ? "the request did not arrive in time" : `malformed HTTP request: ${err.message}`;
  const body = errorBody(new ApiError(status, message));
  socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** Does something accept connections on the Unix socket `path`? (Gives up after `timeoutMs`.) */
export function socketAnswers(path: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(true)); // accepted but silent: something holds it
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}
