// Memory of the resident Caisson agents (and of the in-guest benchmark baseline, when it runs),
// from /proc: proportional set size (PSS) is what a process really costs when pages are shared.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename } from "node:path";

export interface ProcessMemory {
  pid: number;
  program: string;
  pssKiB: number;
  rssKiB: number;
}

export interface MemoryReport {
  /** Our resident agents (the host daemon). */
  agents: ProcessMemory[];
  agentsPssKiB: number;
  /** The benchmark's bare node:http server, when it runs. */
  baseline?: ProcessMemory;
  /** Other processes of the runtime (the health gate, an apiclient): short-lived, not counted. */
  transient: ProcessMemory[];
}

function field(rollup: string, name: string): number {
  return Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? Number.NaN);
}

export function memoryReport(runtime = "/usr/lib/caisson/node", proc = "/proc"): MemoryReport {
  const report: MemoryReport = { agents: [], agentsPssKiB: 0, transient: [] };
  for (const d of readdirSync(proc)) {
    if (!/^\d+$/.test(d)) continue;
    let argv: string[];
    let rollup: string;
    try {
      argv = readFileSync(`${proc}/${d}/cmdline`, "utf8").split("\0");
      if (argv[0] !== runtime || !existsSync(`${proc}/${d}/smaps_rollup`)) continue;
      rollup = readFileSync(`${proc}/${d}/smaps_rollup`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    const p: ProcessMemory = { pid: Number(d), program: [basename(argv[1] ?? ""), argv[2] ?? ""].join(" ").trim(), pssKiB: field(rollup, "Pss"), rssKiB: field(rollup, "Rss") };
    if (p.program.startsWith("bench-baseline")) report.baseline = p;
    else if (p.program === "caisson-host.mjs daemon") report.agents.push(p);
    else report.transient.push(p);
  }
  report.agentsPssKiB = report.agents.reduce((s, p) => s + p.pssKiB, 0);
  return report;
}
