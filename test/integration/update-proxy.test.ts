// The update agent's HTTP GET (src/update/http.ts) through a real forward proxy: a small node:http
// proxy in this file (CONNECT tunnels and absolute-URI GETs, recording what it forwarded) in front
// of local HTTP and HTTPS servers. The targets are named updates.caisson.test, which never resolves
// (RFC 6761): only the proxy, which maps it to loopback, can reach them, so a success proves the
// request went through the proxy. Then no-proxy, proxies that refuse, close or stay silent, and
// the agent's refresh and prepare through settings.network.https-proxy.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { httpGet, HttpStatusError, type HttpOptions } from "../../src/update/http.js";
import { rotateRoot } from "../../src/repo/repository.js";
import { call, tempDir } from "../helpers/host.js";
import { env, run, succeeded } from "../helpers/update-fixture.js";

const run$ = promisify(execFile);
const NAME = "updates.caisson.test";

type Mode = "forward" | "refuse" | "close" | "silent";

interface Proxy {
  /** http://127.0.0.1:PORT */
  url: string;
  /** "CONNECT host:port" and "GET absolute-url", in order. */
  seen: string[];
  close: () => Promise<void>;
}

function listen(server: net.Server, host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/**
 * A forward proxy. `forward`: tunnels CONNECT and forwards absolute-URI GETs, resolving NAME to
 * `upstream` (other names as given); `refuse`: 403 to everything; `close`: hangs up at once;
 * `silent`: accepts and never answers.
 */
async function startProxy(mode: Mode, upstream = "127.0.0.1"): Promise<Proxy> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const track = (s: Socket) => (sockets.add(s), s.once("close", () => sockets.delete(s)));
  const addr = (host: string) => (host === NAME ? upstream : host);
  const server = http.createServer((req, res) => {
    if (mode === "silent") return;
    if (mode === "close") return req.socket.destroy();
    if (mode === "refuse") return res.writeHead(403, { "content-type": "text/plain" }).end("forbidden by proxy policy\n");
    let u: URL;
    try {
      u = new URL(req.url ?? "");
      if (u.protocol !== "http:") throw new Error("not http");
    } catch {
      return res.writeHead(400).end("absolute http:// URI expected\n");
    }
    seen.push(`${req.method} ${req.url}`);
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: u.host };
    delete headers["proxy-connection"];
    const up = http.request({ host: addr(u.hostname), port: u.port || 80, path: u.pathname + u.search, method: req.method, headers }, (ur) => {
      res.writeHead(ur.statusCode ?? 502, ur.headers);
      ur.pipe(res);
    });
    up.on("error", (e) => res.writeHead(502).end(`${e.message}\n`));
    up.end();
  });
  server.on("connection", track);
  server.on("connect", (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    if (mode === "silent") return;
    if (mode === "close") return client.destroy();
    if (mode === "refuse") return client.end("HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 26\r\nconnection: close\r\n\r\nforbidden by proxy policy\n");
    const m = /^([^:]+):(\d+)$/.exec(req.url ?? "");
    if (!m) return client.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
    seen.push(`CONNECT ${req.url}`);
    const up = track(net.connect(Number(m[2]), addr(m[1]!)));
    up.once("connect", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length) up.write(head);
      up.pipe(client).pipe(up);
    });
    up.on("error", () => client.destroy());
    client.on("error", () => up.destroy());
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

/** The target's handler: 200 "hello <path> via <host>" for /hello*, else 404; records each hit. */
function target(hits: string[]): http.RequestListener {
  return (req, res) => {
    hits.push(`${req.headers.host} ${req.url}`);
    if (!req.url?.startsWith("/hello")) return res.writeHead(404).end("not found\n");
    res.writeHead(200, { "content-type": "text/plain" }).end(`hello ${req.url} via ${req.headers.host}`);
  };
}

async function body(res: AsyncIterable<Buffer>): Promise<string> {
  let s = "";
  for await (const c of res) s += c.toString();
  return s;
}

let dir: string;
let httpPort: number;
let httpsPort: number;
let cert: string;
const httpHits: string[] = [];
const httpsHits: string[] = [];
const servers: net.Server[] = [];

before(async () => {
  dir = tempDir("caisson-proxy-");
  // A self-signed certificate for NAME (its own CA), made the way an operator would.
  cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  await run$("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${NAME}`, "-addext", `subjectAltName=DNS:${NAME}`]);
  // Both targets on 127.0.0.2 (loopback, but not one of the addresses that always bypass the proxy).
  const h = http.createServer(target(httpHits));
  const s = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, target(httpsHits));
  servers.push(h, s);
  httpPort = await listen(h, "127.0.0.2");
  httpsPort = await listen(s, "127.0.0.2");
});

after(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
});

async function withProxy(mode: Mode, fn: (p: Proxy) => Promise<void>): Promise<void> {
  const p = await startProxy(mode, "127.0.0.2");
  try {
    await fn(p);
  } finally {
    await p.close();
  }
}

/**
 * httpGet in a child process that trusts `cert` through NODE_EXTRA_CA_CERTS (read at start-up only;
 * httpGet takes no CA option): the body, or the error message.
 */
async function childGet(url: string, o: HttpOptions, ca?: string): Promise<{ body?: string; error?: string }> {
  const script = `
    const { httpGet } = await import(process.env.T_MODULE);
    try {
      const res = await httpGet(process.env.T_URL, JSON.parse(process.env.T_OPTS));
      let s = "";
      for await (const c of res) s += c;
      console.log(JSON.stringify({ body: s }));
    } catch (e) {
      console.log(JSON.stringify({ error: e.message }));
    }`;
  const { NODE_EXTRA_CA_CERTS: _drop, ...rest } = process.env;
  void _drop;
  const { stdout } = await run$(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...rest, T_MODULE: new URL("../../src/update/http.js", import.meta.url).href, T_URL: url, T_OPTS: JSON.stringify(o), ...(ca ? { NODE_EXTRA_CA_CERTS: ca } : {}) },
  });
  return JSON.parse(stdout) as { body?: string; error?: string };
}

test("http through the proxy: an absolute-URI GET the proxy forwards; the target's status comes back as HttpStatusError", async () => {
  await withProxy("forward", async (p) => {
    const url = `http://${NAME}:${httpPort}/hello?x=1`;
    assert.equal(await body(await httpGet(url, { proxy: p.url })), `hello /hello?x=1 via ${NAME}:${httpPort}`);
    assert.deepEqual(p.seen, [`GET ${url}`]);
    // A proxy given without a scheme is http://.
    assert.equal(await body(await httpGet(url, { proxy: p.url.replace("http://", "") })), `hello /hello?x=1 via ${NAME}:${httpPort}`);
    assert.equal(p.seen.length, 2);
    // tuf-js reads a 404 on <N+1>.root.json as "no newer root": it must stay an HttpStatusError.
    await assert.rejects(httpGet(`http://${NAME}:${httpPort}/missing`, { proxy: p.url }), (e) => e instanceof HttpStatusError && e.status === 404);
    assert.equal(p.seen.length, 3);
  });
});

test("https through the proxy: a CONNECT tunnel, TLS end to end, checked against the target's name", async () => {
  await withProxy("forward", async (p) => {
    const url = `https://${NAME}:${httpsPort}/hello`;
    const before = httpsHits.length;
    assert.deepEqual(await childGet(url, { proxy: p.url }, cert), { body: `hello /hello via ${NAME}:${httpsPort}` });
    assert.deepEqual(p.seen, [`CONNECT ${NAME}:${httpsPort}`]);
    assert.equal(httpsHits.length, before + 1);
    // Without trusting the certificate the tunnel opens but TLS fails: the proxy does not terminate it.
    await assert.rejects(httpGet(url, { proxy: p.url }), /self[- ]signed certificate/);
    assert.deepEqual(p.seen, [`CONNECT ${NAME}:${httpsPort}`, `CONNECT ${NAME}:${httpsPort}`]);
    assert.equal(httpsHits.length, before + 1);
  });
});

test("no-proxy: a matching host is fetched directly, the proxy sees nothing", async () => {
  await withProxy("forward", async (p) => {
    const url = `http://127.0.0.2:${httpPort}/hello`;
    const before = httpHits.length;
    await body(await httpGet(url, { proxy: p.url }));
    assert.deepEqual(p.seen, [`GET ${url}`], "without a no-proxy match, even an address goes through the proxy");
    for (const noProxy of [["127.0.0.2"], ["example.org", " 127.0.0.2:8080 "], ["*"]]) {
      assert.equal(await body(await httpGet(url, { proxy: p.url, noProxy })), `hello /hello via 127.0.0.2:${httpPort}`);
    }
    assert.equal(httpHits.length, before + 4);
    // A domain suffix bypasses too: the name is then looked up directly, and .test never resolves.
    for (const noProxy of [[".caisson.test"], ["caisson.test"], [NAME]]) {
      await assert.rejects(httpGet(`http://${NAME}:${httpPort}/hello`, { proxy: p.url, noProxy }), /ENOTFOUND|EAI_AGAIN/);
    }
    assert.equal(p.seen.length, 1);
  });
});

test("a proxy that refuses, hangs up, is not there or stays silent: a clear error naming the proxy", async () => {
  const https$ = `https://${NAME}:${httpsPort}/hello`;
  const http$ = `http://${NAME}:${httpPort}/hello`;
  await withProxy("refuse", async (p) => {
    const host = p.url.replace("http://", "");
    // Not an HttpStatusError: the proxy's 403 must not pass for the target's answer.
    await assert.rejects(httpGet(https$, { proxy: p.url }), (e: Error) => {
      assert.ok(!(e instanceof HttpStatusError));
      assert.match(e.message, new RegExp(`proxy ${host} refused CONNECT ${NAME}:${httpsPort}: HTTP 403`));
      return true;
    });
    // Plain http: the proxy's answer is the response.
    await assert.rejects(httpGet(http$, { proxy: p.url }), (e) => e instanceof HttpStatusError && e.status === 403);
  });
  await withProxy("close", async (p) => {
    const host = p.url.replace("http://", "");
    await assert.rejects(httpGet(https$, { proxy: p.url }), new RegExp(`GET ${https$} through proxy ${host}: .*ended before receiving CONNECT response`));
    await assert.rejects(httpGet(http$, { proxy: p.url }), new RegExp(`GET ${http$} through proxy ${host}: socket hang up`));
  });
  const gone = net.createServer();
  const port = await listen(gone);
  await new Promise((r) => gone.close(r));
  for (const url of [https$, http$]) {
    await assert.rejects(httpGet(url, { proxy: `http://127.0.0.1:${port}` }), new RegExp(`through proxy 127.0.0.1:${port}: .*ECONNREFUSED`));
  }
  await withProxy("silent", async (p) => {
    for (const url of [https$, http$]) {
      const t0 = Date.now();
      await assert.rejects(httpGet(url, { proxy: p.url, timeoutMs: 300 }), /no (answer|data) .*300 ms/);
      assert.ok(Date.now() - t0 < 5000);
    }
  });
});

test("the update agent refreshes and prepares through settings.network.https-proxy (rotated root included)", async () => {
  const e = await env();
  const p = await startProxy("forward", "127.0.0.1");
  try {
    // The repository, renamed to a name only the proxy resolves.
    const via = (u: string) => u.replace("127.0.0.1", NAME);
    const tx = "proxy";
    const patch = await call(e.t.socket, "PATCH", `/settings?tx=${tx}`, {
      network: { "https-proxy": p.url, "no-proxy": ["example.org"] },
      updates: { "metadata-base-url": via(e.repo.served.metadataUrl), "targets-base-url": via(e.repo.served.targetsUrl) },
    });
    assert.equal(patch.status, 204, patch.text);
    const commit = await call(e.t.socket, "POST", `/tx/commit_and_apply?tx=${tx}`);
    assert.equal(commit.status, 200, commit.text);

    let s = await run(e, "refresh");
    succeeded(s, "refresh");
    assert.equal(s.update_state, "Available");
    assert.ok(p.seen.some((x) => x.endsWith("/metadata/timestamp.json")), p.seen.join("\n"));

    // prepare caches the root chain (2.root.json) besides what tuf-js fetches: through the proxy too.
    await rotateRoot(e.repo.dir);
    p.seen.length = 0;
    s = await run(e, "prepare");
    succeeded(s, "prepare");
    assert.equal(s.update_state, "Staged");
    assert.ok(p.seen.filter((x) => x.endsWith("/metadata/2.root.json")).length >= 2, p.seen.join("\n"));
    assert.ok(p.seen.some((x) => /\/targets\/[0-9a-f]{64}\.[^/]*root[^/]*$/.test(x)), `the root image through the proxy:\n${p.seen.join("\n")}`);
    assert.ok(p.seen.every((x) => x.startsWith(`GET http://${NAME}:`)), p.seen.join("\n"));
  } finally {
    await p.close();
    await e.close();
  }
});
