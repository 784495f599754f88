// The settings applier: owns the configuration files. Given the committed settings and the keys
// that changed, it renders the files those keys feed, rewrites only files whose bytes changed
// (atomically), and restarts only the services owning a rewritten file.
import { chmodSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { createTwoFilesPatch } from "diff";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { parseSettingsKey, pathsOverlap, type Json, type JsonObject } from "../settings/keys.js";
import { restartCommands, type ServiceCatalog } from "./services.js";
import type { ServiceManager } from "./service-manager.js";
import type { Template } from "./templates.js";
import type { ApplyPlan } from "../protocol/types.js";

export interface ApplierOptions {
  /** The host's root: "/" on the image, a directory in workstation mode. */
  root: string;
  catalog: ServiceCatalog;
  templates: Map<string, Template>;
  serviceManager: ServiceManager;
  os: Json;
  host: Json;
}

interface Rendered {
  name: string;
  path: string;
  hostPath: string;
  mode: number;
  before: string | undefined;
  beforeMode: number | undefined;
  after: string;
}

/** Files that are not world-readable may hold secrets: their diffs are not shown. */
const hidden = (mode: number) => (mode & 0o004) === 0;

/** Files that could not be rendered or written; `plan` is what was written and restarted anyway. */
export class ApplyError extends Error {
  constructor(
    readonly failures: { path: string; message: string }[],
    readonly plan: ApplyPlan,
    /** What the caller had done before (e.g. "settings committed, but applying them failed"). */
    context?: string,
  ) {
    super(`${context ? `${context}: ` : ""}${failures.map((f) => `${f.path}: ${f.message}`).join("; ")}`);
  }
}

export class Applier {
  constructor(private readonly o: ApplierOptions) {
    for (const [name, f] of Object.entries(o.catalog["configuration-files"])) {
      if (!o.templates.has(f["template-path"])) throw new Error(`configuration file '${name}' names missing template '${f["template-path"]}'`);
    }
  }

  /** Settings paths each configuration file reads. */
  fileInputs(name: string): string[][] {
    const f = this.o.catalog["configuration-files"][name];
    return f ? this.o.templates.get(f["template-path"])!.inputs : [];
  }

  /** Services affected by each key (`settings.`-prefixed or not), as GET /metadata/affected-services. */
  affectedServices(keys: string[]): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const key of keys) {
      const files = this.filesFor([parseSettingsKey(key)]);
      out[key] = this.servicesOwning(files);
    }
    return out;
  }

  /** Templates (file names under image/templates) that read each key, for GET /metadata/templates. */
  templatesFor(keys: string[]): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const key of keys) {
      const files = this.filesFor([parseSettingsKey(key)]);
      out[key] = files.map((f) => this.o.catalog["configuration-files"][f]!["template-path"]);
    }
    return out;
  }

  private filesFor(paths: string[][] | "all"): string[] {
    return Object.keys(this.o.catalog["configuration-files"]).filter(
      (name) => paths === "all" || this.fileInputs(name).some((input) => paths.some((p) => pathsOverlap(input, p))),
    );
  }

  private servicesOwning(files: string[]): string[] {
    return Object.entries(this.o.catalog.services)
      .filter(([, s]) => s["configuration-files"].some((f) => files.includes(f)))
      .map(([n]) => n)
      .sort();
  }

  /** Render every file the keys feed; a file that fails to render is reported, the others go on. */
  private render(settings: JsonObject, keys: string[] | "all"): { rendered: Rendered[]; failures: { path: string; message: string }[] } {
    const paths = keys === "all" ? "all" : keys.map(parseSettingsKey);
    const ctx = { settings, os: this.o.os, host: this.o.host };
    const rendered: Rendered[] = [];
    const failures: { path: string; message: string }[] = [];
    for (const name of this.filesFor(paths)) {
      const f = this.o.catalog["configuration-files"][name]!;
      const hostPath = join(this.o.root, f.path);
      let before: string | undefined;
      let beforeMode: number | undefined;
      try {
        before = readFileSync(hostPath, "utf8");
        beforeMode = statSync(hostPath).mode & 0o7777;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") {
          failures.push({ path: f.path, message: `reading the current file failed: ${(e as Error).message}` });
          continue;
        }
      }
      try {
        const after = this.o.templates.get(f["template-path"])!.render(ctx);
        rendered.push({ name, path: f.path, hostPath, mode: parseInt(f.mode ?? "0644", 8), before, beforeMode, after });
      } catch (e) {
        failures.push({ path: f.path, message: `rendering from ${f["template-path"]} failed: ${(e as Error).message}` });
      }
    }
    return { rendered, failures };
  }

  /** The plan; diffs only when asked (a dry run): the apply path does not pay for them. */
  private planOf(rendered: Rendered[], withDiffs: boolean): { plan: ApplyPlan; changed: Rendered[] } {
    const changed = rendered.filter((r) => r.before !== r.after || r.beforeMode !== r.mode);
    const services = this.servicesOwning(changed.map((c) => c.name));
    const units = [...new Set(services.flatMap((s) => this.o.catalog.services[s]!["restart-units"]))];
    return {
      changed,
      plan: {
        files: changed.map((c) => ({
          name: c.name,
          path: c.path,
          diff: !withDiffs
            ? ""
            : hidden(c.mode)
            ? `(contents of ${c.path} not shown: mode ${c.mode.toString(8).padStart(4, "0")}, it may hold secrets)\n`
            : createTwoFilesPatch(c.before === undefined ? "/dev/null" : `a${c.path}`, `b${c.path}`, c.before ?? "", c.after),
        })),
        services,
        "restart-units": units,
      },
    };
  }

  /** What applying would do, changing nothing. */
  dryRun(settings: JsonObject, keys: string[] | "all"): ApplyPlan {
    const { rendered, failures } = this.render(settings, keys);
    const { plan } = this.planOf(rendered, true);
    if (failures.length) throw new ApplyError(failures, plan);
    return plan;
  }

  /**
   * Rewrite the changed files and restart their services. Files that render are written even when
   * another fails (one bad value must not leave DNS or the hostname unwritten at boot); the
   * failures are then thrown together, with the plan of what was done.
   */
  async apply(settings: JsonObject, keys: string[] | "all"): Promise<ApplyPlan> {
    const { rendered, failures } = this.render(settings, keys);
    const { plan, changed } = this.planOf(rendered, false);
    // Files are re-rendered at every boot (/etc is not persistent on the image), so they need not
    // be fsynced; each is replaced atomically so a service never reads half a file.
    const written: string[] = [];
    for (const c of changed) {
      try {
        writeFileAtomic(c.hostPath, c.after, { mode: c.mode });
        chmodSync(c.hostPath, c.mode); // the mode asked for, whatever the umask
        written.push(c.name);
      } catch (e) {
        failures.push({ path: c.path, message: `writing failed: ${(e as Error).message}` });
      }
    }
    // Restart only what owns a file that was really rewritten.
    const units = [...new Set(this.servicesOwning(written).flatMap((s) => this.o.catalog.services[s]!["restart-units"]))];
    await this.o.serviceManager.tryRestart(units);
    const done = { ...plan, files: plan.files.filter((f) => written.includes(f.name)), "restart-units": units };
    if (failures.length) throw new ApplyError(failures, done);
    return done;
  }

  servicesView(): Record<string, { "configuration-files": string[]; "restart-units": string[]; "restart-commands": string[] }> {
    return Object.fromEntries(
      Object.entries(this.o.catalog.services).map(([n, s]) => [n, { ...s, "restart-commands": restartCommands(s) }]),
    );
  }

  configurationFilesView(): ServiceCatalog["configuration-files"] {
    return this.o.catalog["configuration-files"];
  }
}
