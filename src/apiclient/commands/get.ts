// `apiclient get [PREFIX...]` or `apiclient get /URI`: read the model as pretty JSON.
import type { Command } from "commander";
import { deepMerge, isObject, type JsonObject } from "../../settings/keys.js";
import { printJson, UsageError, type Subcommand } from "../context.js";
import { fullPrefix } from "../keypairs.js";

export const get: Subcommand = {
  name: "get",
  description: "print settings (and os, services, configuration-files) by prefix, or GET one /URI",
  define(cmd: Command) {
    cmd.argument("[prefixes...]", 'e.g. motd, settings.kernel.sysctl."vm.max_map_count", os, or /updates/status');
  },
  async run(ctx, cmd) {
    const prefixes = cmd.args;
    const client = ctx.client();
    if (prefixes.some((p) => p.startsWith("/"))) {
      if (prefixes.length > 1) throw new UsageError("a /URI must be the only argument of get");
      printJson(ctx, await client.call("GET", prefixes[0]!));
      return 0;
    }
    if (prefixes.length === 0) {
      // Bottlerocket shows settings and os; services and configuration-files only on request.
      const all = await client.call("GET", "/");
      const out: JsonObject = {};
      if (isObject(all)) for (const k of ["settings", "os"]) if (all[k] !== undefined) out[k] = all[k];
      printJson(ctx, out);
      return 0;
    }
    const uris = prefixes.map((p) => `/?prefix=${encodeURIComponent(fullPrefix(p))}`);
    let merged: JsonObject = {};
    for (const uri of uris) {
      const part = await client.call("GET", uri);
      if (isObject(part)) merged = deepMerge(merged, part);
    }
    printJson(ctx, merged);
    return 0;
  },
};
