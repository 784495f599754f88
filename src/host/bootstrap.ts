// Bootstrap commands (Bottlerocket's `bootstrap-commands`): apiclient invocations that prepare a
// host at each start, after the API is up and before the health verdict (and, next, before host
// containers). In name order, serially; within one entry, commands in order, and the first that
// fails stops the rest of that entry. `once` runs at the next start only, then the setting is
// turned to `off` (as Bottlerocket does); `always` runs at every start. A failed `essential`
// entry fails the health verdict: a boot on trial falls back, a blessed one stays up, degraded.
// Changes take effect at the next start, as Bottlerocket's.
import { PassThrough, Readable } from "node:stream";
import type { BootstrapCommandReport } from "../protocol/types.js";
import { asSettings, type Settings } from "../settings/schema.js";
import type { JsonObject } from "../settings/keys.js";
import { runApiclient } from "../apiclient/cli.js";

/** One command gets this long (a hung command must not hold the boot). */
export const BOOTSTRAP_COMMAND_TIMEOUT_MS = 120_000;

export interface BootstrapOptions {
  settings: () => JsonObject;
  /** The API socket the commands talk to (the daemon's own). */
  socket: string;
  /** Turn a `once` entry off after it ran. */
  turnOff: (name: string) => Promise<void>;
  log: (msg: string) => void;
  timeoutMs?: number;
}

type Entry = NonNullable<Settings["bootstrap-commands"]>[string];

export async function runBootstrapCommands(o: BootstrapOptions): Promise<BootstrapCommandReport[]> {
  const all = asSettings(o.settings())["bootstrap-commands"] ?? {};
  const reports: BootstrapCommandReport[] = [];
  for (const name of Object.keys(all).sort()) {
    const e: Entry = all[name]!;
    if (e.mode !== "once" && e.mode !== "always") continue; // off, or no mode: nothing to run
    const report = await runEntry(name, e, o);
    reports.push(report);
    if (e.mode === "once") {
      try {
        await o.turnOff(name);
      } catch (err) {
        o.log(`bootstrap command ${name}: ran once, but its mode could not be set to off: ${(err as Error).message}`);
      }
    }
  }
  return reports;
}

async function runEntry(name: string, e: Entry, o: BootstrapOptions): Promise<BootstrapCommandReport> {
  const base = { name, mode: e.mode as "once" | "always", essential: e.essential === true };
  let ran = 0;
  for (const argv of e.commands ?? []) {
    ran++;
    const shown = argv.join(" ").slice(0, 200);
    const err: string[] = [];
    // No stdin (an `apply` without --from-file reads nothing); output is dropped, errors kept.
    const stdout = new PassThrough();
    stdout.resume();
    const stderr = new PassThrough();
    stderr.on("data", (c: Buffer) => err.push(c.toString()));
    const io = { stdout, stderr, stdin: Readable.from([]) };
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = o.timeoutMs ?? BOOTSTRAP_COMMAND_TIMEOUT_MS;
    const code = await Promise.race([
      runApiclient(argv.slice(1), io, { target: () => ({ socketPath: o.socket, agent: false, timeoutMs }) }).catch((x: Error) => {
        err.push(x.message);
        return 1;
      }),
      new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), timeoutMs))),
    ]).finally(() => clearTimeout(timer));
    if (code === 0) {
      o.log(`bootstrap command ${name}: '${shown}' done`);
      continue;
    }
    const why = code === "timeout" ? `did not finish within ${timeoutMs / 1000} s` : `exited ${code}: ${err.join("").trim().slice(0, 500) || "no message"}`;
    const error = `'${shown}' ${why}`;
    o.log(`bootstrap command ${name}${base.essential ? " (essential)" : ""} FAILED: ${error}`);
    return { ...base, state: "failed", ran, error };
  }
  return { ...base, state: "ok", ran };
}
