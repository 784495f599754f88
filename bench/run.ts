// `npm run bench [-- NAME... ] [--quick] [--profile] [--strict] [--list]`
//
// Runs benchmark modules (each measures ours against a baseline in the same run and returns rows
// of ratios), prints one table, and writes bench/results/<name>.json per module plus
// bench/results/all.json (merged: a partial run replaces only its own modules' entries).
// To add a benchmark (image build, boot, update write, ...): write a module exporting a
// BenchModule (see lib.ts) and add it to MODULES.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { packageRoot } from "../src/fsutil/package-root.js";
import { apiBench } from "./api.js";
import { imageBench } from "./image.js";
import { updateBench } from "./update.js";
import { formatTable, type BenchModule, type BenchOptions, type BenchRow } from "./lib.js";

const MODULES: BenchModule[] = [apiBench, imageBench, updateBench];

interface ModuleReport {
  bench: string;
  description: string;
  date: string;
  node: string;
  cpus: number;
  rows: BenchRow[];
  meta: Record<string, unknown>;
  notes: string[];
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: "boolean", default: false },
      profile: { type: "boolean", default: false },
      strict: { type: "boolean", default: false },
      list: { type: "boolean", default: false },
    },
  });
  if (values.list) {
    for (const m of MODULES) console.log(`${m.name.padEnd(12)} ${m.description}`);
    return 0;
  }
  const unknown = positionals.filter((n) => !MODULES.some((m) => m.name === n));
  if (unknown.length) {
    console.error(`unknown benchmark(s): ${unknown.join(", ")}; available: ${MODULES.map((m) => m.name).join(", ")}`);
    return 2;
  }
  const selected = positionals.length ? MODULES.filter((m) => positionals.includes(m.name)) : MODULES;

  const resultsDir = join(packageRoot(), "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const opts: BenchOptions = { quick: values.quick, profile: values.profile, resultsDir, log: (m) => console.error(m) };

  const reports: ModuleReport[] = [];
  for (const m of selected) {
    console.error(`== ${m.name}: ${m.description}`);
    const r = await m.run(opts);
    const report: ModuleReport = { bench: m.name, description: m.description, date: new Date().toISOString(), node: process.version, cpus: cpus().length, ...r };
    writeFileSync(join(resultsDir, `${m.name}.json`), JSON.stringify(report, null, 2) + "\n");
    reports.push(report);
  }

  const allPath = join(resultsDir, "all.json");
  let all: Record<string, ModuleReport> = {};
  if (existsSync(allPath)) {
    try {
      all = (JSON.parse(readFileSync(allPath, "utf8")) as { benches?: Record<string, ModuleReport> }).benches ?? {};
    } catch {
      all = {};
    }
  }
  for (const r of reports) all[r.bench] = r;
  writeFileSync(allPath, JSON.stringify({ updated: new Date().toISOString(), benches: all }, null, 2) + "\n");

  const rows = reports.flatMap((r) => r.rows.map((x) => ({ ...x, bench: r.bench })));
  console.log(`\nBenchmarks (ratio = ours / baseline; same run, same machine; Node ${process.version}, ${cpus().length} CPUs)\n`);
  console.log(formatTable(rows));
  for (const r of reports) for (const n of r.notes) console.log(`${r.bench}: ${n}`);
  console.log(`\nresults: ${join("bench", "results")}/{${[...reports.map((r) => r.bench), "all"].join(",")}}.json`);
  const unmet = rows.filter((r) => r.met === false);
  return values.strict && unmet.length ? 1 : 0;
}

process.exitCode = await main();
