// `apiclient set KEY=VALUE...` or `apiclient set --json JSON`: change settings and apply them.
import type { Command } from "commander";
import { isObject } from "../../settings/keys.js";
import { UsageError, type Subcommand } from "../context.js";
import { keypair } from "../keypairs.js";
import { writeSettings, type Patch } from "../tx.js";

interface SetOpts {
  json?: string;
  dryRun?: boolean;
}

/** JSON relative to settings; a leading {"settings": {...}} is unwrapped. */
export function settingsFromJson(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`--json is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(v)) throw new UsageError("--json must be a JSON object, e.g. '{\"motd\": \"hi\"}'");
  const keys = Object.keys(v);
  if (keys.length === 1 && keys[0] === "settings") {
    if (!isObject(v.settings)) throw new UsageError('"settings" in --json must be an object');
    return v.settings;
  }
  return v;
}

export const set: Subcommand = {
  name: "set",
  description: "change settings (KEY=VALUE..., typed by the settings schema, or --json) and apply them",
  define(cmd: Command) {
    cmd
      .argument("[settings...]", 'KEY=VALUE, e.g. motd=hi or \'kubernetes.node-labels."example.com/role"=web\'')
      .option("-j, --json <json>", "settings as JSON relative to settings, e.g. '{\"motd\": \"hi\"}'")
      .option("--dry-run", "show the configuration diffs and restarts without changing anything");
  },
  async run(ctx, cmd) {
    const o = cmd.opts<SetOpts>();
    const args = cmd.args;
    let patch: Patch;
    if (o.json !== undefined) {
      if (args.length > 0) throw new UsageError("give KEY=VALUE arguments or --json, not both");
      patch = { uri: "/settings", body: settingsFromJson(o.json) };
    } else {
      if (args.length === 0) throw new UsageError("nothing to set: give KEY=VALUE arguments or --json");
      patch = { uri: "/settings/keypair", body: { request_payload: args.map(keypair) } };
    }
    await writeSettings(ctx, "set", [patch], o.dryRun === true);
    return 0;
  },
};
