// `apiclient apply [--from-file F]... [--dry-run]`: apply user-data-style documents in one transaction.
import { readFile } from "node:fs/promises";
import type { Readable } from "node:stream";
import type { Command } from "commander";
import type { Subcommand } from "../context.js";
import { InputError, parseSettingsDocument } from "../input.js";
import { writeSettings } from "../tx.js";

interface ApplyOpts {
  fromFile: string[];
  dryRun?: boolean;
}

async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === "string" ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString("utf8");
}

export const apply: Subcommand = {
  name: "apply",
  description: "apply settings from TOML (user-data form, [settings] table) or JSON files, or stdin",
  define(cmd: Command) {
    cmd
      .option("--from-file <file>", "file to read; repeatable; - or none reads stdin", (f: string, acc: string[]) => [...acc, f], [] as string[])
      .option("--dry-run", "show the configuration diffs and restarts without changing anything");
  },
  async run(ctx, cmd) {
    const o = cmd.opts<ApplyOpts>();
    const sources = o.fromFile.length > 0 ? o.fromFile : ["-"];
    // Parse everything before the first PATCH so a bad file changes nothing.
    const docs = [];
    let stdin: string | undefined;
    for (const src of sources) {
      let text: string;
      if (src === "-") {
        stdin ??= await readAll(ctx.io.stdin);
        text = stdin;
      } else {
        try {
          text = await readFile(src, "utf8");
        } catch (e) {
          throw new InputError(`${src}: ${(e as Error).message}`);
        }
      }
      docs.push(parseSettingsDocument(text, src === "-" ? "<stdin>" : src));
    }
    // An empty [settings] has nothing to commit (the API would answer 422).
    const patches = docs.filter((d) => Object.keys(d).length > 0).map((d) => ({ uri: "/settings" as const, body: d }));
    if (patches.length === 0) {
      ctx.io.stderr.write("nothing to apply: the settings are empty\n");
      return 0;
    }
    await writeSettings(ctx, "apply", patches, o.dryRun === true);
    return 0;
  },
};
