#!/usr/bin/env node
// The main job until the bootable image exists: start a Caisson host in workstation mode with the
// sample user data, and drive it with apiclient the way an operator would.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const work = mkdtempSync(join(tmpdir(), "caisson-demo-"));
const hostRoot = join(work, "root");
const socket = join(work, "api.sock");
const caisson = join(root, "dist/src/cli/caisson.js");
const apiclient = join(root, "dist/src/apiclient/main.js");

const step = (s) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);
function run(args, { show = true } = {}) {
  console.log(`$ apiclient ${args.map((a) => (/[\s"{}]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  const r = spawnSync(process.execPath, [apiclient, "--socket-path", socket, ...args], { encoding: "utf8" });
  if (show) process.stdout.write(r.stdout);
  if (r.stderr) process.stdout.write(r.stderr);
  if (r.status !== 0) console.log(`(exit ${r.status})`);
  return r;
}

step(`starting a Caisson host in workstation mode (root ${hostRoot})`);
const host = spawn(process.execPath, [caisson, "host", "--root", hostRoot, "--socket", socket, "--user-data", join(root, "examples/user-data.toml")], {
  stdio: ["ignore", "pipe", "pipe"],
});
host.stderr.on("data", (d) => process.stdout.write(`  [host] ${d}`.replace(/\n(?=.)/g, "\n  [host] ")));
await new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error("host did not report 'API ready' within 30 s")), 30000);
  host.stdout.on("data", (d) => {
    process.stdout.write(`  [host] ${d}`);
    if (String(d).includes("API ready")) {
      clearTimeout(t);
      resolve();
    }
  });
  host.once("exit", (c) => reject(new Error(`host exited with ${c}`)));
});

try {
  step("user data applied at first boot");
  run(["get", "settings.motd"]);
  console.log(`$ cat ${hostRoot}/etc/motd`);
  process.stdout.write(readFileSync(join(hostRoot, "etc/motd"), "utf8"));
  run(["get", "/os"]);
  run(["get", 'settings.kernel.sysctl."vm.max_map_count"']);
  run(["get", "settings.updates"]);

  step("a change previewed (--dry-run), then made live");
  run(["set", "--dry-run", "motd=Changed live through the API"]);
  run(["set", "motd=Changed live through the API"]);
  console.log(`$ cat ${hostRoot}/etc/motd`);
  process.stdout.write(readFileSync(join(hostRoot, "etc/motd"), "utf8"));

  step("only the affected service restarts");
  run(["set", 'settings.dns.name-servers=["8.8.8.8"]']);
  const log = join(hostRoot, "run/caisson/restarts.log");
  if (existsSync(log)) console.log(`$ tail -n1 ${log}\n${readFileSync(log, "utf8").trim().split("\n").pop()}`);

  step("bad input gets a clear error and changes nothing");
  run(["set", "motdd=typo"]);
  run(["set", "settings.updates.seed=5000"]);
  run(["raw", "-u", "/boot-status"]);
} finally {
  host.kill("SIGTERM");
}
console.log(`\nDone. The host's files are under ${hostRoot}.`);
