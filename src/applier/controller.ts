// The configuration-file controller: owns every file in the service catalog (/etc/...) and the
// restarts of the services that read them. It renders from live settings at start ("all") and
// when asked — /tx/apply and commit_and_apply, as Bottlerocket's settings-applier is run after a
// commit, not by the commit itself (a plain /tx/commit renders nothing). Its failure is fatal:
// settings that could not be applied fail the health verdict, so a boot on trial falls back.
import type { Controller } from "../controller/runner.js";
import type { JsonObject } from "../settings/keys.js";
import type { Applier } from "./applier.js";
import type { ApplyPlan, ApplyRecord } from "../protocol/types.js";

export class ConfigFilesController implements Controller<ApplyPlan> {
  readonly name = "configuration-files";
  /** None: commits do not render by themselves; the settings service asks (see the header). */
  readonly inputs: readonly string[] = [];
  readonly output = "the configuration files of the service catalog and the restarts of their services";
  readonly failure = "fatal";
  /** The last applies, newest first: which files each rewrote and which units it restarted. */
  private readonly history: ApplyRecord[] = [];

  constructor(
    private readonly applier: Applier,
    private readonly log: (msg: string) => void,
  ) {}

  async reconcile(ctx: { settings: Record<string, unknown>; changed: string[] | "all" }) {
    const plan = await this.applier.apply(ctx.settings as JsonObject, ctx.changed);
    this.history.unshift({ at: new Date().toISOString(), keys: ctx.changed, files: plan.files.map((f) => f.path), "restart-units": plan["restart-units"] });
    this.history.length = Math.min(this.history.length, 20);
    if (plan.files.length) this.log(`rewrote ${plan.files.map((f) => f.path).join(", ")}; restarted ${plan["restart-units"].join(", ") || "nothing"}`);
    const files = plan.files.length;
    return { value: plan, detail: `${files} file${files === 1 ? "" : "s"} rewritten by the last apply (${ctx.changed === "all" ? "all settings" : ctx.changed.join(", ")})` };
  }

  applyHistory(): readonly ApplyRecord[] {
    return this.history;
  }
}
