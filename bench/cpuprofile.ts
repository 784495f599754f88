// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went: self time per function,
// and inclusive time of the project's own functions (dist/src/...), as shares of the busy time.
import { readFileSync } from "node:fs";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const IDLE = new Set(["(idle)", "(root)"]);

function label(n: ProfileNode, root: string): string {
  const f = n.callFrame;
  const name = f.functionName || "(anonymous)";
  if (!f.url) return name;
  const url = f.url.replace(/^file:\/\//, "").replace(root, "").replace(/^\/+/, "");
  return `${name} ${url}:${f.lineNumber + 1}`;
}

export interface ProfileSummary {
  /** Sampled time, ms, not counting idle. */
  busyMs: number;
  totalMs: number;
  lines: string[];
}

/** Summarise a profile; `root` is stripped from file URLs, `own` selects the project's frames. */
export function summariseProfile(path: string, root: string, own: (url: string) => boolean, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(path, "utf8")) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let busy = 0;
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    total += dt;
    const node = byId.get(p.samples[i]!);
    if (!node || IDLE.has(node.callFrame.functionName)) continue;
    busy += dt;
    const l = label(node, root);
    self.set(l, (self.get(l) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id)!;
      if (!own(n.callFrame.url)) continue;
      const k = label(n, root);
      if (seen.has(k)) continue;
      seen.add(k);
      inclusive.set(k, (inclusive.get(k) ?? 0) + dt);
    }
  }
  const pct = (us: number) => `${((100 * us) / Math.max(busy, 1)).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms`;
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = [
    `busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled`,
    "self time (share of busy):",
    ...sorted(self).map(([k, us]) => `  ${pct(us)}  ${k}`),
    "inclusive time of our own functions:",
    ...sorted(inclusive).map(([k, us]) => `  ${pct(us)}  ${k}`),
  ];
  return { busyMs: busy / 1000, totalMs: total / 1000, lines };
}
