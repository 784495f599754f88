// runApiclient: parse argv with commander, dispatch to one subcommand module, map errors to exit
// codes (2 for usage, 1 for anything the API or the inputs refused).
import { Command, CommanderError } from "commander";
import { ApiClient, ApiResponseError, ConnectError, type HttpTarget, type Transport } from "./client.js";
import { SUBCOMMANDS } from "./commands/index.js";
import { UsageError, type Context, type Globals, type Io } from "./context.js";
import { InputError } from "./input.js";
import { randomSuffix } from "./tx.js";

export const DEFAULT_SOCKET = "/run/api.sock";

export interface ApiclientDeps {
  env?: Record<string, string | undefined>;
  /** Where requests go; defaults to the Unix socket named by --socket-path. */
  target?: (g: Globals) => HttpTarget | Transport;
  txSuffix?: () => string;
}

/** Bottlerocket lets `raw` be omitted (`apiclient -u /settings`): insert it before its first option. */
function withDefaultSubcommand(argv: string[]): string[] {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-s" || a === "--socket-path") i++;
    else if (a === "-v" || a === "--verbose" || a.startsWith("--socket-path=")) continue;
    else if (a.startsWith("-") && a !== "-h" && a !== "--help") return [...argv.slice(0, i), "raw", ...argv.slice(i)];
    else return argv;
  }
  return argv;
}

export async function runApiclient(argv: string[], io: Io, deps: ApiclientDeps = {}): Promise<number> {
  const env = deps.env ?? process.env;
  let code = 0;
  const program = new Command("apiclient")
    .description("Talk to the Caisson host API")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError("(run with --help for usage)")
    .option("-s, --socket-path <path>", "API socket (env CAISSON_API_SOCKET)", env.CAISSON_API_SOCKET || DEFAULT_SOCKET)
    .option("-v, --verbose", "show requests and response statuses on stderr", false);

  let client: ApiClient | undefined;
  const ctx: Context = {
    io,
    get globals(): Globals {
      const o = program.opts<{ socketPath: string; verbose: boolean }>();
      return { socketPath: o.socketPath, verbose: o.verbose };
    },
    client() {
      const g = ctx.globals;
      const trace = g.verbose ? (line: string) => void io.stderr.write(line + "\n") : undefined;
      // agent: false — one connection per request, so nothing keeps the process alive or goes stale.
      client ??= new ApiClient(deps.target?.(g) ?? { socketPath: g.socketPath, agent: false }, trace);
      return client;
    },
    txSuffix: deps.txSuffix ?? (() => randomSuffix()),
  };

  for (const sub of SUBCOMMANDS) {
    const cmd = program.command(sub.name).description(sub.description);
    sub.define(cmd);
    cmd.action(async () => {
      code = await sub.run(ctx, cmd);
    });
  }

  try {
    await program.parseAsync(withDefaultSubcommand(argv), { from: "user" });
    return code;
  } catch (e) {
    // Commander has already printed help or the error; --help exits 0, no subcommand is an error.
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      io.stderr.write(`error: ${e.message}\n(run with --help for usage)\n`);
      return 2;
    }
    if (e instanceof ApiResponseError) io.stderr.write(`error: ${e.describe()}\n`);
    else if (e instanceof ConnectError || e instanceof InputError) io.stderr.write(`error: ${e.message}\n`);
    else io.stderr.write(`error: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  }
}
