// A real `caisson host` daemon process in workstation mode, for tests of what only a whole
// process shows (signals, second instances, bootstrap at start).
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export const CLI = fileURLToPath(new URL("../../src/cli/caisson.js", import.meta.url));

export interface Daemon {
  p: ChildProcess;
  log: () => string;
  exited: Promise<number | null>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Start `caisson host --root ROOT --socket SOCKET [args]` with `env` added. */
export function daemon(root: string, socket: string, env: Record<string, string> = {}, args: string[] = []): Daemon {
  const p = spawn(process.execPath, [CLI, "host", "--root", root, "--socket", socket, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  p.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  p.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
  return { p, log: () => out, exited };
}

/** Until the daemon says "API ready" (30 s at most; its exit or the deadline fails with its log). */
export async function ready(d: Daemon): Promise<void> {
  const t0 = Date.now();
  while (!d.log().includes("API ready")) {
    if (d.p.exitCode !== null) throw new Error(`daemon exited (${d.p.exitCode}) before it was ready:\n${d.log()}`);
    if (Date.now() - t0 > 30_000) throw new Error(`daemon not ready after 30 s:\n${d.log()}`);
    await sleep(50);
  }
}

export async function kill(d: Daemon): Promise<void> {
  if (d.p.exitCode === null && d.p.signalCode === null) d.p.kill("SIGKILL");
  await d.exited;
}

/** SIGTERM and wait for the exit (the daemon stops within its grace). */
export async function stopDaemon(d: Daemon): Promise<void> {
  if (d.p.exitCode === null && d.p.signalCode === null) d.p.kill("SIGTERM");
  await d.exited;
}
