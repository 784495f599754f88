// What GET /os reports: the image's os-release, in Bottlerocket's field names.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { JsonObject } from "../settings/keys.js";
import { osArch } from "../update/arch.js";

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if (/^(["']).*\1$/.test(v)) v = v.slice(1, -1).replace(/\\(["$`\\])/g, "$1");
    out[m[1]!] = v;
  }
  return out;
}

/** The host's OS facts: from <root>/etc/os-release on the image, synthesised in workstation mode. */
export function readOs(root: string, fallback: { version: string; variant: string }): JsonObject {
  for (const p of ["etc/os-release", "usr/lib/os-release"]) {
    const path = join(root, p);
    if (!existsSync(path)) continue;
    const r = parseOsRelease(readFileSync(path, "utf8"));
    if (r.ID === undefined) continue;
    return {
      pretty_name: r.PRETTY_NAME ?? r.NAME ?? "Caisson",
      variant_id: r.VARIANT_ID ?? fallback.variant,
      version_id: r.VERSION_ID ?? fallback.version,
      build_id: r.BUILD_ID ?? "unknown",
      arch: osArch(),
    };
  }
  return {
    pretty_name: `Caisson ${fallback.version} (${fallback.variant}, workstation mode)`,
    variant_id: fallback.variant,
    version_id: fallback.version,
    build_id: "workstation",
    arch: osArch(),
  };
}
