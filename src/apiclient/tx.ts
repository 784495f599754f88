// The write path shared by `set` and `apply`: PATCH into a private transaction (so concurrent
// pending changes by others are never committed by accident), then commit_and_apply, or a dry
// run that reports what would change. Any failure after the first PATCH deletes the transaction.
import { randomInt } from "node:crypto";
import { ApiResponseError } from "./client.js";
import type { Context } from "./context.js";
import type { Path } from "../protocol/routes.js";
import type { DryRun } from "../protocol/types.js";

const ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

export function randomSuffix(n = 16): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALNUM[randomInt(ALNUM.length)];
  return s;
}

export interface Patch {
  uri: Extract<Path, "/settings" | "/settings/keypair">;
  body: unknown;
}

const COMMIT_AND_APPLY: Path = "/tx/commit_and_apply";
const TX: Path = "/tx";

/** A dry run's answer as read: a server of another version may leave fields out. */
type DryRunResult = Partial<DryRun>;

export async function writeSettings(ctx: Context, kind: "set" | "apply", patches: Patch[], dryRun: boolean): Promise<void> {
  const tx = `apiclient-${kind}-${ctx.txSuffix()}`;
  const q = `tx=${encodeURIComponent(tx)}`;
  const client = ctx.client();
  let patched = false;
  try {
    for (const p of patches) {
      patched = true;
      await client.call("PATCH", `${p.uri}?${q}`, p.body);
    }
    if (!dryRun) {
      await client.call("POST", `${COMMIT_AND_APPLY}?${q}`);
      return;
    }
    const result = (await client.call("POST", `${COMMIT_AND_APPLY}?${q}&dry-run=true`)) as DryRunResult | undefined;
    printDryRun(ctx, result ?? {});
  } catch (e) {
    if (patched) await discard(ctx, q);
    throw e;
  }
  await discard(ctx, q);
}

/** Best effort: the original error (if any) is what the user needs to see. */
async function discard(ctx: Context, q: string): Promise<void> {
  try {
    const res = await ctx.client().request("DELETE", `${TX}?${q}`);
    if (res.status >= 300 && res.status !== 404 && ctx.globals.verbose) {
      ctx.io.stderr.write(`warning: could not delete the transaction: ${ApiResponseError.from(res).describe()}\n`);
    }
  } catch (e) {
    if (ctx.globals.verbose) ctx.io.stderr.write(`warning: could not delete the transaction: ${(e as Error).message}\n`);
  }
}

function printDryRun(ctx: Context, r: DryRunResult): void {
  const out = ctx.io.stdout;
  const keys = r["changed-keys"] ?? [];
  if (keys.length === 0) {
    out.write("dry run: no settings would change\n");
    return;
  }
  out.write(`dry run: would change ${keys.join(", ")}\n`);
  for (const f of r.files ?? []) {
    out.write(`\nwould rewrite ${f.path ?? "?"}${f.name ? ` (${f.name})` : ""}:\n`);
    const diff = f.diff ?? "";
    if (diff) out.write(diff.endsWith("\n") ? diff : diff + "\n");
  }
  if ((r.files ?? []).length === 0) out.write("no configuration files would change\n");
  else out.write("\n");
  const units = r["restart-units"] ?? [];
  const services = r.services ?? [];
  if (services.length > 0) out.write(`affected services: ${services.join(", ")}\n`);
  out.write(`would restart: ${units.length > 0 ? units.join(", ") : "nothing"}\n`);
}
