// `caisson repo ...`: the command-line face of repository.ts (the library does the work; this
// only parses options and prints results). Results go to stdout, progress to stderr.
import { Command, CommanderError } from "commander";
import { addUpdate, initRepository, readRepository, refreshRepository, rotateRoot, serveRepository, setMaxVersion, type RepositoryInfo } from "./repository.js";
import { updatePaths } from "../update/manifest.js";

const out = (s: string) => process.stdout.write(s + "\n");
const usage = (msg: string) => new CommanderError(2, "caisson.usage", msg);

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw usage(`${name}: a positive integer, got '${v}'`);
  return n;
}

function printRoles(info: RepositoryInfo): void {
  for (const [role, r] of Object.entries(info.roles)) {
    out(`  ${role.padEnd(9)} version ${String(r.version).padEnd(4)} expires ${r.expires}  (${r.keyids.length} key(s), threshold ${r.threshold})`);
  }
}

export function repoCommand(): Command {
  const repo = new Command("repo").description("the TUF update repository: publish updates, pull them back, re-sign, serve");

  repo
    .command("init")
    .description("create a repository with new ed25519 keys (DIR/keys is private; DIR/repository is what you publish)")
    .argument("<dir>")
    .option("--root-keys <n>", "number of root keys", "1")
    .option("--root-threshold <t>", "root signatures required", "1")
    .action(async (dir: string, o: { rootKeys: string; rootThreshold: string }) => {
      const info = await initRepository(dir, { rootKeys: positiveInt("--root-keys", o.rootKeys)!, rootThreshold: positiveInt("--root-threshold", o.rootThreshold)! });
      out(`created update repository ${info.dir}`);
      printRoles(info);
      out(`trusted root to ship in images (${updatePaths.trustedRoot}): ${info.rootJson}`);
    });

  repo
    .command("add")
    .description("publish a build (caisson build --out DIR) as an update, with waves and migrations")
    .argument("<dir>")
    .requiredOption("--image <outdir>", "the build's output directory (holds build.json)")
    .option("--version <semver>", "version to publish as (default: build.json's)")
    .option("--waves <file|name>", "wave policy: default, accelerated, ohno, slow-roll, none, or a TOML file", "default")
    .option("--max-version <semver>", "ceiling for this variant (default: the highest of this version and the current one)")
    .option("--migrations <dir>", "directory of *.mjs migrations introduced by this version")
    .option("--from <semver>", "the migration hop's lower version (default: the highest published one below)")
    .option("--replace", "replace an already published update of the same version")
    .action(async (dir: string, o: { image: string; version?: string; waves: string; maxVersion?: string; migrations?: string; from?: string; replace?: boolean }) => {
      const r = await addUpdate(dir, {
        buildDir: o.image,
        waves: o.waves,
        ...(o.version ? { version: o.version } : {}),
        ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
        ...(o.migrations ? { migrationsDir: o.migrations } : {}),
        ...(o.from ? { from: o.from } : {}),
        ...(o.replace ? { replace: true } : {}),
      });
      const u = r.update;
      out(`published ${u.variant} ${u.arch} ${u.version} (max_version ${u.max_version}); targets v${r.versions.targets}, snapshot v${r.versions.snapshot}, timestamp v${r.versions.timestamp}`);
      const waves = Object.entries(u.waves);
      out(waves.length ? `  waves: ${waves.map(([s, t]) => `seed ${s} from ${t}`).join(", ")}` : "  waves: none (every host at once)");
      if (r.hop) out(`  migrations ${r.hop.key}: ${r.hop.migrations.length ? r.hop.migrations.join(", ") : "none needed"}`);
    });

  repo
    .command("max-version")
    .description("set the ceiling of a variant's updates (lower it to pull a bad release back)")
    .argument("<dir>")
    .requiredOption("--variant <variant>")
    .option("--arch <arch>", "only this architecture")
    .requiredOption("--max-version <semver>")
    .action(async (dir: string, o: { variant: string; arch?: string; maxVersion: string }) => {
      const r = await setMaxVersion(dir, { variant: o.variant, maxVersion: o.maxVersion, ...(o.arch ? { arch: o.arch } : {}) });
      out(`max_version ${o.maxVersion} set on ${r.updated} update(s) of ${o.variant}`);
    });

  repo
    .command("refresh")
    .description("re-sign timestamp and snapshot (and targets if needed) with new expiries; run it well within a week")
    .argument("<dir>")
    .action(async (dir: string) => {
      const r = await refreshRepository(dir);
      out(`refreshed ${r.dir}${r.resignedTargets ? " (targets re-signed too)" : ""}`);
      printRoles(r);
    });

  repo
    .command("rotate-root")
    .description("new root keys: root N+1 signed by the old and new keys; old keys move to keys/retired")
    .argument("<dir>")
    .option("--root-keys <n>", "number of new root keys (default: as before)")
    .option("--root-threshold <t>", "root signatures required (default: as before)")
    .action(async (dir: string, o: { rootKeys?: string; rootThreshold?: string }) => {
      const keys = positiveInt("--root-keys", o.rootKeys);
      const threshold = positiveInt("--root-threshold", o.rootThreshold);
      const r = await rotateRoot(dir, { ...(keys ? { rootKeys: keys } : {}), ...(threshold ? { rootThreshold: threshold } : {}) });
      out(`root rotated to version ${r.roles.root.version}; retired ${r.retired.length} key(s)`);
      printRoles(r);
      out(`new trusted root for new images: ${r.rootJson} (hosts holding an older root follow the chain)`);
    });

  repo
    .command("show")
    .description("roles, versions, expiries and the manifest")
    .argument("<dir>")
    .action((dir: string) => {
      const r = readRepository(dir);
      printRoles(r);
      out(JSON.stringify(r.manifest, null, 2));
    });

  repo
    .command("serve")
    .description("serve DIR/repository over HTTP on loopback (QEMU guests reach it as 10.0.2.2)")
    .argument("<dir>")
    .option("--port <port>", "TCP port (0: any free one)", "8080")
    .action(async (dir: string, o: { port: string }) => {
      const port = Number(o.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw usage(`--port: 0..65535, got '${o.port}'`);
      const info = readRepository(dir);
      const s = await serveRepository(dir, port);
      const guest = (u: string) => u.replace("127.0.0.1", "10.0.2.2");
      out(`serving ${info.dir}/repository at ${s.metadataUrl.replace(/\/metadata$/, "")} (Ctrl-C to stop)`);
      out(`\n# user data for a host on this machine (QEMU user networking):\n[settings.updates]\nmetadata-base-url = "${guest(s.metadataUrl)}"\ntargets-base-url = "${guest(s.targetsUrl)}"\n`);
      out(`# for a workstation-mode host: metadata-base-url = "${s.metadataUrl}", targets-base-url = "${s.targetsUrl}"`);
      out(`# trusted root to ship in images (${updatePaths.trustedRoot}): ${info.rootJson}`);
      await new Promise<void>((done) => {
        const stop = () => void s.close().then(done);
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
    });

  return repo;
}
