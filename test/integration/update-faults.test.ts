// The update agent under attack and failure: tampered, expired, rolled-back, frozen and
// mixed-and-matched metadata (TUF's threats) make refresh and prepare fail with a clear message
// and nothing written to the inactive slot; bad, endless and cut-off target downloads fail
// prepare before the slot could boot; a full cache disk fails prepare with the running slot and
// the settings untouched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFileSync, copyFileSync, createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { call, tempDir } from "../helpers/host.js";
import { refreshRepository } from "../../src/repo/repository.js";
import { env, isZero, makeRepo, run, setSettings, slotAFingerprint, succeeded, type Env } from "../helpers/update-fixture.js";

const meta = (e: Env, f: string) => join(e.repo.dir, "repository/metadata", f);

function edit(path: string, fn: (j: { signed: Record<string, unknown>; signatures: unknown[] }) => void): void {
  const j = JSON.parse(readFileSync(path, "utf8")) as { signed: Record<string, unknown>; signatures: unknown[] };
  fn(j);
  writeFileSync(path, JSON.stringify(j));
}

/** After a good refresh, `tamper`; then refresh and prepare both fail and slot b stays empty. */
async function attack(name: string, tamper: (e: Env) => Promise<void> | void, expect: RegExp, o: Parameters<typeof env>[0] = {}): Promise<void> {
  const e = await env(o);
  try {
    succeeded(await run(e, "refresh"), "refresh");
    await tamper(e);
    for (const cmd of ["refresh", "prepare"] as const) {
      const s = await run(e, cmd);
      assert.equal(s.most_recent_command?.cmd_status, "Failed", `${name}: ${cmd} should fail`);
      assert.match(s.most_recent_command!.stderr, expect, `${name}: ${cmd}`);
    }
    assert.ok(isZero(e.root, "root-b") && isZero(e.root, "root-b-verity"), `${name}: nothing written to slot b`);
    assert.deepEqual(readdirSync(join(e.root, "efi/loader/entries")), ["caisson-a.conf"]);
  } finally {
    await e.close();
  }
}

test("metadata attacks: bad signature, below threshold, expired, rolled back, frozen, mix-and-match", async (t) => {
  await t.test("bad signature", () => attack("bad signature", (e) => edit(meta(e, "timestamp.json"), (j) => void (j.signed.version = (j.signed.version as number) + 1)), /failed verification.*(signed by|signature|threshold)/i));
  await t.test("below threshold", () => attack("below threshold", (e) => edit(meta(e, "timestamp.json"), (j) => void (j.signatures = [])), /failed verification.*(threshold|signed by 0)/i));
  await t.test("expired", () => attack("expired", async (e) => void (await refreshRepository(e.repo.dir, { now: new Date(Date.now() - 30 * 86400_000) })), /expired/i));
  await t.test("rolled-back version", () =>
    attack("rollback", async (e) => {
      const old = readFileSync(meta(e, "timestamp.json"));
      await refreshRepository(e.repo.dir);
      succeeded(await run(e, "refresh"), "refresh");
      writeFileSync(meta(e, "timestamp.json"), old);
    }, /failed verification.*version/i),
  );
  await t.test("frozen timestamp", () =>
    attack("freeze", () => new Promise((r) => setTimeout(r, 2500)), /expired/i, { init: { expires: { timestamp: 2 } } }),
  );
  await t.test("mix-and-match snapshot", () =>
    attack("mix-and-match", (e) => {
      const snaps = readdirSync(join(e.repo.dir, "repository/metadata")).filter((f) => /^\d+\.snapshot\.json$/.test(f)).sort((a, b) => parseInt(a) - parseInt(b));
      assert.ok(snaps.length >= 2, `need two snapshots, have ${snaps}`);
      // Point the timestamp's current snapshot file at an older snapshot's content.
      copyFileSync(meta(e, snaps[0]!), meta(e, snaps.at(-1)!));
      // A fresh client (no cached snapshot) must fetch it.
      for (const f of ["snapshot.json", "targets.json"]) {
        const p = join(e.root, "var/lib/caisson/updates/metadata", f);
        if (existsSync(p)) writeFileSync(p, "{}");
      }
    }, /failed verification.*snapshot/i),
  );
});

/** A targets server that serves the repository's targets but misbehaves for the root image. */
async function badTargets(e: Env, mode: "endless" | "cut"): Promise<Server> {
  const dir = join(e.repo.dir, "repository/targets");
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? "/").slice(1).split("/").pop()!);
    if (name.includes("-root.erofs")) {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const chunk = Buffer.alloc(64 * 1024, 7);
      if (mode === "cut") {
        res.write(chunk);
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      const pump = () => {
        while (res.write(chunk)) if (res.destroyed) return;
        if (!res.destroyed) res.once("drain", pump);
      };
      res.on("close", () => res.removeAllListeners("drain"));
      return pump();
    }
    if (!existsSync(join(dir, name))) return void res.writeHead(404).end();
    res.writeHead(200);
    createReadStream(join(dir, name)).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  await setSettings(e.t, { "targets-base-url": `http://127.0.0.1:${(server.address() as AddressInfo).port}/` });
  return server;
}

async function prepareFails(e: Env, expect: RegExp): Promise<void> {
  succeeded(await run(e, "refresh"), "refresh");
  const slotA = slotAFingerprint(e.root);
  const s = await run(e, "prepare");
  assert.equal(s.most_recent_command?.cmd_status, "Failed");
  assert.match(s.most_recent_command!.stderr, expect);
  assert.notEqual(s.update_state, "Staged");
  assert.deepEqual(readdirSync(join(e.root, "efi/loader/entries")), ["caisson-a.conf"], "slot b cannot boot");
  assert.equal(slotAFingerprint(e.root), slotA);
  assert.equal((await call(e.t.socket, "POST", "/actions/activate-update")).status, 409);
}

test("target faults: hash mismatch, length mismatch, endless data, a download cut midway", async (t) => {
  const rootTarget = (e: Env) => join(e.repo.dir, "repository/targets", readdirSync(join(e.repo.dir, "repository/targets")).find((f) => f.endsWith("-root.erofs"))!);
  await t.test("hash mismatch", async () => {
    const e = await env();
    try {
      const p = rootTarget(e);
      const b = readFileSync(p);
      b[100] = b[100]! ^ 0xff;
      writeFileSync(p, b);
      await prepareFails(e, /sha256 .* does not match the signed/);
    } finally {
      await e.close();
    }
  });
  await t.test("length mismatch", async () => {
    const e = await env();
    try {
      appendFileSync(rootTarget(e), Buffer.alloc(10));
      await prepareFails(e, /more than the \d+ bytes/);
    } finally {
      await e.close();
    }
  });
  for (const mode of ["endless", "cut"] as const) {
    await t.test(mode, async () => {
      const e = await env();
      const server = await badTargets(e, mode);
      try {
        await prepareFails(e, mode === "endless" ? /more than the \d+ bytes/ : /download (cut short|failed after)/);
      } finally {
        server.closeAllConnections();
        server.close();
        await e.close();
      }
    });
  }
});

test("a full cache disk (ENOSPC) fails prepare clearly; the running slot and the settings are untouched", { skip: process.getuid?.() !== 0 ? "needs root to mount a tmpfs" : false }, async () => {
  const base = tempDir("caisson-update-");
  // Migrations of 200 KB each; the cache gets a 64 KiB tmpfs.
  const e = await env({ base, repo: await makeRepo(base) });
  const cache = join(e.root, "var/lib/caisson/updates/cache");
  mkdirSync(cache, { recursive: true });
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", cache]);
  try {
    const settings = (await call(e.t.socket, "GET", "/settings")).text;
    await prepareFails(e, /no space left .*ENOSPC.*untouched/);
    assert.equal((await call(e.t.socket, "GET", "/settings")).text, settings);
  } finally {
    execFileSync("umount", [cache]);
    await e.close();
  }
});
