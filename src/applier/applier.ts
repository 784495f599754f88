// The settings applier: owns the configuration files. Given the committed settings and the keys
// that changed, it renders the files those keys feed, rewrites only files whose bytes changed
// (atomically), and restarts only the services owning a rewritten file.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createTwoFilesPatch } from "diff";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { parseKey, pathsOverlap, type Json, type JsonObject } from "../settings/keys.js";
import { restartCommands, type ServiceCatalog } from "./services.js";
import type { ServiceManager } from "./service-manager.js";
import type { Template } from "./templates.js";

export interface FileChange {
  name: string;
  path: string;
  /** Unified diff of the file on disk against the new rendering. */
  diff: string;
}

export interface ApplyPlan {
  files: FileChange[];
  services: string[];
  "restart-units": string[];
}

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
  after: string;
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
      const segs = parseKey(key);
      const path = segs[0] === "settings" ? segs.slice(1) : segs;
      const files = this.filesFor([path]);
      out[key] = this.servicesOwning(files);
    }
    return out;
  }

  /** Template text of each configuration file affected by a key, as GET /metadata/templates. */
  templatesFor(keys: string[]): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const key of keys) {
      const segs = parseKey(key);
      const files = this.filesFor([segs[0] === "settings" ? segs.slice(1) : segs]);
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

  private render(settings: JsonObject, keys: string[] | "all"): Rendered[] {
    const paths = keys === "all" ? "all" : keys.map((k) => parseKey(k)).map((s) => (s[0] === "settings" ? s.slice(1) : s));
    const ctx = { settings, os: this.o.os, host: this.o.host };
    return this.filesFor(paths).map((name) => {
      const f = this.o.catalog["configuration-files"][name]!;
      const hostPath = join(this.o.root, f.path);
      let before: string | undefined;
      try {
        before = readFileSync(hostPath, "utf8");
      } catch {
        before = undefined;
      }
      let after: string;
      try {
        after = this.o.templates.get(f["template-path"])!.render(ctx);
      } catch (e) {
        throw new Error(`rendering ${f.path} from ${f["template-path"]} failed: ${(e as Error).message}`);
      }
      return { name, path: f.path, hostPath, mode: parseInt(f.mode ?? "0644", 8), before, after };
    });
  }

  private planOf(rendered: Rendered[]): { plan: ApplyPlan; changed: Rendered[] } {
    const changed = rendered.filter((r) => r.before !== r.after);
    const services = this.servicesOwning(changed.map((c) => c.name));
    const units = [...new Set(services.flatMap((s) => this.o.catalog.services[s]!["restart-units"]))];
    return {
      changed,
      plan: {
        files: changed.map((c) => ({
          name: c.name,
          path: c.path,
          diff: createTwoFilesPatch(c.before === undefined ? "/dev/null" : `a${c.path}`, `b${c.path}`, c.before ?? "", c.after),
        })),
        services,
        "restart-units": units,
      },
    };
  }

  /** What applying would do, changing nothing. */
  dryRun(settings: JsonObject, keys: string[] | "all"): ApplyPlan {
    return this.planOf(this.render(settings, keys)).plan;
  }

  async apply(settings: JsonObject, keys: string[] | "all"): Promise<ApplyPlan> {
    const { plan, changed } = this.planOf(this.render(settings, keys));
    // Files are re-rendered at every boot (/etc is not persistent on the image), so they need not
    // be fsynced; each is replaced atomically so a service never reads half a file.
    for (const c of changed) writeFileAtomic(c.hostPath, c.after, { mode: c.mode });
    await this.o.serviceManager.tryRestart(plan["restart-units"]);
    return plan;
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
