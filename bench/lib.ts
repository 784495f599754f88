// Shared pieces of the benchmarks: the row/module shapes run.ts collects, statistics, a keep-alive
// HTTP client for a Unix socket, child processes that announce readiness on stdout, and memory
// readings from /proc.
import { spawn, type ChildProcess } from "node:child_process";
import { Agent, request as httpRequest } from "node:http";
import { existsSync, openSync, closeSync, readFileSync, statfsSync } from "node:fs";

/** One measured quantity: ours against the baseline, as a ratio ours/baseline. */
export interface BenchRow {
  name: string;
  unit: string;
  ours: number;
  baseline: number;
  ratio: number;
  /** The ratio must be at most this; null when the issue sets no goal (reported only). */
  goal: number | null;
  met: boolean | null;
}

export interface BenchOptions {
  /** Fewer iterations: a smoke run, not numbers to quote. */
  quick: boolean;
  /** Run our process under --cpu-prof and print where its time goes. */
  profile: boolean;
  /** Where results (and profiles) go. */
  resultsDir: string;
  log: (msg: string) => void;
}

export interface BenchResult {
  rows: BenchRow[];
  /** How it was measured: counts, runtime, file system, ... (written to the JSON). */
  meta: Record<string, unknown>;
  /** Lines printed under the table. */
  notes: string[];
}

export interface BenchModule {
  name: string;
  description: string;
  run: (o: BenchOptions) => Promise<BenchResult>;
}

export function row(name: string, unit: string, ours: number, baseline: number, goal: number | null = null): BenchRow {
  const ratio = baseline === 0 ? Number.NaN : ours / baseline;
  return { name, unit, ours, baseline, ratio, goal, met: goal === null ? null : ratio <= goal };
}

// ---- statistics ----

/** Nearest-rank percentile of unsorted samples (p in [0, 100]). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

// ---- table ----

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return "—";
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}

export function formatTable(rows: readonly (BenchRow & { bench: string })[]): string {
  const head = ["bench", "measure", "ours", "baseline", "ratio", "goal", "met"];
  const body = rows.map((r) => [
    r.bench,
    r.name,
    `${fmtNum(r.ours)} ${r.unit}`,
    `${fmtNum(r.baseline)} ${r.unit}`,
    Number.isFinite(r.ratio) ? r.ratio.toFixed(2) : "—",
    r.goal === null ? "—" : `≤ ${r.goal.toFixed(2)}`,
    r.met === null ? "—" : r.met ? "yes" : "NO",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const numeric = new Set([2, 3, 4]);
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ").trimEnd();
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}

// ---- HTTP over a Unix socket, one keep-alive connection, sequential requests ----

export interface HttpResult {
  status: number;
  body: Buffer;
}

export class SocketClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });
  /** Requests sent so far. */
  count = 0;

  constructor(readonly socketPath: string) {}

  request(method: string, path: string, body?: Buffer): Promise<HttpResult> {
    this.count++;
    const headers: Record<string, string | number> = body ? { "content-type": "application/json", "content-length": body.length } : {};
    return new Promise((resolve, reject) => {
      const req = httpRequest({ socketPath: this.socketPath, agent: this.agent, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    });
  }

  /** A request that must answer `status`; returns its body. */
  async expect(status: number, method: string, path: string, body?: Buffer): Promise<Buffer> {
    const r = await this.request(method, path, body);
    if (r.status !== status) throw new Error(`${method} ${path} on ${this.socketPath}: expected ${status}, got ${r.status}: ${r.body.toString("utf8").slice(0, 300)}`);
    return r.body;
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---- child processes ----

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Stop with SIGTERM and wait for the exit (SIGKILL after `graceMs`). */
  stop: (graceMs?: number) => Promise<number | null>;
}

/**
 * Spawn `node args...` (this process's Node binary), stderr to `stderrFile`, and wait until a
 * stdout line matches `ready`. stdout is drained afterwards so the child never blocks on it.
 */
export function spawnNode(args: string[], opts: { ready: RegExp; stderrFile: string; timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<Child> {
  const errFd = openSync(opts.stderrFile, "a");
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "pipe", errFd], env: opts.env ?? process.env });
  closeSync(errFd);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const stop = async (graceMs = 10_000) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    proc.kill("SIGTERM");
    const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
    const code = await exited;
    clearTimeout(t);
    return code;
  };
  return new Promise((resolve, reject) => {
    let out = "";
    let ready = false;
    const timer = setTimeout(() => {
      void stop(1000);
      reject(new Error(`${args.join(" ")}: not ready after ${opts.timeoutMs ?? 30_000} ms; stdout: ${out}; stderr in ${opts.stderrFile}`));
    }, opts.timeoutMs ?? 30_000);
    const onData = (c: Buffer) => {
      if (ready) return; // drained, no longer kept
      out += c.toString("utf8");
      if (opts.ready.test(out)) {
        ready = true;
        clearTimeout(timer);
        proc.off("exit", onEarlyExit);
        resolve({ proc, pid: proc.pid!, stop });
      }
    };
    const onEarlyExit = (code: number | null) => {
      clearTimeout(timer);
      let err = "";
      try {
        err = readFileSync(opts.stderrFile, "utf8").slice(-2000);
      } catch {
        /* no stderr */
      }
      reject(new Error(`${args.join(" ")} exited with ${code} before it was ready; stdout: ${out}; stderr: ${err}`));
    };
    proc.stdout!.on("data", onData);
    proc.once("exit", onEarlyExit);
  });
}

// ---- memory ----

export interface Memory {
  /** Resident set size, KiB (VmRSS). */
  rssKiB: number;
  /** Proportional set size, KiB (shared pages divided among their users); undefined without smaps_rollup. */
  pssKiB?: number;
}

function kib(text: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

export function readMemory(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rssKiB = kib(status, "VmRSS");
  if (rssKiB === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  const rollup = `/proc/${pid}/smaps_rollup`;
  let pssKiB: number | undefined;
  if (existsSync(rollup)) {
    try {
      pssKiB = kib(readFileSync(rollup, "utf8"), "Pss");
    } catch {
      pssKiB = undefined; // not readable (another user's process, or a restricted /proc)
    }
  }
  return { rssKiB, pssKiB };
}

// ---- environment ----

const FS_TYPES: Record<number, string> = {
  0x01021994: "tmpfs",
  0xef53: "ext2/3/4",
  0x58465342: "xfs",
  0x9123683e: "btrfs",
  0x794c7630: "overlayfs",
  0x6969: "nfs",
  0x2fc12fc1: "zfs",
  0x65735546: "fuse",
};

/** The file system type under `dir` (fsync is free on tmpfs, which flatters durable writes). */
export function fsType(dir: string): string {
  try {
    const t = statfsSync(dir).type;
    return FS_TYPES[t] ?? `0x${t.toString(16)}`;
  } catch {
    return "unknown";
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
