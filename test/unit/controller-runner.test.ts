// The controller runner: start, wake by input overlap, one reconcile at a time with merged
// triggers, failure isolation and backoff, requeue, outside events, fatal vs degrading, stop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ControllerRunner, type Controller, type ReconcileContext } from "../../src/controller/runner.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function recorder(name: string, inputs: string[], o: Partial<Controller> & { delayMs?: number; fail?: () => boolean; requeueAfterMs?: () => number | undefined } = {}) {
  const calls: ReconcileContext[] = [];
  let active = 0;
  let maxActive = 0;
  const c: Controller<string> = {
    name,
    inputs,
    output: `${name}'s output`,
    failure: o.failure ?? "fatal",
    subscribe: o.subscribe,
    async reconcile(ctx) {
      calls.push(ctx);
      active++;
      maxActive = Math.max(maxActive, active);
      try {
        if (o.delayMs) await sleep(o.delayMs);
        if (o.fail?.()) throw new Error(`${name} broke`);
        return { detail: `run ${calls.length}`, value: `v${calls.length}`, requeueAfterMs: o.requeueAfterMs?.() };
      } finally {
        active--;
      }
    },
  };
  return { c, calls, maxActive: () => maxActive };
}

const quiet = () => {};

test("start reconciles every controller once with all settings; statuses are ok", async () => {
  const a = recorder("a", ["settings.motd"]);
  const b = recorder("b", []);
  const r = new ControllerRunner([a.c, b.c], { settings: () => ({ motd: "hi" }), log: quiet });
  assert.equal(r.statuses().a!.state, "pending");
  await r.start();
  assert.equal(a.calls.length, 1);
  assert.deepEqual(a.calls[0], { settings: { motd: "hi" }, changed: "all", reason: "start" });
  assert.equal(b.calls.length, 1);
  assert.equal(r.statuses().a!.state, "ok");
  assert.equal(r.statuses().a!.detail, "run 1");
  await r.stop();
});

test("notify wakes only the controllers whose inputs overlap the changed keys, and returns their outcome", async () => {
  const api = recorder("api", ["settings.api"]);
  const ntp = recorder("ntp", ["settings.ntp.time-servers"]);
  const r = new ControllerRunner([api.c, ntp.c], { settings: () => ({}), log: quiet });
  await r.start();
  const out = await r.notify(["settings.api.network.port"]);
  assert.deepEqual([...out.keys()], ["api"]);
  assert.deepEqual(out.get("api"), { ok: true, value: "v2" });
  assert.deepEqual(api.calls[1]!.changed, ["settings.api.network.port"]);
  assert.equal(ntp.calls.length, 1, "ntp was not woken");
  // A change of a whole subtree above an input wakes it too.
  await r.notify(["settings.ntp"]);
  assert.equal(ntp.calls.length, 2);
  assert.equal((await r.notify(["settings.motd"])).size, 0);
  await r.stop();
});

test("one reconcile at a time: triggers during a run merge into one next run with the union of keys", async () => {
  const c = recorder("slow", ["settings"], { delayMs: 50 });
  const r = new ControllerRunner([c.c], { settings: () => ({}), log: quiet });
  await r.start();
  const first = r.notify(["settings.a"]);
  await sleep(10);
  const merged = [r.notify(["settings.c"]), r.notify(["settings.b"]), r.notify(["settings.c"])];
  await Promise.all([first, ...merged]);
  assert.equal(c.maxActive(), 1);
  assert.equal(c.calls.length, 3, "start, the first trigger, one merged run");
  assert.deepEqual(c.calls[2]!.changed, ["settings.b", "settings.c"]);
  await r.stop();
});

test("a failing controller does not stop the others; it retries with backoff and recovers; only fatal ones count for health", async () => {
  let broken = true;
  const bad = recorder("bad", ["settings"], { fail: () => broken, failure: "degrades" });
  const worse = recorder("worse", ["settings"], { fail: () => broken, failure: "fatal" });
  const good = recorder("good", ["settings"]);
  const logs: string[] = [];
  const r = new ControllerRunner([bad.c, worse.c, good.c], { settings: () => ({}), log: (m) => logs.push(m), backoff: { baseMs: 20, maxMs: 40 } });
  await r.start();
  const st = r.statuses();
  assert.equal(st.bad!.state, "failed");
  assert.equal(st.bad!.error, "bad broke");
  assert.ok(st.bad!["next-run"], "a retry is scheduled");
  assert.equal(st.good!.state, "ok");
  assert.deepEqual(r.fatalFailures(), [{ name: "worse", error: "worse broke" }]);
  assert.ok(logs.some((l) => /controller bad \(degrades\) failed, retrying/.test(l)));
  await sleep(60);
  assert.ok(bad.calls.length >= 2, "retried");
  assert.ok(bad.calls.slice(1).every((c) => c.reason === "retry"));
  broken = false;
  await sleep(100);
  assert.equal(r.statuses().bad!.state, "ok");
  assert.equal(r.statuses().bad!.failures, 0);
  assert.deepEqual(r.fatalFailures(), []);
  await r.stop();
});

test("a reconcile may ask to run again after a delay; an outside event wakes its subscriber", async () => {
  let n = 0;
  const timer = recorder("timer", [], { requeueAfterMs: () => (++n < 3 ? 10 : undefined) });
  let fire: (reason: string) => void = () => {};
  const events = recorder("events", [], { subscribe: (wake) => ((fire = wake), () => (fire = () => {})) });
  const r = new ControllerRunner([timer.c, events.c], { settings: () => ({}), log: quiet });
  await r.start();
  await sleep(80);
  assert.deepEqual(timer.calls.map((c) => c.reason), ["start", "requeue", "requeue"]);
  fire("container-exit");
  await sleep(10);
  assert.deepEqual(events.calls.map((c) => c.reason), ["start", "container-exit"]);
  await r.stop();
  fire("after-stop");
  await sleep(10);
  assert.equal(events.calls.length, 2, "unsubscribed at stop");
});

test("stop waits for a running reconcile, answers queued triggers, and wakes nothing afterwards", async () => {
  const c = recorder("slow", ["settings"], { delayMs: 40 });
  let stopped = 0;
  c.c.stop = () => void stopped++;
  const r = new ControllerRunner([c.c], { settings: () => ({}), log: quiet });
  await r.start();
  const during = r.notify(["settings.x"]);
  await sleep(5);
  const queued = r.notify(["settings.y"]);
  await r.stop();
  assert.equal((await during).get("slow")!.ok, true);
  assert.equal((await queued).get("slow")!.ok, false);
  assert.equal(stopped, 1);
  const after = await r.notify(["settings.z"]);
  assert.equal(after.get("slow")!.ok, false);
  assert.equal(c.calls.length, 2);
});

test("two controllers may not share a name", () => {
  const a = recorder("same", []);
  assert.throws(() => new ControllerRunner([a.c, a.c], { settings: () => ({}), log: quiet }), /two controllers are named same/);
});
