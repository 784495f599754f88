// The agents that ship in the image, bundled with esbuild into one file per program, for the
// pinned Node runtime. Host code has no native addons, so bundling needs no special cases.
import { build, type Plugin } from "esbuild";
import { join } from "node:path";
import { chmodSync } from "node:fs";
import { packageRoot } from "../fsutil/package-root.js";

// Bundled CommonJS dependencies (handlebars...) call require(); ESM output needs one.
const BANNER = "import { createRequire as __caissonCreateRequire } from 'node:module'; const require = __caissonCreateRequire(import.meta.url);";

/** Modules replaced by a stub in the bundles: imported by a dependency, never called by us. */
const STUBS: Record<string, string> = {
  "make-fetch-happen": "src/image/stubs/make-fetch-happen.mjs",
};

function stubs(root: string): Plugin {
  const filter = new RegExp(`^(${Object.keys(STUBS).map((m) => m.replace(/[-/\\^$*+?.()|[\]{}]/g, "\\$&")).join("|")})$`);
  return { name: "caisson-stubs", setup: (b) => b.onResolve({ filter }, (a) => ({ path: join(root, STUBS[a.path]!) })) };
}

export async function bundleAgents(libDir: string, binDir: string): Promise<void> {
  const root = packageRoot();
  const common = {
    bundle: true,
    platform: "node" as const,
    target: "node24",
    format: "esm" as const,
    legalComments: "none" as const,
    logLevel: "warning" as const,
    plugins: [stubs(root)],
  };
  await build({
    ...common,
    entryPoints: [join(root, "src/host/image-main.ts")],
    outfile: join(libDir, "caisson-host.mjs"),
    banner: { js: BANNER },
  });
  // The in-guest memory benchmark's baseline: a bare node:http server, bundled alone.
  await build({ ...common, entryPoints: [join(root, "src/host/bench-baseline.ts")], outfile: join(libDir, "bench-baseline.mjs") });
  // apiclient runs from its shebang on the image's runtime: no shell, no wrapper.
  await build({
    ...common,
    entryPoints: [join(root, "src/apiclient/main.ts")],
    outfile: join(binDir, "apiclient"),
    banner: { js: `#!/usr/lib/caisson/node\n${BANNER}` },
  });
  chmodSync(join(binDir, "apiclient"), 0o755);
}
