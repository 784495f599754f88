// Memory of the resident Caisson agents (and of the in-guest benchmark baseline, when it runs),
// from /proc: proportional set size (PSS) is what a process really costs when pages are shared.
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { basename } from "node:path";
import type { MemoryReport, ProcessMemory } from "../protocol/types.js";

function field(rollup: string, name: string): number {
  return Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(rollup)?.[1] ?? Number.NaN);
}

export function memoryReport(runtime = "/usr/lib/caisson/node", proc = "/proc"): MemoryReport {
  const report: MemoryReport = { agents: [], "agents-pss-kib": 0, transient: [] };
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
    const p: ProcessMemory = { pid: Number(d), program: [basename(argv[1] ?? ""), argv[2] ?? ""].join(" ").trim(), "pss-kib": field(rollup, "Pss"), "rss-kib": field(rollup, "Rss") };
    if (p.program.startsWith("bench-baseline")) report.baseline = p;
    else if (p.program === "caisson-host.mjs daemon") report.agents.push(p);
    else report.transient.push(p);
  }
  report["agents-pss-kib"] = report.agents.reduce((s, p) => s + p["pss-kib"], 0);
  return report;
}
