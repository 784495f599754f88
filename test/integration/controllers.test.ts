// The daemon's controllers through the production host assembly and API: statuses by name in
// /boot-status, a failing controller that only degrades leaves the others working, a failed
// apply answers with what failed and what was written, retries recover, and the update actions
// on a root without boot slots say what is missing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { createServer } from "node:net";
import { join } from "node:path";
import { call, startHost, tempDir } from "../helpers/host.js";
import { CERT_A } from "../helpers/test-certs.js";
import { UpdateAgent } from "../../src/update/agent.js";
import { MAX_TRANSACTIONS } from "../../src/settings/limits.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (s: string) => Buffer.from(s).toString("base64");

interface Controllers {
  [name: string]: { state: string; failure: string; output: string; detail?: string; error?: string; runs: number; failures: number };
}
const controllers = async (socket: string) => ((await call(socket, "GET", "/boot-status")).json() as { controllers: Controllers }).controllers;

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(100);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function commitAndApply(socket: string, tx: string, settings: object) {
  const p = await call(socket, "PATCH", `/settings?tx=${tx}`, settings);
  assert.equal(p.status, 204, p.text);
  return call(socket, "POST", `/tx/commit_and_apply?tx=${tx}`);
}

test("controllers show by name in /boot-status; a failing network API only degrades the host and recovers", async () => {
  const h = await startHost({ network: true });
  try {
    const c0 = await controllers(h.socket);
    assert.deepEqual(Object.keys(c0), ["configuration-files", "network-api"]);
    assert.equal(c0["configuration-files"]!.state, "ok");
    assert.equal(c0["configuration-files"]!.failure, "fatal");
    assert.equal(c0["network-api"]!.failure, "degrades");
    assert.match(c0["network-api"]!.detail ?? "", /^off/);

    // A certificate whose key is not its own: the listener cannot start; nothing else is hurt.
    const port = await freePort();
    const wrongKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const bad = { api: { network: { enabled: true, port, "server-certificate": b64(CERT_A), "server-key": b64(wrongKey), "client-ca": b64(CERT_A) } } };
    const r = await commitAndApply(h.socket, "net", bad);
    assert.equal(r.status, 200, r.text);
    const failed = await until("network-api failed", async () => {
      const c = (await controllers(h.socket))["network-api"]!;
      return c.state === "failed" ? c : undefined;
    });
    assert.match(failed.error ?? "", /not changed: the certificates in settings\.api\.network do not work/);
    assert.ok(h.logs.some((l) => /controller network-api \(degrades\) failed, retrying/.test(l)));
    assert.equal((await controllers(h.socket))["configuration-files"]!.state, "ok");
    const motd = await commitAndApply(h.socket, "m", { motd: "still served" });
    assert.equal(motd.status, 200, motd.text);
    assert.equal(readFileSync(join(h.root, "etc/motd"), "utf8"), "still served\n");

    // A matching pair: the next commit of settings.api.* brings the listener up.
    const dir = tempDir();
    const gen = spawnSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem")], { encoding: "utf8" });
    assert.equal(gen.status, 0, `openssl (Debian package openssl) made no certificate: ${gen.stderr}`);
    const good = { api: { network: { "server-certificate": b64(readFileSync(join(dir, "c.pem"), "utf8")), "server-key": b64(readFileSync(join(dir, "k.pem"), "utf8")) } } };
    assert.equal((await commitAndApply(h.socket, "net2", good)).status, 200);
    const ok = await until("network-api ok", async () => {
      const c = (await controllers(h.socket))["network-api"]!;
      return c.state === "ok" && c.detail?.includes(`:${port}`) ? c : undefined;
    });
    assert.equal(ok.failures, 0);
    await new Promise<void>((resolve, reject) => {
      const s = connect(port, "127.0.0.1", () => (s.destroy(), resolve()));
      s.once("error", reject);
    });
  } finally {
    await h.stop();
  }
});

test("a failed apply answers with what failed and what was written, the controller says so, and a retry recovers", async () => {
  const h = await startHost();
  try {
    // /etc/motd is a directory: the motd cannot be written; chrony's file still can.
    rmSync(join(h.root, "etc/motd"), { force: true });
    mkdirSync(join(h.root, "etc/motd"));
    const r = await commitAndApply(h.socket, "t", { motd: "after the fix", ntp: { "time-servers": ["time.example.net"] } });
    assert.equal(r.status, 500, r.text);
    const body = r.json() as { message: string; kind: string; failures: { path: string; message: string }[]; written: string[] };
    assert.equal(body.kind, "ApplyFailed");
    assert.match(body.message, /^settings committed, but applying them failed: \/etc\/motd: /);
    assert.doesNotMatch(body.message, /internal error/);
    assert.deepEqual(body.failures.map((f) => f.path), ["/etc/motd"]);
    assert.deepEqual(body.written, ["/etc/chrony/chrony.conf"]);
    assert.match(readFileSync(join(h.root, "etc/chrony/chrony.conf"), "utf8"), /time\.example\.net/);
    const c = (await controllers(h.socket))["configuration-files"]!;
    assert.equal(c.state, "failed");
    assert.match(c.error ?? "", /\/etc\/motd/);
    // The settings were committed: the retry (1 s backoff) writes them once the way is clear.
    rmSync(join(h.root, "etc/motd"), { recursive: true });
    await until("configuration-files recovered", async () => ((await controllers(h.socket))["configuration-files"]!.state === "ok" ? true : undefined));
    assert.equal(readFileSync(join(h.root, "etc/motd"), "utf8"), "after the fix\n");
    assert.ok(h.logs.some((l) => /controller configuration-files: recovered/.test(l)));
  } finally {
    await h.stop();
  }
});

test("update actions on a root without A/B slots say what is missing (409 NoBootSlots), never 500", async () => {
  const h = await startHost();
  try {
    h.host.services.updates = new UpdateAgent({ root: h.root, variant: "dev", version: "0.1.0", settings: () => h.host.liveSettings(), log: (m) => h.logs.push(m) });
    for (const action of ["refresh-updates", "prepare-update", "activate-update", "deactivate-update", "rollback-update"]) {
      const r = await call(h.socket, "POST", `/actions/${action}`);
      assert.equal(r.status, 409, `${action}: ${r.text}`);
      const body = r.json() as { kind: string; message: string };
      assert.equal(body.kind, "NoBootSlots");
      assert.match(body.message, /no A\/B boot slots to update \(no caisson\.slot= on the kernel command line/);
    }
  } finally {
    await h.stop();
  }
});

test("domain errors carry their kind in the body", async () => {
  const h = await startHost();
  try {
    const bad = await call(h.socket, "PATCH", "/settings?tx=k", { motd: 42 });
    assert.equal(bad.status, 400);
    assert.equal((bad.json() as { kind: string }).kind, "InvalidSetting");
    const none = await call(h.socket, "POST", "/tx/commit?tx=empty");
    assert.equal(none.status, 422);
    assert.equal((none.json() as { kind: string }).kind, "NothingPending");
    const pair = await call(h.socket, "PATCH", "/settings/keypair", { request_payload: ["no equals sign"] });
    assert.equal(pair.status, 400);
    assert.equal((pair.json() as { kind: string }).kind, "InvalidKey");
    const empty = await call(h.socket, "PATCH", "/settings", {});
    assert.equal(empty.status, 400);
    assert.match((empty.json() as { message: string }).message, /nothing to set/);
  } finally {
    await h.stop();
  }
});

test("pending transactions are capped: the next new one is refused with what to do, an existing one still takes patches", async () => {
  const h = await startHost();
  try {
    for (let i = 0; i < MAX_TRANSACTIONS; i++) assert.equal((await call(h.socket, "PATCH", `/settings?tx=t${i}`, { motd: `m${i}` })).status, 204);
    const r = await call(h.socket, "PATCH", "/settings?tx=one-too-many", { motd: "x" });
    assert.equal(r.status, 413, r.text);
    const body = r.json() as { kind: string; limit: string; message: string };
    assert.equal(body.kind, "TooLarge");
    assert.equal(body.limit, "transactions");
    assert.match(body.message, /64 transactions are pending, the limit: commit or delete one/);
    assert.equal((await call(h.socket, "PATCH", "/settings?tx=t0", { motd: "again" })).status, 204);
    assert.equal((await call(h.socket, "DELETE", "/tx?tx=t1")).status, 200);
    assert.equal((await call(h.socket, "PATCH", "/settings?tx=one-too-many", { motd: "x" })).status, 204);
  } finally {
    await h.stop();
  }
});
