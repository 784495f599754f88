// The API server: HTTP/1.1 on a Unix socket (mode 0660, group `api`, as Bottlerocket's), routes
// from routes.ts, JSON errors, a body size limit. Access control is the socket's permissions.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { chmodSync, chownSync, existsSync, readFileSync, unlinkSync, lstatSync } from "node:fs";
import { ApiError, errorBody, toApiError } from "./errors.js";
import { routeFor, type Request } from "./routes.js";
import type { Json } from "../settings/keys.js";
import type { Services } from "./services.js";
import { checkJsonTextDepth } from "../settings/limits.js";
import { answerClientError, applyLimits, DEFAULT_LIMITS, serverOptions, socketAnswers, type ServerLimits } from "./limits.js";

export const MAX_BODY_BYTES = 1024 * 1024;

/** The API's request handler, shared by the Unix socket server and the network (mTLS) server. */
export function apiRequestHandler(svc: Services, log: (msg: string) => void = () => {}): RequestListener {
  return (req, res) => {
    handle(svc, req, res, log).catch((e: unknown) => sendError(req, res, e, log));
  };
}

/**
 * Answer an error. The one place errors are answered, so every 5xx is logged here: a 5xx is our
 * failure (a bug, or the host's own trouble), never the client's, and must not go unseen.
 */
function sendError(req: IncomingMessage, res: ServerResponse, e: unknown, log: (msg: string) => void): void {
  const err = toApiError(e);
  if (err.status >= 500) {
    const stack = e instanceof Error && !(e instanceof ApiError) && e.stack ? `\n${e.stack}` : "";
    log(`${req.method} ${String(req.url).slice(0, 200)} answered ${err.status}: ${err.message}${stack}`);
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, err.status, errorBody(err));
}

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Bytes of `s` once its %XX escapes are decoded (as URLSearchParams decodes them) are UTF-8. */
function percentDecodedIsUtf8(s: string): boolean {
  if (!/%[89A-Fa-f]|[^ -~]/.test(s)) return true; // printable ASCII, no escaped byte over 0x7f
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
      bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(...Buffer.from(s[i]!, "utf8"));
  }
  try {
    UTF8.decode(Uint8Array.from(bytes));
    return true;
  } catch {
    return false;
  }
}

/**
 * The API server for the Unix socket, with the limits of limits.ts (headers within 10 s else 408,
 * idle connections closed, at most 64 connections by default; `limits` overrides, e.g. from the
 * environment for tests).
 */
export function createApiServer(svc: Services, log: (msg: string) => void = () => {}, limits: ServerLimits = DEFAULT_LIMITS): Server {
  const server = createServer(serverOptions(limits), apiRequestHandler(svc, log));
  applyLimits(server, limits, log);
  // Bytes that are not HTTP get a JSON error too, like every other bad request; a request that
  // does not arrive in time gets 408.
  server.on("clientError", answerClientError);
  return server;
}

async function handle(svc: Services, req: IncomingMessage, res: ServerResponse, log: (msg: string) => void): Promise<void> {
  let raw: Buffer;
  try {
    raw = await readBody(req);
  } catch (e) {
    // The client may still be sending: answer, then close the connection.
    res.setHeader("connection", "close");
    return sendError(req, res, e, log);
  }
  try {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      throw new ApiError(400, `malformed request target: ${String(req.url).slice(0, 100)}`);
    }
    // URLSearchParams would turn bytes that are not UTF-8 into U+FFFD: a key or transaction name
    // that is not what the client sent. Refuse them (in the path too).
    if (!percentDecodedIsUtf8(url.pathname + url.search)) throw new ApiError(400, "request target is not valid UTF-8 once percent-decoded");
    const route = routeFor(url.pathname, req.method ?? "GET");
    if (!route) throw new ApiError(404, `no such path: ${url.pathname}`);
    const handler = route.handler;
    if (!handler) {
      res.setHeader("allow", route.allowed.join(", "));
      throw new ApiError(405, `method ${req.method} not allowed on ${url.pathname}; allowed: ${route.allowed.join(", ")}`);
    }
    let parsed: { ok: Json | undefined } | { error: ApiError } | undefined;
    const request: Request = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      body: () => {
        parsed ??= parseBody(raw);
        if ("error" in parsed) throw parsed.error;
        return parsed.ok;
      },
    };
    const out = await handler(svc, request);
    if (out === undefined) return send(res, 204);
    if (typeof out === "object" && out !== null && "raw" in out && typeof out.raw === "string" && Object.keys(out).length === 1) {
      return send(res, 200, out.raw);
    }
    send(res, 200, JSON.stringify(out));
  } catch (e) {
    sendError(req, res, e, log);
  }
}

/** A request body as JSON: UTF-8 (not repaired), nested at most MAX_DEPTH levels (checked before parsing). */
function parseBody(raw: Buffer): { ok: Json | undefined } | { error: ApiError } {
  if (raw.length === 0) return { ok: undefined };
  let text: string;
  try {
    text = UTF8.decode(raw);
  } catch {
    return { error: new ApiError(400, "request body is not valid UTF-8") };
  }
  try {
    checkJsonTextDepth(text, "the request body");
    return { ok: JSON.parse(text) as Json };
  } catch (e) {
    const err = toApiError(e);
    return { error: err.status < 500 ? err : new ApiError(400, `malformed JSON body: ${(e as Error).message}`) };
  }
}

function send(res: ServerResponse, status: number, body?: string): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > MAX_BODY_BYTES) {
      req.resume();
      return reject(new ApiError(413, `request body of ${declared} bytes is over the limit of ${MAX_BODY_BYTES} bytes`));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) over = true;
      else chunks.push(c);
    });
    req.on("end", () => (over ? reject(new ApiError(413, `request body is over the limit of ${MAX_BODY_BYTES} bytes`)) : resolve(Buffer.concat(chunks))));
    req.on("error", reject);
  });
}

/** Group id of `name` in /etc/group, if it exists. */
export function groupId(name: string, groupFile = "/etc/group"): number | undefined {
  if (!existsSync(groupFile)) return undefined;
  for (const line of readFileSync(groupFile, "utf8").split("\n")) {
    const [n, , gid] = line.split(":");
    if (n === name && gid !== undefined) return Number(gid);
  }
  return undefined;
}

/**
 * Listen on a Unix socket, replacing a stale one (nothing answers on it), then give it mode 0660
 * and the group `gid`. A socket something still answers on is not taken over: that is an error.
 */
export async function listenOnSocket(server: Server, path: string, gid?: number): Promise<void> {
  if (existsSync(path) && lstatSync(path).isSocket()) {
    if (await socketAnswers(path)) throw new Error(`another server answers on ${path}: refusing to take its socket over`);
    unlinkSync(path);
  }
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      chmodSync(path, 0o660);
      if (gid !== undefined) chownSync(path, -1, gid);
      resolve();
    });
  });
}
