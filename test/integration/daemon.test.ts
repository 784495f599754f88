// The `caisson host` process against clients that do not play along (issue 8): SIGTERM stops it
// within seconds whatever a client holds, a client slow to send its headers gets 408, connections
// idle or over the cap are closed, and a second daemon on the same socket or root refuses to start.
// Real daemon processes; the limits are shortened through their environment overrides.
import { test } from "node:test";
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { AddressInfo } from "node:net";
import { call, tempDir } from "../helpers/host.js";
import { makeInstanceTls } from "../../src/launch/tls.js";
import { createNetworkApiServer } from "../../src/api/network.js";
import { DEFAULT_LIMITS, stopServer } from "../../src/api/limits.js";
import { daemon, kill, ready, sleep, type Daemon } from "../helpers/daemon.js";

/** A connection once `ready` fires, with everything it receives and whether it was closed. */
function watched<S extends Socket>(s: S, ready: "connect" | "secureConnect"): Promise<{ s: S; got: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    let got = "";
    s.on("data", (c: Buffer) => (got += c.toString()));
    s.on("error", () => {});
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    s.once(ready, () => resolve({ s, got: () => got, closed }));
    s.once("error", reject);
  });
}

/** A raw connection to the Unix socket. */
const raw = (socket: string) => watched(connect(socket), "connect");

/** Resolves with the time it took, or rejects after `ms`. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: not within ${ms} ms`)))]);
}

function setup() {
  const dir = tempDir("caisson-daemon-");
  return { root: join(dir, "root"), socket: join(dir, "api.sock") };
}

test("SIGTERM stops the daemon within seconds while a client holds a connection mid-request", async () => {
  const { root, socket } = setup();
  // Long header timeout: what ends the held connection must be the shutdown, not the timeout.
  const d = daemon(root, socket, { CAISSON_API_HEADERS_TIMEOUT_MS: "60000", CAISSON_API_IDLE_TIMEOUT_MS: "60000" });
  try {
    await ready(d);
    const held = await raw(socket);
    held.s.write("GET /settings HTTP/1.1\r\nhost: x\r\n"); // headers never finished
    const idle = await raw(socket);
    idle.s.write("GET /os HTTP/1.1\r\nhost: x\r\n\r\n"); // answered, then kept alive
    await sleep(300);
    assert.match(idle.got(), /^HTTP\/1\.1 200/);
    const t0 = Date.now();
    d.p.kill("SIGTERM");
    const code = await within(d.exited, 6_000, "exit after SIGTERM");
    assert.equal(code, 0);
    assert.ok(Date.now() - t0 < 6_000);
    await within(held.closed, 1_000, "held connection closed");
    assert.ok(!existsSync(join(root, "run/caisson/host.pid")), "the pid lock is released");
  } finally {
    await kill(d);
  }
});

test("headers sent too slowly get 408 within the headers timeout; a silent connection is closed when idle", async () => {
  const { root, socket } = setup();
  const d = daemon(root, socket, { CAISSON_API_HEADERS_TIMEOUT_MS: "1000", CAISSON_API_REQUEST_TIMEOUT_MS: "2000", CAISSON_API_IDLE_TIMEOUT_MS: "600" });
  try {
    await ready(d);
    const slow = await raw(socket);
    slow.s.write("GET /settings HTTP/1.1\r\n");
    const t = setInterval(() => slow.s.write("x-slow: 1\r\n"), 200); // trickles, never finishes
    try {
      await within(slow.closed, 4_000, "slow-header connection answered and closed");
    } finally {
      clearInterval(t);
    }
    assert.match(slow.got(), /^HTTP\/1\.1 408 /);
    assert.match(slow.got(), /"message":"the request did not arrive in time"/);

    // (Node would also answer it 408 after the headers timeout; the idle timeout comes first here.)
    const silent = await raw(socket);
    await within(silent.closed, 4_000, "silent connection closed");
    assert.equal(silent.got(), "");
    // The API still answers.
    assert.equal((await call(socket, "GET", "/settings")).status, 200);
  } finally {
    await kill(d);
  }
});

test("over the connection limit a new connection is refused while the open ones keep working", async () => {
  const { root, socket } = setup();
  const d = daemon(root, socket, { CAISSON_API_MAX_CONNECTIONS: "3", CAISSON_API_KEEPALIVE_TIMEOUT_MS: "30000" });
  try {
    await ready(d);
    const conns = [await raw(socket), await raw(socket), await raw(socket)];
    await sleep(200);
    const extra = await raw(socket);
    extra.s.write("GET /os HTTP/1.1\r\nhost: x\r\n\r\n");
    await within(extra.closed, 2_000, "extra connection closed");
    assert.equal(extra.got(), "", "the extra connection got no answer");
    for (const c of conns) c.s.write("GET /os HTTP/1.1\r\nhost: x\r\n\r\n");
    await sleep(500);
    for (const c of conns) assert.match(c.got(), /^HTTP\/1\.1 200/);
    for (const c of conns) c.s.destroy();
    await sleep(200);
    assert.equal((await call(socket, "GET", "/os")).status, 200, "a new connection works once others closed");
  } finally {
    await kill(d);
  }
});

test("a second daemon on the same socket or root refuses to start; after a kill -9 a new one starts", async () => {
  const { root, socket } = setup();
  const first = daemon(root, socket);
  const others: Daemon[] = [];
  try {
    await ready(first);
    const sameSocket = daemon(join(root, "..", "other-root"), socket);
    others.push(sameSocket);
    assert.notEqual(await within(sameSocket.exited, 20_000, "second daemon on the socket exits"), 0);
    assert.match(sameSocket.log(), /another server answers on .*api\.sock/);
    const sameRoot = daemon(root, join(root, "..", "other.sock"));
    others.push(sameRoot);
    assert.notEqual(await within(sameRoot.exited, 20_000, "second daemon on the root exits"), 0);
    assert.match(sameRoot.log(), new RegExp(`a caisson host \\(pid ${first.p.pid}\\) already runs on the root`));
    assert.ok(!existsSync(join(root, "..", "other.sock")));
    assert.equal((await call(socket, "GET", "/os")).status, 200, "the first daemon still answers");
    assert.equal(readFileSync(join(root, "run/caisson/host.pid"), "utf8").split(" ")[0]?.trim(), String(first.p.pid));

    await kill(first);
    const next = daemon(root, socket);
    try {
      await ready(next);
      assert.equal((await call(socket, "GET", "/os")).status, 200);
    } finally {
      await kill(next);
    }
  } finally {
    for (const d of [first, ...others]) await kill(d);
  }
});

test("the network (mTLS) API server has the same limits: 408 for slow headers, a connection cap, a bounded stop", async () => {
  const t = await makeInstanceTls(join(tempDir("caisson-net-"), "tls"), "localhost");
  const pem = (f: string) => readFileSync(f, "utf8");
  const limits = { ...DEFAULT_LIMITS, headersTimeoutMs: 800, requestTimeoutMs: 1600, maxConnections: 2, idleTimeoutMs: 60_000 };
  const server = createNetworkApiServer({ port: 0, cert: pem(t.serverCert), key: pem(t.serverKey), ca: pem(t.ca) }, (_req, res) => res.end("ok"), limits);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const client = () => watched(tlsConnect({ host: "127.0.0.1", port, ca: pem(t.ca), cert: pem(t.clientCert), key: pem(t.clientKey), servername: "localhost" }), "secureConnect");
  try {
    const slow = await client();
    slow.s.write("GET / HTTP/1.1\r\n");
    await within(slow.closed, 4_000, "slow-header TLS connection answered and closed");
    assert.match(slow.got(), /^HTTP\/1\.1 408 /);

    const a = await client();
    const b = await client();
    const extra = await client().catch(() => undefined); // may fail in the handshake: refused either way
    if (extra) await within(extra.closed, 2_000, "extra TLS connection closed");
    a.s.write("GET / HTTP/1.1\r\nhost: x\r\n\r\n");
    await sleep(300);
    assert.match(a.got(), /^HTTP\/1\.1 200/);

    // b holds a request half-sent: the stop still ends within the grace.
    b.s.write("GET / HTTP/1.1\r\n");
    const t0 = Date.now();
    await within(stopServer(server, 500), 3_000, "stopServer");
    assert.ok(Date.now() - t0 < 3_000);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
