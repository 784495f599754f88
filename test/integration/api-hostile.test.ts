// Hostile and malformed input to the API (issue 8): deep nesting, bytes that are not UTF-8 in the
// body, the query or the path. Each is a 4xx naming what is wrong and changes nothing; a 5xx is
// never the client's doing and is always logged.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { join } from "node:path";
import { call, startHost, tempDir, type Response, type TestHost } from "../helpers/host.js";
import { apiRequestHandler } from "../../src/api/server.js";
import type { Services } from "../../src/api/services.js";

let h: TestHost;
before(async () => {
  h = await startHost();
});
after(async () => {
  await h.stop();
});

const snapshot = async () => ({ live: (await call(h.socket, "GET", "/settings")).text, txs: (await call(h.socket, "GET", "/tx/list")).text });

async function refused(r: Response, status: number, message: RegExp, before: { live: string; txs: string }): Promise<void> {
  assert.equal(r.status, status, r.text.slice(0, 300));
  assert.match((JSON.parse(r.text) as { message: string }).message, message);
  assert.deepEqual(await snapshot(), before, "nothing changed");
}

test("deeply nested JSON bodies are a 400 naming the depth limit, not a 500", async () => {
  const before = await snapshot();
  const deep = (n: number, open: string, close: string) => open.repeat(n) + "1" + close.repeat(n);
  for (const body of [
    deep(100_000, "[", "]"),
    `{"motd":${deep(100_000, "[", "]")}}`,
    `{"motd":${deep(50_000, '{"a":', "}")}}`,
    `{"network":{"hosts":${deep(5000, "[", "]")}}}`,
    `{"kernel":{"sysctl":{"a.b":${deep(31, "[", "]")}}}}`, // 34 levels in all
    "[".repeat(500_000), // not even JSON
  ]) {
    await refused(await call(h.socket, "PATCH", "/settings?tx=deep", Buffer.from(body)), 400, /nested deeper than the limit of 32 levels/, before);
  }
  // A value read as JSON from a key pair is held to the same limit.
  const pair = JSON.stringify({ request_payload: [`ntp.time-servers=${deep(100_000, "[", "]")}`] });
  await refused(await call(h.socket, "PATCH", "/settings/keypair?tx=deep", Buffer.from(pair)), 400, /nested deeper than the limit of 32 levels/, before);
  // Brackets inside strings are text, not nesting.
  const ok = await call(h.socket, "PATCH", "/settings?tx=deep", Buffer.from(JSON.stringify({ motd: "[".repeat(1000) + "{".repeat(1000) })));
  assert.equal(ok.status, 204, ok.text);
  await call(h.socket, "DELETE", "/tx?tx=deep");
});

test("a body that is not UTF-8 is a 400, not replaced and stored", async () => {
  const before = await snapshot();
  for (const bad of [[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0xaf]]) {
    const body = Buffer.concat([Buffer.from('{"motd":"'), Buffer.from(bad), Buffer.from('"}')]);
    await refused(await call(h.socket, "PATCH", "/settings?tx=utf", body), 400, /not valid UTF-8/, before);
  }
  const ok = await call(h.socket, "PATCH", "/settings?tx=utf", Buffer.from(JSON.stringify({ motd: "héllo ✓ 😀" })));
  assert.equal(ok.status, 204, ok.text);
  assert.deepEqual((await call(h.socket, "GET", "/tx?tx=utf")).json(), { motd: "héllo ✓ 😀" });
  await call(h.socket, "DELETE", "/tx?tx=utf");
});

test("a query or path that is not UTF-8 once percent-decoded is a 400 (names are never silently replaced)", async () => {
  const before = await snapshot();
  await refused(await call(h.socket, "PATCH", "/settings?tx=%ff", { motd: "x" }), 400, /not valid UTF-8/, before);
  await refused(await call(h.socket, "PATCH", "/settings?tx=a%ed%a0%80", { motd: "x" }), 400, /not valid UTF-8/, before);
  await refused(await call(h.socket, "POST", "/tx/commit?tx=%c3"), 400, /not valid UTF-8/, before);
  await refused(await call(h.socket, "GET", "/settings?keys=settings.motd%80"), 400, /not valid UTF-8/, before);
  await refused(await call(h.socket, "GET", "/settings%ff"), 400, /not valid UTF-8/, before);
  // Valid escapes and stray percent signs are as before.
  assert.equal((await call(h.socket, "GET", "/settings?keys=settings.motd,settings.%22%C3%A9%22")).status, 200);
  assert.equal((await call(h.socket, "GET", "/settings?prefix=%zz")).status, 200);
  const ok = await call(h.socket, "PATCH", "/settings?tx=%41%2e%7e", { motd: "x" });
  assert.equal(ok.status, 204, ok.text);
  assert.deepEqual((await call(h.socket, "GET", "/tx/list")).json(), ["A.~"]);
  await call(h.socket, "DELETE", "/tx?tx=A.~");
});

test("every 5xx is logged, with its stack when it is not an API error", async () => {
  const logs: string[] = [];
  const broken = {
    os: () => {
      throw new Error("boom in os()");
    },
  } as unknown as Services;
  const server = createServer(apiRequestHandler(broken, (m) => logs.push(m)));
  const socket = join(tempDir(), "broken.sock");
  await new Promise<void>((r) => server.listen(socket, r));
  try {
    const r = await call(socket, "GET", "/os");
    assert.equal(r.status, 500);
    assert.match((r.json() as { message: string }).message, /boom in os\(\)/);
    assert.equal(logs.length, 1, logs.join("\n"));
    assert.match(logs[0]!, /^GET \/os answered 500: internal error: boom in os\(\)\n.*Error: boom in os\(\)/s);
    // 4xx answers are the client's: not logged.
    assert.equal((await call(socket, "GET", "/nowhere")).status, 404);
    assert.equal(logs.length, 1);
  } finally {
    await new Promise((r) => server.close(r));
  }
});
