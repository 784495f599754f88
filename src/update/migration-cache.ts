// What the migrator needs after the reboot, cached at prepare time so it can run offline
// (updatePaths.cache):
//   metadata/   the TUF metadata that verified the targets, and the root chain 2..N.root.json
//               (the migrator starts from the image's shipped root and needs every signed rotation)
//   targets/    manifest.json (the bytes TUF verified) and the hop chain's migration modules
// Nothing here is trusted as written: the migrator verifies the chain and every module at boot
// (src/migrations/verify.ts). A module already in the cache with the signed hash is kept.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../fsutil/atomic.js";
import { updatePaths } from "./manifest.js";
import type { TufSource } from "./tuf.js";
import { verifyFile } from "./write.js";

/** HTTP GET of a URL, resolving with the body as a stream once the status is 200. */
export type HttpGet = (url: string) => Promise<AsyncIterable<Buffer>>;

/** The largest N.root.json the cache accepts. */
const MAX_ROOT_BYTES = 512_000;

export interface CacheInput {
  root: string;
  tuf: TufSource;
  /** For the root chain, from the URL the TUF client used. */
  http: HttpGet;
  /** manifest.json as TUF verified it. */
  manifestBytes: Buffer;
  /** Target names of the migration modules of the hop chain (findMigrations). */
  hops: string[];
}

/**
 * Fill the cache; a failure names the cache directory, and ENOSPC says what is untouched and what
 * to do.
 */
export async function cacheForMigrator(i: CacheInput): Promise<void> {
  try {
    await fill(i);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const cache = join(i.root, updatePaths.cache);
    if (err.code === "ENOSPC" || /ENOSPC/.test(err.message)) {
      throw new Error(`no space left on the device of ${cache} (ENOSPC) while caching the update's metadata and migrations; the running slot and the settings are untouched; free space and prepare again`);
    }
    throw new Error(`caching the update's metadata and migrations in ${cache} failed: ${err.message}`);
  }
}

async function fill({ root, tuf, http, manifestBytes, hops }: CacheInput): Promise<void> {
  const cache = join(root, updatePaths.cache);
  const metaOut = join(cache, "metadata");
  const targetsOut = join(cache, "targets");
  mkdirSync(metaOut, { recursive: true });
  mkdirSync(targetsOut, { recursive: true });
  const rootJson = JSON.parse(readFileSync(join(tuf.metadataDir, "root.json"), "utf8")) as { signed: { version: number } };
  for (let v = 2; v <= rootJson.signed.version; v++) {
    const res = await http(`${tuf.metadataBaseUrl.replace(/\/+$/, "")}/${v}.root.json`);
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res) {
      n += c.length;
      if (n > MAX_ROOT_BYTES) throw new Error(`${v}.root.json is larger than ${MAX_ROOT_BYTES} bytes`);
      chunks.push(c);
    }
    writeFileAtomic(join(metaOut, `${v}.root.json`), Buffer.concat(chunks), { durable: true });
  }
  for (const f of readdirSync(tuf.metadataDir).filter((x) => x.endsWith(".json"))) {
    writeFileAtomic(join(metaOut, f), readFileSync(join(tuf.metadataDir, f)), { durable: true });
  }
  writeFileAtomic(join(targetsOut, "manifest.json"), manifestBytes, { durable: true });
  for (const name of hops) {
    const info = await tuf.target(name);
    const path = join(targetsOut, name);
    if (existsSync(path)) {
      try {
        await verifyFile(path, info, name);
        continue;
      } catch {
        // stale or damaged: download again
      }
    }
    const tmp = join(targetsOut, `.${name}.download`);
    try {
      await tuf.download(name, tmp);
      renameSync(tmp, path);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
}
