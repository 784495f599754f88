// `apiclient raw -u URI [-m METHOD] [-d BODY]`: one request, body printed as is.
import { Option, type Command } from "commander";
import { ApiResponseError } from "../client.js";
import { UsageError, type Subcommand } from "../context.js";

interface RawOpts {
  uri: string;
  method?: string;
  X?: string;
  data?: string;
}

export const raw: Subcommand = {
  name: "raw",
  description: "send one request to the API and print the response body as is (the default subcommand)",
  define(cmd: Command) {
    cmd
      .requiredOption("-u, --uri <uri>", "request URI, with any query, e.g. /settings?keys=settings.motd")
      .option("-m, --method <method>", "HTTP method (default GET)")
      // curl's spelling, as Bottlerocket accepts it too.
      .addOption(new Option("-X <method>", "same as --method").hideHelp())
      .option("-d, --data <body>", "request body");
  },
  async run(ctx, cmd) {
    const o = cmd.opts<RawOpts>();
    if (o.method && o.X && o.method !== o.X) throw new UsageError("give the method once (-m or -X)");
    if (!o.uri.startsWith("/")) throw new UsageError(`the URI must start with '/': ${o.uri}`);
    const method = (o.method ?? o.X ?? "GET").toUpperCase();
    const res = await ctx.client().request(method, o.uri, o.data);
    if (res.status < 200 || res.status > 299) {
      ctx.io.stderr.write(`error: ${ApiResponseError.from(res).describe()}\n`);
      return 1;
    }
    if (res.body) ctx.io.stdout.write(res.body.endsWith("\n") ? res.body : res.body + "\n");
    return 0;
  },
};
