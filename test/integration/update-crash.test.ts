// kill -9 of a workstation daemon at every step of prepare and activate (CAISSON_FAULT), then a
// simulated firmware boot: the old slot boots (unless the activation had completed), the
// datastore is intact, and prepare + activate succeed on retry.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { call, tempDir } from "../helpers/host.js";
import { makeHostRoot, makeRepo } from "../helpers/update-fixture.js";
import { bootOnce } from "../helpers/firmware.js";
import type { UpdateStatus } from "../../src/protocol/types.js";

const CLI = fileURLToPath(new URL("../../src/cli/caisson.js", import.meta.url));

const POINTS = [
  "prepare:after-clear",
  "slots:root:after-write",
  "slots:verity:after-write",
  "slots:kernel:after-rename",
  "slots:initrd:after-rename",
  "prepare:after-images",
  "prepare:after-cache",
  "update-state:after-write",
  "update-state:after-rename",
  "activate:before",
  "slots:entry:after-write",
  "slots:entry:after-rename",
];

/** `promise`, or a failure naming `what` after `ms` (nothing here may wait forever). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no outcome within ${ms / 1000} s`)), ms)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** SIGTERM, then SIGKILL if it lingers: the daemon is gone when this resolves. */
async function stopDaemon(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  await within(exited, 10_000, "the daemon's exit after SIGTERM").catch(async () => {
    p.kill("SIGKILL");
    await exited;
  });
}

function daemon(root: string, socket: string, userData: string, fault?: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, [CLI, "host", "--root", root, "--socket", socket, "--os-version", "1.0.0", "--user-data", userData], {
    env: { ...process.env, ...(fault ? { CAISSON_FAULT: fault } : {}) },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const ready = new Promise<ChildProcess>((resolve, reject) => {
    p.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      if (out.includes("API ready")) resolve(p);
    });
    p.once("exit", (code, sig) => reject(new Error(`daemon exited (${code ?? sig}) before it was ready: ${out}`)));
  });
  return within(ready, 30_000, "the daemon's 'API ready'").catch((e: Error) => {
    p.kill("SIGKILL");
    throw new Error(`${e.message}; it printed: ${out}`);
  });
}

async function command(socket: string, path: string, cmd: string): Promise<UpdateStatus | undefined> {
  const r = await call(socket, "POST", path).catch(() => undefined);
  if (!r) return undefined;
  assert.equal(r.status, 204, r.text);
  for (let i = 0; i < 300; i++) {
    const s = await call(socket, "GET", "/updates/status").catch(() => undefined);
    if (!s) return undefined; // the daemon died
    const st = s.json() as UpdateStatus;
    if (st.most_recent_command?.cmd_type === cmd && st.most_recent_command.cmd_status !== "Unknown") return st;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${cmd} did not finish`);
}

async function apply(socket: string): Promise<UpdateStatus | undefined> {
  for (const [path, cmd] of [["/actions/refresh-updates", "refresh"], ["/actions/prepare-update", "prepare"], ["/actions/activate-update", "activate"]] as const) {
    const s = await command(socket, path, cmd);
    if (!s) return undefined;
    assert.equal(s.most_recent_command?.cmd_status, "Success", s.most_recent_command?.stderr);
    if (cmd === "activate") return s;
  }
  return undefined;
}

test("kill -9 at every step of prepare and activate: the old slot boots, data intact, retry succeeds", { timeout: 15 * 60_000 }, async (t) => {
  const base = tempDir("caisson-update-crash-");
  const repo = await makeRepo(base);
  try {
    for (const point of POINTS) {
      await t.test(point, async () => {
        const dir = tempDir("caisson-update-crash-");
        const root = join(dir, "root");
        makeHostRoot(root, repo.dir);
        const userData = join(dir, "user-data.toml");
        writeFileSync(userData, `[settings]\nmotd = "crash ${point}"\n[settings.updates]\nmetadata-base-url = "${repo.served.metadataUrl}"\ntargets-base-url = "${repo.served.targetsUrl}"\nseed = 1\n`);
        const socket = join(dir, "api.sock");
        const p = await daemon(root, socket, userData, point);
        const died = new Promise<string | null>((r) => p.once("exit", (_c, sig) => r(sig)));
        try {
          await within(apply(socket), 60_000, `refresh, prepare and activate with the fault at ${point}`);
          // apply() returns early once the daemon is gone; a daemon still alive never hit the point.
          assert.equal(await within(died, 10_000, `fault point ${point} never reached: the update went through and the daemon lives`), "SIGKILL", `the daemon was not killed at ${point}`);
        } finally {
          await stopDaemon(p);
        }

        const booted = bootOnce(root);
        if (point === "slots:entry:after-rename") {
          // The entry was complete: the new slot is tried, as activation promised.
          assert.equal(booted.slot, "b");
          assert.equal(booted.counted, true);
          return;
        }
        assert.equal(booted.slot, "a", `after a crash at ${point} the old slot boots`);
        const q = await daemon(root, socket, userData);
        try {
          const motd = await call(socket, "GET", "/settings?keys=settings.motd");
          assert.deepEqual(motd.json(), { motd: `crash ${point}` }, "datastore intact");
          const s = await apply(socket);
          assert.equal(s?.update_state, "Ready");
          assert.ok(existsSync(join(root, "efi/loader/entries/caisson-b+1.conf")));
          assert.equal(bootOnce(root).slot, "b");
        } finally {
          await stopDaemon(q);
        }
      });
    }
  } finally {
    await repo.served.close();
  }
});
