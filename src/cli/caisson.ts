#!/usr/bin/env node
// `caisson`: the workstation and host tool. Thin: each subcommand calls into its own folder.
import { Command, Option, CommanderError } from "commander";
import { workstationDaemon, packageVersion } from "../host/daemon.js";
import { fileSource } from "../userdata/userdata.js";
import { join } from "node:path";
import { isVariant, VARIANTS } from "../settings/schema.js";
import { settingsReference } from "../settings/docs.js";
import { apiReference } from "../protocol/docs.js";
import { resolve } from "node:path";
import { buildImage } from "../image/build.js";
import { launch, listInstances, readInstance, stop, instanceTarget } from "../launch/instances.js";
import { runApiclient } from "../apiclient/index.js";
import { sharedCacheDir } from "../fsutil/package-root.js";
import { repoCommand } from "../repo/cli.js";
import { hostPaths } from "../fsutil/paths.js";

const program = new Command("caisson")
  .description("Caisson: build, run and manage Caisson hosts")
  .version(packageVersion())
  .enablePositionalOptions()
  .exitOverride()
  .configureOutput({ outputError: (s, write) => write(s) });

program
  .command("host")
  .description("run the host daemon (settings, applier, API) against a root directory")
  .requiredOption("--root <dir>", "the host's root: / on the image, any directory in workstation mode")
  .requiredOption("--socket <path>", "Unix socket the API listens on")
  .addOption(new Option("--variant <variant>", "variant").choices([...VARIANTS]).default("dev"))
  .option("--user-data <file>", "TOML user data applied at first boot (repeatable; later files win)", (v: string, acc: string[]) => [...acc, v], [] as string[])
  .option("--socket-gid <gid>", "group owning the socket (default: the `api` group if it exists)")
  .addOption(new Option("--service-manager <kind>", "systemctl on the image; record in workstation mode").choices(["systemctl", "record"]))
  .option("--os-version <X.Y.Z>", "the OS version this host reports and updates from (workstation mode)", packageVersion())
  .action(async (o: { root: string; socket: string; variant: string; userData: string[]; socketGid?: string; serviceManager?: "systemctl" | "record"; osVersion: string }) => {
    if (!isVariant(o.variant)) throw new Error(`unknown variant ${o.variant}`);
    const root = resolve(o.root);
    await workstationDaemon({
      root,
      socket: resolve(o.socket),
      variant: o.variant,
      // Ordered: the data partition's local file, then files given on the command line (later wins).
      userData: [fileSource(join(root, hostPaths.localUserData)), ...o.userData.map((f) => fileSource(resolve(f)))],
      socketGid: o.socketGid === undefined ? undefined : Number(o.socketGid),
      serviceManager: o.serviceManager ?? (root === "/" ? "systemctl" : "record"),
      version: o.osVersion,
    });
  });

program
  .command("build")
  .description("build a bootable Caisson disk image from Debian 12 packages")
  .addOption(new Option("--variant <variant>", "variant").choices([...VARIANTS]).default("dev"))
  .option("--version <semver>", "version of the OS (X.Y.Z)", packageVersion())
  .option("--out <dir>", "output directory (default: out/caisson-<variant>-<version>)")
  .option("--cache <dir>", "cache of package trees", join(sharedCacheDir(), "image"))
  // One try, as Bottlerocket's signpost gives a new partition set (tries_left=1): a slot whose
  // kernel fails to load is then spent at once, and the firmware's second run of systemd-boot in
  // the same power-on boots the other slot instead of stalling at its boot menu.
  .option("--boot-tries <n>", "boot tries given to a new slot before the bootloader falls back", "1")
  .option("--os-name <name>", "NAME in os-release (rebranding a custom build)", "Caisson")
  .option("--os-id <id>", "ID in os-release", "caisson")
  .option("--home-url <url>", "HOME_URL in os-release")
  .option("--support-url <url>", "SUPPORT_URL in os-release")
  .option("--bug-report-url <url>", "BUG_REPORT_URL in os-release")
  .option("--build-id <id>", "BUILD_ID in os-release (default: derived from the inputs)")
  .option("--slot-only", "write only the slot artifacts (root, verity, kernel, initrd), not a disk")
  .option("--update-root <file>", "the update repository's TUF root.json the image trusts (caisson repo init DIR: DIR/repository/metadata/1.root.json)")
  .addOption(new Option("--selinux <mode>", "SELinux mode (permissive: only to collect denials while writing policy)").choices(["enforcing", "permissive"]).default("enforcing"))
  .action(async (o: Record<string, string | undefined>) => {
    if (!isVariant(o.variant!)) throw new Error(`unknown variant ${o.variant}`);
    if (o.variant !== "dev") throw new Error(`variant ${o.variant} cannot be built yet: its kubelet is not packaged for Debian 12 (see the issues); build --variant dev`);
    const tries = Number(o.bootTries);
    if (!Number.isInteger(tries) || tries < 1 || tries > 9) throw new CommanderError(2, "caisson.usage", "--boot-tries must be 1-9");
    if (!/^[a-z0-9._-]+$/.test(o.osId!)) throw new CommanderError(2, "caisson.usage", "--os-id must be lower-case letters, digits, '.', '_' or '-'");
    await buildImage({
      variant: o.variant,
      version: o.version!,
      out: o.out ?? join("out", `caisson-${o.variant}-${o.version}`),
      cacheDir: resolve(o.cache!),
      bootTries: tries,
      branding: { name: o.osName!, id: o.osId!, homeUrl: o.homeUrl, supportUrl: o.supportUrl, bugReportUrl: o.bugReportUrl },
      buildId: o.buildId,
      slotOnly: Boolean(o.slotOnly),
      updateRoot: o.updateRoot ? resolve(o.updateRoot) : undefined,
      selinux: o.selinux as "enforcing" | "permissive",
    });
  });

program
  .command("launch")
  .description("boot a Caisson disk image under QEMU and wait until its API answers")
  .argument("<image>", "the disk image 'caisson build --out DIR' wrote (DIR/disk.img)")
  .option("--name <name>", "instance name", "caisson")
  .option("--user-data <file>", "TOML user data, handed over through QEMU fw_cfg")
  .option("--memory <MiB>", "guest memory", "1024")
  .option("--disk-size <GiB>", "guest disk size (the data partition grows to fill it at first boot)", "8")
  .addOption(new Option("--accel <accel>", "accelerator: auto probes KVM with a time limit").choices(["auto", "kvm", "tcg"]).default("auto"))
  .option("--timeout <seconds>", "how long to wait for the API", "420")
  .action(async (image: string, o: { name: string; userData?: string; memory: string; diskSize: string; accel: "auto" | "kvm" | "tcg"; timeout: string }) => {
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(o.name)) throw new CommanderError(2, "caisson.usage", "--name: lower-case letters, digits and '-'");
    const diskGiB = Number(o.diskSize);
    if (!Number.isInteger(diskGiB) || diskGiB < 3 || diskGiB > 16384) throw new CommanderError(2, "caisson.usage", "--disk-size: whole GiB, at least 3 (the image is 2.7 GiB)");
    const i = await launch({ image, name: o.name, userData: o.userData, memoryMiB: Number(o.memory), diskGiB, accel: o.accel, timeoutMs: Number(o.timeout) * 1000 });
    process.stdout.write(`${i.name} is up: caisson apiclient --name ${i.name} get settings.motd\n`);
  });

program
  .command("stop")
  .description("power off a launched instance (ACPI, then force)")
  .argument("<name>")
  .option("--force", "pull the plug at once")
  .action(async (name: string, o: { force?: boolean }) => {
    await stop(name, o.force ? 0 : 20_000);
  });

program
  .command("list")
  .description("list launched instances")
  .action(() => {
    const rows = listInstances();
    if (!rows.length) return void process.stdout.write("no instances\n");
    for (const i of rows) process.stdout.write(`${i.name}\t${i.running ? "running" : "stopped"}\tpid ${i.pid}\t${i.accel}\thttps://127.0.0.1:${i.apiPort}\t${i.image}\n`);
  });

program
  .command("apiclient")
  .description("run an apiclient command against a launched host (mutual TLS; no shell on the host)")
  .requiredOption("--name <name>", "instance name")
  .passThroughOptions()
  .helpOption(false)
  .argument("[args...]", "apiclient arguments, e.g. get settings.motd")
  .action(async (args: string[], o: { name: string }) => {
    const inst = readInstance(o.name);
    process.exitCode = await runApiclient(args, { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }, { target: () => instanceTarget(inst) });
  });

program
  .command("docs")
  .description("print generated documentation")
  .argument("<what>", "settings: the settings reference; api: the API reference (Markdown)")
  .action((what: string) => {
    const docs: Record<string, () => string> = { settings: settingsReference, api: apiReference };
    const make = Object.hasOwn(docs, what) ? docs[what] : undefined;
    if (!make) throw new CommanderError(2, "caisson.usage", `unknown document '${what}': try 'settings' or 'api'`);
    process.stdout.write(make());
  });

// The update repository tool (src/repo/cli.ts): caisson repo init|add|max-version|refresh|rotate-root|show|serve.
program.addCommand(repoCommand().copyInheritedSettings(program));

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof CommanderError) {
    if (e.code === "commander.helpDisplayed" || e.code === "commander.version") process.exit(0);
    if (e.code === "caisson.usage") process.stderr.write(`error: ${e.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`caisson: ${(e as Error).message}\n`);
  process.exit(1);
}
