// A static file server for a repository's published tree (DIR/repository), enough for a test
// client or a VM on QEMU user networking (which reaches the host's loopback as 10.0.2.2).
// Loopback only, GET/HEAD only, flat names only: nothing outside metadata/ and targets/ is
// reachable, whatever the request path.
import { createReadStream, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join, resolve } from "node:path";

export interface ServedRepository {
  server: Server;
  /** settings.updates.metadata-base-url */
  metadataUrl: string;
  /** settings.updates.targets-base-url */
  targetsUrl: string;
  close: () => Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
const NAME = /^[A-Za-z0-9_][A-Za-z0-9._+-]*$/;

export function serveRepository(dir: string, port = 0, host = "127.0.0.1"): Promise<ServedRepository> {
  if (!LOOPBACK.has(host)) return Promise.reject(new Error(`serveRepository listens on loopback only (127.0.0.1, ::1, localhost), not ${host}`));
  const published = join(resolve(dir), "repository");
  const server = createServer((req, res) => {
    const send = (status: number, text: string) => {
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "content-length": Buffer.byteLength(text) });
      res.end(req.method === "HEAD" ? undefined : text);
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(405, "method not allowed\n");
    }
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    } catch {
      return send(400, "bad request\n");
    }
    const m = /^\/(metadata|targets)\/([^/]+)$/.exec(path);
    if (!m || !NAME.test(m[2]!)) return send(404, "not found\n");
    const file = join(published, m[1]!, m[2]!);
    let size: number;
    try {
      const st = statSync(file);
      if (!st.isFile()) return send(404, "not found\n");
      size = st.size;
    } catch {
      return send(404, "not found\n");
    }
    res.writeHead(200, {
      "content-type": m[2]!.endsWith(".json") ? "application/json" : "application/octet-stream",
      "content-length": size,
      // Metadata changes under the same name (timestamp.json); targets never do.
      "cache-control": m[1] === "metadata" ? "no-cache" : "public, max-age=31536000, immutable",
    });
    if (req.method === "HEAD") return res.end();
    createReadStream(file)
      .on("error", () => res.destroy())
      .pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      const a = server.address() as AddressInfo;
      const base = `http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`;
      ok({
        server,
        metadataUrl: `${base}/metadata`,
        targetsUrl: `${base}/targets`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
