// Services and configuration files, read from image/services.toml (data, like Bottlerocket's
// defaults.toml [services] and [configuration-files] tables). Which settings affect which service
// is not declared by hand: it is derived from the settings each template reads (see templates.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "smol-toml";

export interface ConfigurationFile {
  /** Absolute path on the host. */
  path: string;
  /** Template file name under the templates directory. */
  "template-path": string;
  /** Octal mode string, e.g. "0644". */
  mode?: string;
}

export interface Service {
  "configuration-files": string[];
  /** systemd units restarted (try-restart: never started if not running) when a file changes. */
  "restart-units": string[];
}

export interface ServiceCatalog {
  services: Record<string, Service>;
  "configuration-files": Record<string, ConfigurationFile>;
}

export function loadServiceCatalog(imageDir: string): ServiceCatalog {
  const path = join(imageDir, "services.toml");
  const doc = parse(readFileSync(path, "utf8")) as unknown as ServiceCatalog;
  for (const [name, svc] of Object.entries(doc.services)) {
    svc["restart-units"] ??= [];
    for (const f of svc["configuration-files"]) {
      if (!doc["configuration-files"][f]) throw new Error(`${path}: service '${name}' names unknown configuration file '${f}'`);
    }
  }
  return doc;
}

/** Bottlerocket's `restart-commands` view of a service, for GET /services. */
export function restartCommands(svc: Service): string[] {
  return svc["restart-units"].map((u) => `systemctl try-restart ${u}`);
}
