#!/usr/bin/env node
// The main job: build the dev image (cached after the first time), boot it under QEMU with the
// sample user data, and drive the host through its API the way an operator would.
// Pass --keep to leave the host running afterwards (stop it with: caisson stop demo).
import { spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const caisson = join(root, "dist/src/cli/caisson.js");
const keep = process.argv.includes("--keep");
const out = join(root, "out/caisson-dev-demo");

const step = (s) => console.log(`\n\x1b[1m== ${s}\x1b[0m`);
function run(args, { quiet = false } = {}) {
  if (!quiet) console.log(`$ caisson ${args.map((a) => (/[\s"{}[\]]/.test(a) ? `'${a}'` : a)).join(" ")}`);
  const r = spawnSync(process.execPath, [caisson, ...args], { stdio: quiet ? "ignore" : ["ignore", "inherit", "inherit"] });
  if (r.status !== 0 && !quiet) console.log(`(exit ${r.status})`);
  return r.status;
}

step("building the dev image (Debian 12 packages, dm-verity A/B disk); the first build takes a few minutes");
if (run(["build", "--out", out]) !== 0) process.exit(1);

step("booting it under QEMU with examples/user-data.toml (UEFI, TCG here: about 2 minutes)");
run(["stop", "demo", "--force"], { quiet: true });
if (run(["launch", join(out, "disk.img"), "--name", "demo", "--user-data", join(root, "examples/user-data.toml")]) !== 0) process.exit(1);

try {
  step("the host applied its user data; its API answers over mutual TLS");
  run(["apiclient", "--name", "demo", "get", "settings.motd"]);
  run(["apiclient", "--name", "demo", "get", "/os"]);
  run(["apiclient", "--name", "demo", "get", 'settings.kernel.sysctl."vm.max_map_count"']);

  step("a setting changed live: previewed, applied, only the affected service restarted");
  run(["apiclient", "--name", "demo", "set", "--dry-run", "ntp.time-servers=[\"time.cloudflare.com\",\"pool.ntp.org\"]"]);
  run(["apiclient", "--name", "demo", "set", "ntp.time-servers=[\"time.cloudflare.com\",\"pool.ntp.org\"]"]);
  run(["apiclient", "--name", "demo", "raw", "-u", "/applier/history"]);

  step("bad input gets a clear error and changes nothing");
  run(["apiclient", "--name", "demo", "set", "motdd=typo"]);

  step("boot status: slot, health gate, SELinux");
  run(["apiclient", "--name", "demo", "get", "/boot-status"]);
} finally {
  if (!keep) {
    step("stopping the host (run with --keep to leave it up)");
    run(["stop", "demo"]);
  } else console.log("\nThe host is still running: caisson apiclient --name demo get; caisson stop demo");
}
