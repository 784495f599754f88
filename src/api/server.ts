// The API server: HTTP/1.1 on a Unix socket (mode 0660, group `api`, as Bottlerocket's), routes
// from routes.ts, JSON errors, a body size limit. Access control is the socket's permissions.
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import { chmodSync, chownSync, existsSync, readFileSync, unlinkSync, lstatSync } from "node:fs";
import { ApiError, errorBody, toApiError } from "./errors.js";
import { routes, type Request } from "./routes.js";
import type { Json } from "../settings/keys.js";
import type { Host } from "../host/host.js";

export const MAX_BODY_BYTES = 1024 * 1024;

/** The API's request handler, shared by the Unix socket server and the network (mTLS) server. */
export function apiRequestHandler(host: Host, log: (msg: string) => void = () => {}): RequestListener {
  return (req, res) => {
    handle(host, req, res).catch((e: unknown) => {
      log(`request handling failed: ${(e as Error).message}`);
      if (!res.headersSent) send(res, 500, errorBody(new ApiError(500, "internal error")));
    });
  };
}

export function createApiServer(host: Host, log: (msg: string) => void = () => {}): Server {
  const server = createServer(apiRequestHandler(host, log));
  // Bytes that are not HTTP get a JSON error too, like every other bad request.
  server.on("clientError", (err, socket) => {
    if (!socket.writable) return socket.destroy();
    const body = errorBody(new ApiError(400, `malformed HTTP request: ${err.message}`));
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
  });
  return server;
}

async function handle(host: Host, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let raw: Buffer;
  try {
    raw = await readBody(req);
  } catch (e) {
    const err = toApiError(e);
    // The client may still be sending: answer, then close the connection.
    res.setHeader("connection", "close");
    return send(res, err.status, errorBody(err));
  }
  try {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      throw new ApiError(400, `malformed request target: ${String(req.url).slice(0, 100)}`);
    }
    const route = routes[url.pathname];
    if (!route) throw new ApiError(404, `no such path: ${url.pathname}`);
    const handler = route[req.method ?? "GET"];
    if (!handler) {
      res.setHeader("allow", Object.keys(route).join(", "));
      throw new ApiError(405, `method ${req.method} not allowed on ${url.pathname}; allowed: ${Object.keys(route).join(", ")}`);
    }
    let parsed: Json | undefined;
    let parsedOnce = false;
    const request: Request = {
      method: req.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      body: () => {
        if (!parsedOnce) {
          parsedOnce = true;
          if (raw.length === 0) return (parsed = undefined);
          try {
            parsed = JSON.parse(raw.toString("utf8")) as Json;
          } catch (e) {
            throw new ApiError(400, `malformed JSON body: ${(e as Error).message}`);
          }
        }
        return parsed;
      },
    };
    const out = await handler(host, request);
    if (out === undefined) return send(res, 204);
    if (typeof out === "object" && out !== null && "raw" in out && typeof out.raw === "string" && Object.keys(out).length === 1) {
      return send(res, 200, out.raw);
    }
    send(res, 200, JSON.stringify(out));
  } catch (e) {
    const err = toApiError(e);
    send(res, err.status, errorBody(err));
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

/** Listen on a Unix socket, replacing a stale one, then give it mode 0660 and the group `gid`. */
export function listenOnSocket(server: Server, path: string, gid?: number): Promise<void> {
  if (existsSync(path) && lstatSync(path).isSocket()) unlinkSync(path);
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
