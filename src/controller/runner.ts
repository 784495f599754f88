// The host daemon's controllers and the runner that drives them (Talos' machined shape: each
// controller declares its inputs and the one output it owns; the runner wakes it when an input
// changes). A controller reconciles its output to the live settings: at start, after each commit
// that touches one of its input prefixes, when it asked to run again after a delay (backoff,
// timers), and when an outside event it subscribed to fires (a container exited, a unit
// restarted). One reconcile at a time per controller; triggers that arrive meanwhile are merged
// into one next run. A failing controller never stops the others: its status says why, and its
// `failure` decides whether that fails the boot's health verdict or only degrades the host.
import { parseSettingsKey, pathsOverlap } from "../settings/keys.js";
import type { ControllerStatus } from "../protocol/types.js";

/** Settings as the controllers see them: the live tree (rooted at `settings`). */
export type Settings = Record<string, unknown>;

export interface ReconcileContext {
  settings: Settings;
  /** Full keys (`settings.a.b`) changed since the last run, or "all" (start, retry, timer, event). */
  changed: string[] | "all";
  /** Why this run: "start", "commit", "retry", "requeue", or an event's name. */
  reason: string;
}

export interface ReconcileResult<T = unknown> {
  /** One line for the status (what the output now is). */
  detail?: string;
  /** Run again after this many milliseconds (a timer, or a wait for something outside). */
  requeueAfterMs?: number;
  /** What a caller awaiting this run gets (e.g. the applier's plan). */
  value?: T;
}

export interface Controller<T = unknown> {
  /** Unique, kebab-case: the key of its status in /boot-status. */
  readonly name: string;
  /** Settings keys it reads, whole subtrees (`settings.api`); [] reads none (runs at start and on events). */
  readonly inputs: readonly string[];
  /** What only this controller writes, in words (a file set, a socket, a unit). */
  readonly output: string;
  /** fatal: a failure fails the health verdict (a boot on trial rolls back); degrades: reported only. */
  readonly failure: "fatal" | "degrades";
  reconcile(ctx: ReconcileContext): Promise<ReconcileResult<T> | void>;
  /** Outside events that should wake it; returns an unsubscribe function. */
  subscribe?(wake: (reason: string) => void): () => void;
  /** Release what it holds (servers, timers) when the daemon stops. */
  stop?(): Promise<void> | void;
}

export interface RunnerOptions {
  settings: () => Settings;
  log: (msg: string) => void;
  /** Retry backoff after a failure: min(maxMs, baseMs * 2^(failures-1)). */
  backoff?: { baseMs: number; maxMs: number };
  now?: () => Date;
}

interface Outcome<T> {
  ok: boolean;
  value?: T;
  error?: unknown;
}

interface Slot {
  c: Controller;
  inputs: string[][];
  status: ControllerStatus;
  running: Promise<void> | undefined;
  /** Merged triggers waiting for the next run. */
  queued: { changed: Set<string> | "all"; reason: string; waiters: ((o: Outcome<unknown>) => void)[] } | undefined;
  timer: NodeJS.Timeout | undefined;
  unsubscribe: (() => void) | undefined;
}

export class ControllerRunner {
  private readonly slots = new Map<string, Slot>();
  private stopped = false;
  private readonly backoff: { baseMs: number; maxMs: number };
  private readonly now: () => Date;

  constructor(
    controllers: readonly Controller[],
    private readonly o: RunnerOptions,
  ) {
    this.backoff = o.backoff ?? { baseMs: 1000, maxMs: 5 * 60_000 };
    this.now = o.now ?? (() => new Date());
    for (const c of controllers) {
      if (this.slots.has(c.name)) throw new Error(`two controllers are named ${c.name}`);
      this.slots.set(c.name, {
        c,
        inputs: c.inputs.map((k) => parseSettingsKey(k)),
        status: { output: c.output, failure: c.failure, state: "pending", runs: 0, failures: 0 },
        running: undefined,
        queued: undefined,
        timer: undefined,
        unsubscribe: undefined,
      });
    }
  }

  /** Reconcile every controller once and subscribe them to their events; resolves when all first runs settled. */
  async start(): Promise<void> {
    const first = [...this.slots.values()].map((s) => this.schedule(s, "all", "start"));
    for (const s of this.slots.values()) {
      s.unsubscribe = s.c.subscribe?.((reason) => void this.schedule(s, "all", reason));
    }
    await Promise.all(first);
  }

  /**
   * Wake the controllers whose inputs overlap `changed` (full keys). Resolves with each woken
   * controller's outcome, from a run that started after this call.
   */
  notify(changed: string[], reason = "commit"): Promise<Map<string, Outcome<unknown>>> {
    const keys = changed.map((k) => parseSettingsKey(k));
    const woken = [...this.slots.values()].filter((s) => s.inputs.some((p) => keys.some((k) => pathsOverlap(k, p))));
    return Promise.all(woken.map(async (s) => [s.c.name, await this.schedule(s, changed, reason)] as const)).then((e) => new Map(e));
  }

  /** Run one controller now (merged with any queued trigger) and get its outcome. */
  run<T>(name: string, reason: string, changed: string[] | "all" = "all"): Promise<Outcome<T>> {
    const s = this.slots.get(name);
    if (!s) throw new Error(`no controller named ${name}`);
    return this.schedule(s, changed, reason) as Promise<Outcome<T>>;
  }

  statuses(): Record<string, ControllerStatus> {
    return Object.fromEntries([...this.slots].map(([n, s]) => [n, { ...s.status }]));
  }

  /** The fatal controllers whose last run failed (the health verdict's input). */
  fatalFailures(): { name: string; error: string }[] {
    return [...this.slots.values()].filter((s) => s.c.failure === "fatal" && s.status.state === "failed").map((s) => ({ name: s.c.name, error: s.status.error ?? "failed" }));
  }

  /** Stop waking controllers, wait for running reconciles (bounded by the caller), release them. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.slots.values()) {
      clearTimeout(s.timer);
      s.unsubscribe?.();
    }
    await Promise.allSettled([...this.slots.values()].map((s) => s.running));
    for (const s of this.slots.values()) {
      try {
        await s.c.stop?.();
      } catch (e) {
        this.o.log(`controller ${s.c.name}: stopping failed: ${(e as Error).message}`);
      }
    }
  }

  private schedule(s: Slot, changed: string[] | "all", reason: string): Promise<Outcome<unknown>> {
    if (this.stopped) return Promise.resolve({ ok: false, error: new Error("the daemon is stopping") });
    return new Promise((resolve) => {
      if (!s.queued) s.queued = { changed: changed === "all" ? "all" : new Set(changed), reason, waiters: [] };
      else if (changed === "all") s.queued.changed = "all";
      else if (s.queued.changed !== "all") for (const k of changed) s.queued.changed.add(k);
      s.queued.waiters.push(resolve);
      clearTimeout(s.timer);
      s.timer = undefined;
      delete s.status["next-run"];
      if (!s.running) s.running = this.loop(s);
    });
  }

  private async loop(s: Slot): Promise<void> {
    while (s.queued && !this.stopped) {
      const q = s.queued;
      s.queued = undefined;
      const outcome = await this.once(s, q.changed === "all" ? "all" : [...q.changed].sort(), q.reason);
      for (const w of q.waiters) w(outcome);
    }
    // Stopped with triggers queued: their callers still get an answer.
    if (s.queued) {
      for (const w of s.queued.waiters) w({ ok: false, error: new Error("the daemon is stopping") });
      s.queued = undefined;
    }
    s.running = undefined;
  }

  private async once(s: Slot, changed: string[] | "all", reason: string): Promise<Outcome<unknown>> {
    const st = s.status;
    st.runs++;
    st["last-run"] = this.now().toISOString();
    try {
      const r = (await s.c.reconcile({ settings: this.o.settings(), changed, reason })) ?? {};
      if (st.state === "failed") this.o.log(`controller ${s.c.name}: recovered${r.detail ? `: ${r.detail}` : ""}`);
      st.state = "ok";
      st.failures = 0;
      delete st.error;
      if (r.detail !== undefined) st.detail = r.detail;
      if (r.requeueAfterMs !== undefined) this.later(s, r.requeueAfterMs, "requeue");
      return { ok: true, value: r.value };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      st.state = "failed";
      st.failures++;
      st.error = msg;
      const delay = Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (st.failures - 1));
      this.o.log(`controller ${s.c.name} (${s.c.failure}) failed, retrying in ${Math.round(delay / 1000)} s: ${msg}`);
      this.later(s, delay, "retry");
      return { ok: false, error: e };
    }
  }

  private later(s: Slot, ms: number, reason: string): void {
    if (this.stopped) return;
    clearTimeout(s.timer);
    s.status["next-run"] = new Date(this.now().getTime() + ms).toISOString();
    s.timer = setTimeout(() => {
      s.timer = undefined;
      void this.schedule(s, "all", reason);
    }, ms);
    // A pending retry must not keep a stopping process alive.
    s.timer.unref();
  }
}
