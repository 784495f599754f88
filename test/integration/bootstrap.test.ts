// Bootstrap commands through a real workstation daemon: in name order after the API is up, once
// (then off) and always, a failing command stops its entry, and the report is in /boot-status; the
// health verdict fails only for an essential one.
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createServer } from "node:net";
import { call, tempDir } from "../helpers/host.js";
import { daemon, ready, stopDaemon } from "../helpers/daemon.js";
import { evaluateHealth } from "../../src/host/health.js";
import type { BootStatus, BootstrapCommandReport } from "../../src/protocol/types.js";

const USER_DATA = `
[settings.bootstrap-commands.10-motd]
mode = "once"
commands = [["apiclient", "set", "motd=set by a bootstrap command"]]

[settings.bootstrap-commands.20-sysctl]
mode = "always"
commands = [["apiclient", "set", 'kernel.sysctl."vm.max_map_count"=262144'], ["apiclient", "get", "settings.motd"]]

[settings.bootstrap-commands.30-broken]
mode = "always"
essential = true
commands = [["apiclient", "set", "no-such-setting=1"], ["apiclient", "set", "motd=never set"]]

[settings.bootstrap-commands.40-off]
mode = "off"
commands = [["apiclient", "set", "motd=off never runs"]]
`;

const get = async (socket: string, key: string) => (await call(socket, "GET", `/settings?keys=${encodeURIComponent(key)}`)).json();

test("bootstrap commands: once then off, always at every start, a failing one stops its entry; reported in /boot-status", async () => {
  const dir = tempDir("caisson-bootstrap-");
  const root = join(dir, "root");
  const socket = join(dir, "api.sock");
  const userData = join(dir, "user-data.toml");
  writeFileSync(userData, USER_DATA);

  const first = daemon(root, socket, {}, ["--user-data", userData]);
  try {
    await ready(first);
    assert.deepEqual(await get(socket, "settings.motd"), { motd: "set by a bootstrap command" }, "10-motd ran; 30-broken stopped before its second command");
    assert.deepEqual(await get(socket, 'settings.kernel.sysctl."vm.max_map_count"'), { kernel: { sysctl: { "vm.max_map_count": "262144" } } });
    assert.deepEqual(await get(socket, "settings.bootstrap-commands.10-motd.mode"), { "bootstrap-commands": { "10-motd": { mode: "off" } } }, "once: turned off after it ran");
    const s = (await call(socket, "GET", "/boot-status")).json() as BootStatus;
    const report = s["bootstrap-commands"] as BootstrapCommandReport[];
    assert.deepEqual(report.map((r) => [r.name, r.mode, r.state, r.ran]), [
      ["10-motd", "once", "ok", 1],
      ["20-sysctl", "always", "ok", 2],
      ["30-broken", "always", "failed", 1],
    ]);
    assert.match(report[2]!.error ?? "", /'apiclient set no-such-setting=1' exited 1: .*no-such-setting/);
    assert.equal(report[2]!.essential, true);
    assert.match(first.log(), /bootstrap command 30-broken \(essential\) FAILED/);
    assert.match(first.log(), /bootstrap commands: 10-motd ok, 20-sysctl ok, 30-broken failed/);
    // Changes between starts: the once entry must not undo them; the always entry redoes its own.
    assert.equal((await call(socket, "PATCH", "/settings/keypair?tx=t", { request_payload: ["motd=changed by hand", 'kernel.sysctl."vm.max_map_count"=1'] })).status, 204);
    assert.equal((await call(socket, "POST", "/tx/commit_and_apply?tx=t")).status, 200);
  } finally {
    await stopDaemon(first);
  }

  const second = daemon(root, socket);
  try {
    await ready(second);
    assert.deepEqual(await get(socket, "settings.motd"), { motd: "changed by hand" }, "once did not run again");
    assert.deepEqual(await get(socket, 'settings.kernel.sysctl."vm.max_map_count"'), { kernel: { sysctl: { "vm.max_map_count": "262144" } } }, "always ran again");
    const s = (await call(socket, "GET", "/boot-status")).json() as BootStatus;
    assert.deepEqual(s["bootstrap-commands"]!.map((r) => r.name), ["20-sysctl", "30-broken"]);
  } finally {
    await stopDaemon(second);
  }
});

test("the health verdict fails for a failed essential bootstrap command, not for another", async () => {
  // containerd's socket, answering, so only the bootstrap check decides.
  const sock = join(tempDir(), "containerd.sock");
  const server = createServer((c) => c.end());
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    const base = { settingsApplied: true, boot: { counted: true, cmdline: "" }, containerdSocket: sock, timeoutMs: 1000 };
    const failed = (name: string, essential: boolean): BootstrapCommandReport => ({ name, mode: "always", essential, state: "failed", ran: 1, error: "'apiclient x' exited 1: no" });
    const soft = await evaluateHealth({ ...base, bootstrap: [failed("a", false)] });
    assert.equal(soft.state, "healthy");
    assert.match(soft.checks.find((c) => c.name === "bootstrap-commands")!.detail, /not essential, failed: a/);
    const hard = await evaluateHealth({ ...base, bootstrap: [failed("a", false), failed("b", true)] });
    assert.equal(hard.state, "unhealthy");
    assert.match(hard.checks.find((c) => c.name === "bootstrap-commands")!.detail, /essential failed: b: 'apiclient x' exited 1/);
  } finally {
    server.close();
  }
});
