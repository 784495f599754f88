// Publishing a file as a consistent-snapshot target: one streaming pass copies it to a temporary
// file beside its destination while hashing it, then renames it to targets/<sha256>.<name> (the
// path tuf-js and python-tuf fetch when consistent_snapshot is on). Root images are ~250 MB, so
// the copy reports progress on stderr.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { Transform } from "node:stream";

export interface PublishedTarget {
  name: string;
  length: number;
  sha256: string;
}

/** Below this size a target is copied silently. */
const PROGRESS_MIN_BYTES = 16 * 1024 * 1024;

export type ProgressSink = (line: string) => void;
export const stderrProgress: ProgressSink = (line) => process.stderr.write(line + "\n");

export async function publishFile(targetsDir: string, name: string, source: string, progress: ProgressSink = stderrProgress): Promise<PublishedTarget> {
  checkTargetName(name);
  mkdirSync(targetsDir, { recursive: true });
  const size = statSync(source).size;
  const hash = createHash("sha256");
  const tmp = join(targetsDir, `.incoming-${process.pid}-${randomBytes(4).toString("hex")}`);
  let done = 0;
  let lastPct = -1;
  const t0 = Date.now();
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      done += chunk.length;
      const pct = Math.floor((done / Math.max(1, size)) * 10) * 10;
      if (size >= PROGRESS_MIN_BYTES && pct !== lastPct) {
        lastPct = pct;
        progress(`  ${name}: ${pct}% of ${(size / 1048576).toFixed(0)} MiB hashed and copied`);
      }
      cb(null, chunk);
    },
  });
  if (size >= PROGRESS_MIN_BYTES) progress(`publishing ${basename(source)} as ${name}`);
  try {
    await pipeline(createReadStream(source), meter, createWriteStream(tmp, { mode: 0o644 }));
    const sha256 = hash.digest("hex");
    const dest = join(targetsDir, `${sha256}.${name}`);
    // Same name and hash: the same bytes are already there (a re-run); keep the existing file.
    if (existsSync(dest)) rmSync(tmp);
    else renameSync(tmp, dest);
    if (size >= PROGRESS_MIN_BYTES) progress(`  ${name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s (sha256 ${sha256.slice(0, 16)}…)`);
    return { name, length: done, sha256 };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function publishBytes(targetsDir: string, name: string, data: Buffer): PublishedTarget {
  checkTargetName(name);
  mkdirSync(targetsDir, { recursive: true });
  const sha256 = createHash("sha256").update(data).digest("hex");
  const dest = join(targetsDir, `${sha256}.${name}`);
  if (!existsSync(dest)) {
    const tmp = `${dest}.tmp-${process.pid}`;
    writeFileSync(tmp, data, { mode: 0o644 });
    renameSync(tmp, dest);
  }
  return { name, length: data.length, sha256 };
}

/** Target names are flat file names here (no directories), so serving them cannot escape. */
export function checkTargetName(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._+-]*$/.test(name)) throw new Error(`target name "${name}" must be a plain file name ([A-Za-z0-9._+-])`);
}
