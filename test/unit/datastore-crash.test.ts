// "A kill -9 at any instant of a commit leaves the store wholly old or wholly new": a real process
// (test/fixtures/datastore-worker.ts) is SIGKILLed in the middle of datastore writes, then the store
// is reopened here and checked against the design in src/datastore/store.ts.
//
// 1. At every fault point (CAISSON_FAULT): the worker kills itself at exactly that instant.
// 2. At random instants: a worker commits full trees A and B in a loop and the parent kills it.
//
// Nothing here waits without a deadline: a worker that does not die where it should (a fault point
// never reached, a loop that never starts) fails its case, saying which fault point and step.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isDeepStrictEqual } from "node:util";
import { Datastore } from "../../src/datastore/store.js";
import type { JsonObject } from "../../src/settings/keys.js";
import { CRASH_TX, SYSCTL_KEYS, tree } from "../fixtures/datastore-trees.js";

const WORKER = fileURLToPath(new URL("../fixtures/datastore-worker.js", import.meta.url));
const OTHER_TX = "bystander";
// How long one `once` worker may take, and a looping worker to say it is ready.
const WORKER_DEADLINE_MS = 15_000;
// The worker's exit code when CAISSON_FAULT is set but it finished alive (test/fixtures/datastore-worker.ts).
const FAULT_NOT_REACHED = 3;

interface OnceRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The last step the worker announced ("open", "patch", "commit"). */
  step: string;
}

/** Run `worker once <base> new` with CAISSON_FAULT = fault (or unset); fails if it outlives the deadline. */
function runOnce(base: string, fault: string | undefined): OnceRun {
  const env = { ...process.env };
  delete env.CAISSON_FAULT;
  if (fault !== undefined) env.CAISSON_FAULT = fault;
  const r = spawnSync(process.execPath, [WORKER, "once", base, "new"], { env, encoding: "utf8", timeout: WORKER_DEADLINE_MS, killSignal: "SIGKILL" });
  const step = [...(r.stderr ?? "").matchAll(/^step: (\S+)$/gm)].at(-1)?.[1] ?? "none";
  if (r.error) {
    assert.fail(`worker (fault point ${fault ?? "none"}) did not finish within ${WORKER_DEADLINE_MS} ms, last step '${step}': ${r.error.message}; stderr: ${r.stderr}`);
  }
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, step };
}

function tempBase(): string {
  return mkdtempSync(join(tmpdir(), "caisson-crash-"));
}

/** A store whose live settings are tree(tag), with an unrelated transaction pending. */
function seedStore(base: string, tag: string): void {
  const s = Datastore.open(base, "1");
  s.patch("seed", tree(tag));
  s.commit("seed");
  s.patch(OTHER_TX, { motd: "not mine" });
}

/** Files a crash may leave behind that open() must have cleaned up. */
function strayFiles(store: Datastore): string[] {
  const inPending = readdirSync(join(store.dir, "pending")).filter((f) => f.startsWith(".") || !f.endsWith(".json"));
  const inDir = readdirSync(store.dir).filter((f) => f !== "live.json" && f !== "live.json.last-good" && f !== "pending");
  return [...inPending.map((f) => `pending/${f}`), ...inDir];
}

function pendingFiles(store: Datastore): string[] {
  return readdirSync(join(store.dir, "pending")).sort();
}

// What the design promises for a kill at each point of `patch(CRASH_TX, NEW); commit(CRASH_TX)`:
//   live    - "old" or "new"
//   pending - the state of CRASH_TX after reopen: "absent" or "full" (exactly the patched tree)
//   step    - the worker's step the point belongs to
const FAULTS: { point: string; step: "patch" | "commit"; live: "old" | "new"; pending: "absent" | "full" }[] = [
  // The pending file is written by temp file + rename (not fsynced): before the rename only a temp
  // file exists, which open() removes; after it the whole patch is pending.
  { point: "pending:after-write", step: "patch", live: "old", pending: "absent" },
  { point: "pending:after-fsync", step: "patch", live: "old", pending: "absent" },
  { point: "pending:after-rename", step: "patch", live: "old", pending: "full" },
  { point: "pending:after-dir-fsync", step: "patch", live: "old", pending: "full" },
  // live.json is replaced by rename: before it, the old live and the untouched pending tx remain;
  // after it, the new live holds the tx's id as last-commit and open() drops the consumed tx.
  { point: "commit:after-write", step: "commit", live: "old", pending: "full" },
  { point: "commit:after-fsync", step: "commit", live: "old", pending: "full" },
  { point: "commit:after-rename", step: "commit", live: "new", pending: "absent" },
  { point: "commit:after-dir-fsync", step: "commit", live: "new", pending: "absent" },
  { point: "commit:after-unlink", step: "commit", live: "new", pending: "absent" },
];

test("kill -9 at every fault point of a commit leaves the store wholly old or wholly new", { timeout: 5 * 60_000 }, async (t) => {
  const OLD = tree("old");
  const NEW = tree("new");
  for (const f of FAULTS) {
    await t.test(f.point, () => {
      const base = tempBase();
      try {
        seedStore(base, "old");
        const r = runOnce(base, f.point);
        // The fault point must exist and be reached: otherwise this case proves nothing.
        assert.notEqual(r.status, FAULT_NOT_REACHED, `fault point ${f.point} was never reached (step ${f.step}): ${r.stderr}`);
        assert.equal(r.signal, "SIGKILL", `worker was not killed at fault point ${f.point}: exit ${r.status} after step '${r.step}', stderr: ${r.stderr}`);
        assert.equal(r.step, f.step, `fault point ${f.point} was hit in step '${r.step}', not '${f.step}'`);
        assert.equal(r.stdout, "", "the worker died before finishing its commit");

        const store = Datastore.open(base, "1");
        assert.deepEqual(store.liveSettings(), f.live === "old" ? OLD : NEW, `live settings are not wholly ${f.live}`);
        if (f.pending === "full") {
          assert.deepEqual(store.transactions(), [OTHER_TX, CRASH_TX].sort());
          assert.deepEqual(store.pendingSettings(CRASH_TX), NEW, "the pending transaction is not whole");
        } else {
          assert.deepEqual(store.transactions(), [OTHER_TX]);
          assert.deepEqual(store.pendingSettings(CRASH_TX), {});
        }
        assert.deepEqual(store.pendingSettings(OTHER_TX), { motd: "not mine" }, "an unrelated transaction was disturbed");
        assert.deepEqual(strayFiles(store), [], "open() left files from the crash behind");
        assert.equal(pendingFiles(store).length, store.transactions().length, "pending files on disk do not match transactions()");

        // The recovered store is usable and, reopened again, stable.
        if (f.pending === "full") {
          assert.equal(store.commit(CRASH_TX).length, SYSCTL_KEYS + 2);
          assert.deepEqual(store.liveSettings(), NEW);
        }
        const again = Datastore.open(base, "1");
        assert.deepEqual(again.liveSettings(), store.liveSettings());
        assert.deepEqual(again.transactions(), store.transactions());
      } finally {
        rmSync(base, { recursive: true, force: true });
      }
    });
  }

  await t.test("control: no fault, the worker commits every key", () => {
    const base = tempBase();
    try {
      seedStore(base, "old");
      const r = runOnce(base, undefined);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.step, "commit");
      assert.equal(r.stdout, `committed ${SYSCTL_KEYS + 2}\n`);
      const store = Datastore.open(base, "1");
      assert.deepEqual(store.liveSettings(), NEW);
      assert.deepEqual(store.transactions(), [OTHER_TX]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  await t.test("control: a fault point that is never reached ends the worker and says so", () => {
    const base = tempBase();
    try {
      seedStore(base, "old");
      const r = runOnce(base, "commit:no-such-point");
      assert.equal(r.status, FAULT_NOT_REACHED, r.stderr);
      assert.match(r.stderr, /fault point 'commit:no-such-point' never reached \(last step 'commit'\); passed: pending:after-write, .*commit:after-unlink/);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  /** Whether the worker reported ready (and so was killed by the parent, if at all). */
  ready: boolean;
}

/**
 * Start a looping committer, SIGKILL it `delayMs` after it reports ready. A worker that does not
 * report ready within the deadline is killed too, but resolves with ready false: the caller must
 * not count that kill as one of its own. Rejects if the worker is not gone soon after either kill.
 */
function killLoopingWorker(base: string, delayMs: number): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.CAISSON_FAULT;
    const child = spawn(process.execPath, [WORKER, "loop", base, "a", "b"], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let ready = false;
    const timers: NodeJS.Timeout[] = [];
    const after = (ms: number, f: () => void) => timers.push(setTimeout(f, ms));
    const stuck = (what: string) => () => {
      child.kill("SIGKILL");
      reject(new Error(`looping worker ${what}; stderr: ${stderr}`));
    };
    after(WORKER_DEADLINE_MS, () => child.kill("SIGKILL"));
    after(WORKER_DEADLINE_MS + delayMs + 5_000, stuck("still not gone after SIGKILL"));
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
      if (!ready && stdout.includes("ready\n")) {
        ready = true;
        after(delayMs, () => child.kill("SIGKILL"));
      }
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code, signal) => {
      timers.forEach(clearTimeout);
      resolve({ code, signal, stderr, ready });
    });
  });
}

test("kill -9 at random instants of a commit loop leaves live exactly one committed tree", { timeout: 5 * 60_000 }, async (t) => {
  const INIT = tree("init");
  const A = tree("a");
  const B = tree("b");
  const name = (s: JsonObject) => (isDeepStrictEqual(s, INIT) ? "init" : isDeepStrictEqual(s, A) ? "a" : isDeepStrictEqual(s, B) ? "b" : "mix");
  const ITERATIONS = 30;
  const seen: Record<string, number> = {};
  const base = tempBase();
  try {
    for (let i = 0; i < ITERATIONS; i++) {
      rmSync(base, { recursive: true, force: true });
      const s = Datastore.open(base, "1");
      s.patch("seed", INIT);
      s.commit("seed");

      // Most kills land within the first commits; some later, after many whole commits.
      const delay = i % 5 === 0 ? 0 : Math.floor(Math.random() * (i % 3 === 0 ? 200 : 40));
      const exit = await killLoopingWorker(base, delay);
      assert.ok(exit.ready, `iteration ${i}: worker did not report ready within ${WORKER_DEADLINE_MS} ms (exit ${exit.code ?? exit.signal}): ${exit.stderr}`);
      assert.equal(exit.signal, "SIGKILL", `iteration ${i}: worker exited on its own (${exit.code}): ${exit.stderr}`);

      const store = Datastore.open(base, "1");
      const live = store.liveSettings();
      const which = name(live);
      seen[which] = (seen[which] ?? 0) + 1;
      assert.notEqual(which, "mix", `iteration ${i} (killed ${delay} ms after ready): live settings are a mix of trees`);

      // The worker patches the next tree, then commits it: after recovery the transaction is
      // either gone or holds exactly the tree that follows the live one (never the live one itself,
      // whose consumed pending file open() must have dropped).
      const pending = store.transactions();
      assert.ok(pending.length === 0 || (pending.length === 1 && pending[0] === CRASH_TX), `iteration ${i}: transactions ${pending.join(",")}`);
      if (pending.length === 1) {
        seen["with-pending"] = (seen["with-pending"] ?? 0) + 1;
        const next = which === "a" ? B : A;
        assert.deepEqual(store.pendingSettings(CRASH_TX), next, `iteration ${i}: pending is not the whole next tree after '${which}'`);
        assert.equal(store.commit(CRASH_TX).length, SYSCTL_KEYS + 2, `iteration ${i}: committing the recovered tx did not change every key`);
        assert.deepEqual(store.liveSettings(), next);
      }
      assert.deepEqual(strayFiles(store), [], `iteration ${i}: open() left files from the crash behind`);
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  t.diagnostic(`live after kill: ${JSON.stringify(seen)}`);
});
