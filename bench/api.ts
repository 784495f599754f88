// The API benchmark (issue: API latency and memory against a bare server):
//
//   - `GET /settings` p50/p99 against a bare node:http server on a Unix socket returning the same
//     JSON bytes;
//   - `PATCH /settings` + `POST /tx/commit_and_apply` against a bare server doing the same durable
//     write (temp file + fsync + rename + directory fsync) of a document of the same size;
//   - memory (VmRSS, Pss) of each process after 10,000 requests.
//
// Both servers are separate processes on this Node binary; the host daemon is the real one
// (`caisson host`). One client (this process) sends sequential requests over one keep-alive
// connection per server, in alternating blocks (ours first in even blocks, bare first in odd), so
// machine noise lands on both alike. Same PATCH bodies for both: motd alternates between two
// values, so every commit changes a key and rewrites /etc/motd on our side.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../src/fsutil/package-root.js";
import { summariseProfile } from "./cpuprofile.js";
import { fsType, percentile, readMemory, row, sleep, spawnNode, SocketClient, type BenchModule, type BenchOptions, type BenchResult, type Child, type Memory } from "./lib.js";

const GOAL_P50 = 1.25;
const MEMORY_AFTER = 10_000;
const TX = "bench";

interface Plan {
  warmupGets: number;
  gets: number;
  getBlock: number;
  warmupPairs: number;
  pairs: number;
  pairBlock: number;
}

const FULL: Plan = { warmupGets: 400, gets: 2000, getBlock: 100, warmupPairs: 40, pairs: 300, pairBlock: 25 };
const QUICK: Plan = { warmupGets: 50, gets: 200, getBlock: 50, warmupPairs: 10, pairs: 30, pairBlock: 10 };

const BODIES = [Buffer.from(JSON.stringify({ motd: "Caisson benchmark: value A" })), Buffer.from(JSON.stringify({ motd: "Caisson benchmark: value B" }))];

interface Side {
  label: "ours" | "bare";
  client: SocketClient;
  child: Child;
  get: number[];
  patch: number[];
  commit: number[];
  pair: number[];
  pairsDone: number;
}

const ms = (t0: bigint, t1: bigint) => Number(t1 - t0) / 1e6;

async function gets(s: Side, n: number, record: boolean): Promise<void> {
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await s.client.expect(200, "GET", "/settings");
    if (record) s.get.push(ms(t0, process.hrtime.bigint()));
  }
}

async function pairs(s: Side, n: number, record: boolean): Promise<void> {
  for (let i = 0; i < n; i++) {
    const body = BODIES[s.pairsDone++ % BODIES.length]!;
    const t0 = process.hrtime.bigint();
    await s.client.expect(204, "PATCH", `/settings?tx=${TX}`, body);
    const t1 = process.hrtime.bigint();
    await s.client.expect(200, "POST", `/tx/commit_and_apply?tx=${TX}`);
    const t2 = process.hrtime.bigint();
    if (record) {
      s.patch.push(ms(t0, t1));
      s.commit.push(ms(t1, t2));
      s.pair.push(ms(t0, t2));
    }
  }
}

/** Run `block` on both sides, `total` items in blocks of `size`, alternating who goes first. */
async function interleaved(sides: [Side, Side], total: number, size: number, block: (s: Side, n: number) => Promise<void>): Promise<void> {
  for (let done = 0, b = 0; done < total; done += size, b++) {
    const n = Math.min(size, total - done);
    for (const s of b % 2 === 0 ? sides : [sides[1], sides[0]]) await block(s, n);
  }
}

/** Bring a side's request count to exactly `target`: nine GETs per PATCH+commit pair, then GETs. */
async function topUp(s: Side, target: number, blockRequests: number): Promise<void> {
  const stop = Math.min(target, s.client.count + blockRequests);
  while (s.client.count < stop) {
    if (stop - s.client.count >= 11) {
      await gets(s, 9, false);
      await pairs(s, 1, false);
    } else await gets(s, stop - s.client.count, false);
  }
}

function memoryRows(label: string, ours: Memory, bare: Memory) {
  const mib = (k: number) => k / 1024;
  const out = [row(`RSS ${label}`, "MiB", mib(ours.rssKiB), mib(bare.rssKiB))];
  if (ours.pssKiB !== undefined && bare.pssKiB !== undefined) out.push(row(`Pss ${label}`, "MiB", mib(ours.pssKiB), mib(bare.pssKiB)));
  return out;
}

function newestProfile(dir: string): string | undefined {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  return files.map((f) => join(dir, f)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

async function run(o: BenchOptions): Promise<BenchResult> {
  const root = packageRoot();
  const plan = o.quick ? QUICK : FULL;
  const version = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string }).version;
  // CAISSON_BENCH_DIR puts the servers' data on a chosen file system (fsync is free on tmpfs).
  const base = mkdtempSync(join(process.env.CAISSON_BENCH_DIR ?? tmpdir(), "caisson-bench-api-"));
  const profDir = join(o.resultsDir, "profiles", new Date().toISOString().replace(/[:.]/g, "-"));
  const prof = (name: string) => (o.profile ? ["--cpu-prof", `--cpu-prof-dir=${join(profDir, name)}`] : []);
  if (o.profile) mkdirSync(profDir, { recursive: true });

  // CAISSON_BENCH_ETC_TMPFS=1 lays the daemon's root out as the image does: /etc on tmpfs (it is
  // re-rendered at every boot), /var/lib/caisson (the datastore) on disk.
  let etcDir: string | undefined;
  if (process.env.CAISSON_BENCH_ETC_TMPFS === "1") {
    if (!existsSync("/dev/shm") || fsType("/dev/shm") !== "tmpfs") throw new Error("CAISSON_BENCH_ETC_TMPFS=1 needs /dev/shm on tmpfs");
    etcDir = mkdtempSync("/dev/shm/caisson-bench-etc-");
    mkdirSync(join(base, "root"));
    symlinkSync(etcDir, join(base, "root/etc"));
  }

  const children: Child[] = [];
  const clients: SocketClient[] = [];
  try {
    const oursSock = join(base, "api.sock");
    const oursChild = await spawnNode([...prof("ours"), join(root, "dist/src/cli/caisson.js"), "host", "--root", join(base, "root"), "--socket", oursSock], {
      ready: /API ready/,
      stderrFile: join(base, "daemon.log"),
    });
    children.push(oursChild);
    const oursClient = new SocketClient(oursSock);
    clients.push(oursClient);
    const settings = await oursClient.expect(200, "GET", "/settings");
    writeFileSync(join(base, "settings.json"), settings);

    const bareSock = join(base, "bare.sock");
    mkdirSync(join(base, "bare"));
    const bareChild = await spawnNode(
      [...prof("bare"), join(root, "dist/bench/bare-server.js"), "--socket", bareSock, "--settings", join(base, "settings.json"), "--dir", join(base, "bare"), "--datastore-version", version],
      { ready: /^ready$/m, stderrFile: join(base, "bare.log") },
    );
    children.push(bareChild);
    const bareClient = new SocketClient(bareSock);
    clients.push(bareClient);
    const bareSettings = await bareClient.expect(200, "GET", "/settings");
    if (!bareSettings.equals(settings)) throw new Error("the bare server does not answer GET /settings with the daemon's bytes");

    const mk = (label: Side["label"], client: SocketClient, child: Child): Side => ({ label, client, child, get: [], patch: [], commit: [], pair: [], pairsDone: 0 });
    const sides: [Side, Side] = [mk("ours", oursClient, oursChild), mk("bare", bareClient, bareChild)];
    const [ours, bare] = sides;

    await sleep(300);
    const idle = { ours: readMemory(ours.child.pid), bare: readMemory(bare.child.pid) };

    o.log(`api: warm-up (${plan.warmupGets} GETs, ${plan.warmupPairs} PATCH+commit pairs each)`);
    await interleaved(sides, plan.warmupGets, plan.getBlock, (s, n) => gets(s, n, false));
    await interleaved(sides, plan.warmupPairs, plan.pairBlock, (s, n) => pairs(s, n, false));
    o.log(`api: timing ${plan.gets} GETs and ${plan.pairs} PATCH+commit_and_apply pairs each, in alternating blocks`);
    await interleaved(sides, plan.gets, plan.getBlock, (s, n) => gets(s, n, true));
    await interleaved(sides, plan.pairs, plan.pairBlock, (s, n) => pairs(s, n, true));

    o.log(`api: topping both up to ${MEMORY_AFTER} requests for the memory reading`);
    while (ours.client.count < MEMORY_AFTER || bare.client.count < MEMORY_AFTER) {
      for (const s of sides) await topUp(s, MEMORY_AFTER, 500);
    }
    await sleep(1000);
    const after = { ours: readMemory(ours.child.pid), bare: readMemory(bare.child.pid) };

    // Sanity: both ended on the same settings, and wrote live documents of (nearly) the same size.
    const notes: string[] = [];
    const [endOurs, endBare] = [await ours.client.expect(200, "GET", "/settings"), await bare.client.expect(200, "GET", "/settings")];
    if (!endOurs.equals(endBare)) notes.push("warning: the two servers ended with different GET /settings bytes");
    const liveOurs = statSync(join(base, "root/var/lib/caisson/datastore/current/live.json")).size;
    const liveBare = statSync(join(base, "bare/live.json")).size;
    if (Math.abs(liveOurs - liveBare) > 0.05 * liveOurs) notes.push(`warning: live.json sizes differ: ours ${liveOurs} B, bare ${liveBare} B`);
    const fs = fsType(base);
    if (fs === "tmpfs") notes.push("warning: the servers' data is on tmpfs, where fsync costs nothing; set CAISSON_BENCH_DIR to a disk");
    if (o.quick) notes.push("quick run: too few samples to quote");
    notes.push(`daemon's /etc on ${etcDir ? "tmpfs, as on the image" : `${fs}, with its datastore (CAISSON_BENCH_ETC_TMPFS=1 puts it on tmpfs, as on the image)`}`);

    const p = (xs: number[], q: number) => percentile(xs, q);
    const rows = [
      row("GET /settings p50", "ms", p(ours.get, 50), p(bare.get, 50), GOAL_P50),
      row("GET /settings p99", "ms", p(ours.get, 99), p(bare.get, 99)),
      row("PATCH+commit_and_apply p50", "ms", p(ours.pair, 50), p(bare.pair, 50), GOAL_P50),
      row("PATCH+commit_and_apply p99", "ms", p(ours.pair, 99), p(bare.pair, 99)),
      row("  PATCH alone p50", "ms", p(ours.patch, 50), p(bare.patch, 50)),
      row("  commit_and_apply alone p50", "ms", p(ours.commit, 50), p(bare.commit, 50)),
      ...memoryRows("idle, after start", idle.ours, idle.bare),
      ...memoryRows(`after ${MEMORY_AFTER} requests`, after.ours, after.bare),
    ];

    for (const c of clients) c.close();
    clients.length = 0;
    for (const c of children) await c.stop();
    children.length = 0;

    if (o.profile) {
      for (const name of ["ours", "bare"]) {
        const own = (url: string) => url.includes(name === "ours" ? "/dist/src/" : "/dist/bench/");
        const f = newestProfile(join(profDir, name));
        if (!f) {
          o.log(`api: no CPU profile written for ${name}`);
          continue;
        }
        const s = summariseProfile(f, root, own, name === "ours" ? 25 : 8);
        o.log(`\napi: CPU profile of ${name === "ours" ? "the host daemon" : "the bare server"} (${f}):\n${s.lines.join("\n")}`);
        notes.push(`${name}: ${s.busyMs.toFixed(0)} ms busy CPU over the run (${f})`);
      }
    }

    return {
      rows,
      notes,
      meta: {
        node: process.version,
        fs,
        etc: etcDir ? "tmpfs" : fs,
        plan,
        requestsPerServer: MEMORY_AFTER,
        pairsPerServer: ours.pairsDone,
        liveJsonBytes: { ours: liveOurs, bare: liveBare },
        settingsBytes: settings.length,
        samples: { get: ours.get.length, pairs: ours.pair.length },
      },
    };
  } finally {
    for (const c of clients) c.close();
    for (const c of children) await c.stop();
    rmSync(base, { recursive: true, force: true });
    if (etcDir) rmSync(etcDir, { recursive: true, force: true });
  }
}

export const apiBench: BenchModule = {
  name: "api",
  description: "API latency (GET /settings; PATCH + commit_and_apply) and memory against a bare node:http server",
  run,
};
