// `apiclient update check|apply|cancel|rollback` and `apiclient reboot`: Bottlerocket's forms
// (README.md, "Updates"; the state machine behind them: src/update/README.md). Each action POSTs, then polls /updates/status until most_recent_command shows
// this command finished, with Bottlerocket's wait policies; the final status is printed as JSON
// and a failed command exits 1 with its stderr.
import { Option, type Command } from "commander";
import { ApiResponseError } from "../client.js";
import { printJson, UsageError, type Context, type Subcommand } from "../context.js";
import { UPDATE_ACTION, type Path } from "../../protocol/routes.js";
import type { CommandType as Cmd, UpdateStatus as Status } from "../../protocol/types.js";

const STATUS: Path = "/updates/status";
const REBOOT: Path = "/actions/reboot";

/**
 * Bottlerocket's apiclient: refresh 100 ms × 100, prepare 500 ms × 1200, activate/deactivate 100 ms × 50.
 * Rollback waits like prepare: when the other slot cannot boot it downloads and writes the previous version.
 */
export const WAIT: Record<Cmd, { intervalMs: number; attempts: number }> = {
  refresh: { intervalMs: 100, attempts: 100 },
  prepare: { intervalMs: 500, attempts: 1200 },
  activate: { intervalMs: 100, attempts: 50 },
  deactivate: { intervalMs: 100, attempts: 50 },
  rollback: { intervalMs: 500, attempts: 1200 },
};

async function status(ctx: Context): Promise<Status | undefined> {
  const res = await ctx.client().request("GET", STATUS);
  if (res.status === 404) return undefined; // UninitializedUpdateStatus: no command has run yet
  if (res.status !== 200) throw ApiResponseError.from(res);
  return JSON.parse(res.body) as Status;
}

export class CommandFailed extends Error {}

/** POST the action and wait for its outcome; returns the final status. */
export async function runUpdateCommand(ctx: Context, cmd: Cmd, wait = WAIT[cmd]): Promise<Status> {
  const before = (await status(ctx))?.most_recent_command;
  await ctx.client().call("POST", UPDATE_ACTION[cmd]);
  for (let i = 0; i < wait.attempts; i++) {
    const s = await status(ctx);
    const r = s?.most_recent_command;
    // Ours once it names this command and is not the record we saw before posting.
    const fresh = r && r.cmd_type === cmd && (r.timestamp !== before?.timestamp || r.cmd_type !== before?.cmd_type);
    if (s && r && fresh && r.cmd_status !== "Unknown") {
      if (r.cmd_status === "Failed") throw new CommandFailed(`update ${cmd} failed: ${r.stderr}`);
      return s;
    }
    await new Promise((res) => setTimeout(res, wait.intervalMs));
  }
  throw new CommandFailed(`update ${cmd} did not finish within ${(wait.intervalMs * wait.attempts) / 1000} s (it may still be running: apiclient -u /updates/status)`);
}

async function reboot(ctx: Context): Promise<void> {
  await ctx.client().call("POST", REBOOT);
}

interface UpdateOpts {
  check?: boolean;
  reboot?: boolean;
}

export const update: Subcommand = {
  name: "update",
  description: "check: refresh the list of updates; apply [--check] [--reboot]: download, write and activate the chosen update; cancel: deactivate it; rollback [--reboot]: go back to the version that ran before this one (the other slot if it can boot, else that version downloaded and written into it), on trial: a boot that fails its health gate falls back to this one",
  define(cmd: Command) {
    cmd
      .argument("<action>", "check | apply | cancel | rollback")
      .addOption(new Option("--check", "apply: refresh the list of updates first"))
      .addOption(new Option("--reboot", "apply, rollback: reboot afterwards"));
  },
  async run(ctx, cmd) {
    const action = cmd.args[0];
    const o = cmd.opts<UpdateOpts>();
    if (o.check && action !== "apply") throw new UsageError("--check goes with 'update apply'");
    if (o.reboot && action !== "apply" && action !== "rollback") throw new UsageError("--reboot goes with 'update apply' or 'update rollback'");
    try {
      let s: Status;
      switch (action) {
        case "check":
          s = await runUpdateCommand(ctx, "refresh");
          break;
        case "apply":
          if (o.check) await runUpdateCommand(ctx, "refresh");
          await runUpdateCommand(ctx, "prepare");
          s = await runUpdateCommand(ctx, "activate");
          break;
        case "cancel":
          s = await runUpdateCommand(ctx, "deactivate");
          break;
        case "rollback":
          s = await runUpdateCommand(ctx, "rollback");
          break;
        default:
          throw new UsageError(`unknown update action '${action}': check, apply, cancel or rollback`);
      }
      printJson(ctx, s);
      if (o.reboot) await reboot(ctx);
      return 0;
    } catch (e) {
      if (e instanceof CommandFailed) {
        ctx.io.stderr.write(`error: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
  },
};

export const rebootCmd: Subcommand = {
  name: "reboot",
  description: "reboot the host (POST /actions/reboot)",
  define() {},
  async run(ctx) {
    await reboot(ctx);
    return 0;
  },
};
