#!/usr/bin/env node
// `caisson`: the workstation and host tool. Thin: each subcommand calls into its own folder.
import { Command, Option, CommanderError } from "commander";
import { runDaemon, packageVersion } from "../host/daemon.js";
import { isVariant, VARIANTS } from "../settings/schema.js";
import { settingsReference } from "../settings/docs.js";
import { resolve } from "node:path";

const program = new Command("caisson")
  .description("Caisson: build, run and manage Caisson hosts")
  .version(packageVersion())
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
  .action(async (o: { root: string; socket: string; variant: string; userData: string[]; socketGid?: string; serviceManager?: "systemctl" | "record" }) => {
    if (!isVariant(o.variant)) throw new Error(`unknown variant ${o.variant}`);
    const root = resolve(o.root);
    await runDaemon({
      root,
      socket: resolve(o.socket),
      variant: o.variant,
      userData: o.userData.map((f) => resolve(f)),
      socketGid: o.socketGid === undefined ? undefined : Number(o.socketGid),
      serviceManager: o.serviceManager ?? (root === "/" ? "systemctl" : "record"),
    });
  });

program
  .command("docs")
  .description("print generated documentation")
  .argument("<what>", "settings: the settings reference (Markdown)")
  .action((what: string) => {
    if (what !== "settings") throw new CommanderError(2, "caisson.usage", `unknown document '${what}': try 'settings'`);
    process.stdout.write(settingsReference());
  });

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
