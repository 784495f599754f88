// First-boot user data: read every source once, validate each document whole, merge the good
// ones (a later source wins), and record what happened on the data partition so that later boots
// neither read user data again nor forget what the first boot did with it (GET /boot-status).
import { existsSync, readFileSync } from "node:fs";
import { changedKeys, deepMerge, type JsonObject } from "../settings/keys.js";
import { validateSettings } from "../settings/model.js";
import { checkSettingsSize } from "../settings/limits.js";
import type { Variant } from "../settings/schema.js";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { parseUserData, UserDataError, type UserDataSource } from "./userdata.js";
import type { UserDataRejection, UserDataStatus } from "../protocol/types.js";

export interface FirstBootOptions {
  /** Where the record of what first boot did lives (<root>/var/lib/caisson/early-boot-config.json). */
  record: string;
  variant: Variant;
  sources: UserDataSource[];
  log: (msg: string) => void;
}

export class FirstBootUserData {
  constructor(private readonly o: FirstBootOptions) {}

  /**
   * Read, parse and validate user data, at first boot only (undefined afterwards). Each source is
   * one document: an invalid one is rejected whole (nothing of it applied) and the others still
   * apply — so a bad document from the user does not take away, say, the network API's
   * certificates handed over by `launch`.
   */
  read(): { settings?: JsonObject; status: UserDataStatus } | undefined {
    if (existsSync(this.o.record)) return undefined;
    const at = new Date().toISOString();
    const sources: string[] = [];
    const rejected: UserDataRejection[] = [];
    let merged: JsonObject = {};
    for (const src of this.o.sources) {
      try {
        const bytes = src.read();
        if (bytes === undefined) continue;
        const settings = parseUserData(bytes, src.name);
        try {
          validateSettings(this.o.variant, settings);
        } catch (e) {
          const se = e as Error & { key?: string };
          throw new UserDataError(`user data from ${src.name}: ${se.message}`, src.name, undefined, undefined, se.key);
        }
        const next = deepMerge(merged, settings);
        // Each source is within the limits (parseUserData); together they must be too.
        try {
          checkSettingsSize(next, `user data from ${src.name} merged with the sources before it`);
        } catch (e) {
          throw new UserDataError((e as Error).message, src.name);
        }
        merged = next;
        sources.push(src.name);
      } catch (e) {
        const ue = e instanceof UserDataError ? e : new UserDataError(`user data from ${src.name}: ${(e as Error).message}`, src.name);
        this.o.log(`user data rejected, nothing of it applied: ${ue.message}`);
        rejected.push({ message: ue.message, source: ue.source, line: ue.line, column: ue.column, key: ue.key });
      }
    }
    if (sources.length) this.o.log(`user data from ${sources.join(", ")} applied: ${changedKeys({}, merged).join(", ")}`);
    const state = rejected.length ? "rejected" : sources.length ? "applied" : "absent";
    const status: UserDataStatus = { state, sources, ...(rejected.length ? { error: rejected[0], rejected } : {}), at };
    return { settings: sources.length ? merged : undefined, status };
  }

  /**
   * Record what the first boot did. Written after the launch commit: a crash before it means user
   * data is read again, which is safe because nothing of it was committed or it is re-applied
   * identically.
   */
  recordDone(status: UserDataStatus): void {
    writeFileAtomic(this.o.record, JSON.stringify(status), { durable: true, mode: 0o600 });
  }

  /** What the first boot did with user data (an unreadable record is reported, never fatal). */
  status(): UserDataStatus {
    try {
      return JSON.parse(readFileSync(this.o.record, "utf8")) as UserDataStatus;
    } catch (e) {
      const message = `the record of first-boot user data (${this.o.record}) is unreadable: ${(e as Error).message}`;
      return { state: "absent", sources: [], error: { message, source: this.o.record }, at: "" };
    }
  }
}
