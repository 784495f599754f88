// Debris of killed writers: writeFileAtomic's temporary files `.<name>.tmp-<pid>-<rand>` left by a
// process that was killed between create and rename are removed by the next process's first write
// into that directory; a live writer's are not touched. And the pid lock file helper.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../../src/fsutil/atomic.js";
import { acquirePidLock, LockedError, processAlive } from "../../src/fsutil/pidfile.js";

function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
}

test("the first write into a directory removes temporary files of dead writers, not of live ones", () => {
  const dir = mkdtempSync(join(tmpdir(), "caisson-atomic-"));
  const dead = deadPid();
  assert.equal(processAlive(dead), false);
  const live = process.ppid;
  writeFileSync(join(dir, `.hosts.tmp-${dead}-0a1b2c3d`), "half");
  writeFileSync(join(dir, `.resolv.conf.tmp-${dead}-deadbeef`), "half");
  writeFileSync(join(dir, `.motd.tmp-${live}-01234567`), "being written by a live process");
  writeFileSync(join(dir, `.unrelated.tmp-x`), "not ours");
  writeFileAtomic(join(dir, "motd"), "hello\n");
  assert.deepEqual(readdirSync(dir).sort(), [`.motd.tmp-${live}-01234567`, ".unrelated.tmp-x", "motd"]);
  assert.equal(readFileSync(join(dir, "motd"), "utf8"), "hello\n");
});

test("a pid lock refuses while its holder lives and is taken over once it is gone", () => {
  const dir = mkdtempSync(join(tmpdir(), "caisson-lock-"));
  const lock = join(dir, "run", "x.pid");
  const release = acquirePidLock(lock);
  assert.match(readFileSync(lock, "utf8"), new RegExp(`^${process.pid}( \\d+)?\n$`));
  release();
  assert.ok(!existsSync(lock));

  writeFileSync(lock, `${deadPid()}\n`);
  const again = acquirePidLock(lock);
  assert.match(readFileSync(lock, "utf8"), new RegExp(`^${process.pid}`), "a stale lock is taken over");
  again();

  const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
  try {
    writeFileSync(lock, `${holder.pid}\n`);
    assert.throws(() => acquirePidLock(lock), (e: unknown) => e instanceof LockedError && e.pid === holder.pid);
    // The same pid with another start time is a reused pid: the lock is stale.
    writeFileSync(lock, `${holder.pid} 1\n`);
    acquirePidLock(lock)();
  } finally {
    holder.kill("SIGKILL");
  }
});
