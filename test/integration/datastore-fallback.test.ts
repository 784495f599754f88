// An unreadable live.json on a host with no shell (issue 8): the host still comes up with its API,
// on the last good settings, and says why in GET /boot-status; the health gate counts it as not
// healthy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { call, startHost, tempDir } from "../helpers/host.js";
import { evaluateHealth } from "../../src/host/health.js";
import type { BootStatus } from "../../src/protocol/types.js";

const CORRUPTIONS: [string, string][] = [
  ["truncated", ""],
  ["garbage", "\u0000garbage{{{"],
  ["of the wrong shape", '{"datastore-version":"0.1.0","settings":"motd"}'],
];

for (const [what, bytes] of CORRUPTIONS) {
  test(`live.json ${what}: the host comes up on the last good settings, API answering, boot status saying why`, async () => {
    const root = join(tempDir("caisson-ds-fallback-"), "root");
    const first = await startHost({ root });
    const api = (m: string, p: string, b?: object) => call(first.socket, m, p, b);
    assert.equal((await api("PATCH", "/settings?tx=a", { motd: "good" })).status, 204);
    assert.equal((await api("POST", "/tx/commit?tx=a")).status, 200);
    assert.equal((await api("PATCH", "/settings?tx=b", { motd: "newest" })).status, 204);
    assert.equal((await api("POST", "/tx/commit?tx=b")).status, 200);
    await first.stop();

    const base = join(root, "var/lib/caisson/datastore");
    const live = join(base, readlinkSync(join(base, "current")), "live.json");
    writeFileSync(live, bytes);

    const h = await startHost({ root });
    try {
      const settings = (await call(h.socket, "GET", "/settings")).json() as { motd: string };
      assert.equal(settings.motd, "good", "the settings are the last good copy's");
      const status = (await call(h.socket, "GET", "/boot-status")).json() as BootStatus;
      assert.equal(status.datastore.state, "last-good");
      assert.match(status.datastore.error!, /live\.json (is not valid JSON|has no settings table)/);
      assert.equal(readFileSync(status.datastore.kept!, "utf8"), bytes);
      assert.ok(h.logs.some((l) => /datastore DEGRADED: .*started on its last good copy/.test(l)), h.logs.join("\n"));
      const health = await evaluateHealth({
        settingsApplied: status["settings-applied"],
        datastore: status.datastore,
        boot: { counted: false, cmdline: "" },
        containerdSocket: join(root, "no.sock"),
        timeoutMs: 0,
      });
      assert.equal(health.state, "unhealthy");
      assert.equal(health.degraded, true);
      assert.match(health.checks.find((c) => c.name === "datastore")!.detail, /unreadable .*started on its last good copy/);
      // The API works: a commit repairs live.json.
      assert.equal((await call(h.socket, "PATCH", "/settings?tx=c", { motd: "after" })).status, 204);
      assert.equal((await call(h.socket, "POST", "/tx/commit?tx=c")).status, 200);
      assert.equal((JSON.parse(readFileSync(live, "utf8")) as { settings: { motd: string } }).settings.motd, "after");
    } finally {
      await h.stop();
    }
  });
}

test("no good copy at all: the host comes up on default settings and says so", async () => {
  const root = join(tempDir("caisson-ds-fallback-"), "root");
  const first = await startHost({ root });
  await first.stop();
  const base = join(root, "var/lib/caisson/datastore");
  const dir = join(base, readlinkSync(join(base, "current")));
  writeFileSync(join(dir, "live.json"), "{");
  writeFileSync(join(dir, "live.json.last-good"), "");
  const h = await startHost({ root });
  try {
    const status = (await call(h.socket, "GET", "/boot-status")).json() as BootStatus;
    assert.equal(status.datastore.state, "empty");
    assert.equal(((await call(h.socket, "GET", "/settings")).json() as { motd: string }).motd, "Welcome to Caisson!");
  } finally {
    await h.stop();
  }
});
