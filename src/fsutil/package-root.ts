// Where the package's data (image/, docs/) lives: walk up from this module to the directory
// holding package.json. The image's bundled agents set CAISSON_DATA_DIR instead.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the caisson package root (package.json)");
    dir = up;
  }
  return dir;
}

/** Directory holding services.toml and templates/ (the image's data). */
export function imageDataDir(): string {
  return process.env.CAISSON_DATA_DIR ?? join(packageRoot(), "image");
}

/**
 * Caches kept between runs and between clones (package trees, the python-tuf venv), keyed by their
 * inputs inside: CAISSON_CACHE, else $XDG_CACHE_HOME/caisson, else ~/.cache/caisson. Outside the
 * checkout, so a fresh clone (CI) reuses what an earlier run on the same machine built.
 */
export function sharedCacheDir(): string {
  if (process.env.CAISSON_CACHE) return process.env.CAISSON_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(process.env.HOME || "/root", ".cache");
  return join(base, "caisson");
}
