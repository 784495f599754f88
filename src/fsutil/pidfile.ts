// Process liveness and pid lock files: a lock names its holder by pid and start time, so a lock
// left by a killed process (kill -9, power cut) is recognised as stale and taken over, and a pid
// reused by an unrelated process later does not keep the lock held.
import { readFileSync, unlinkSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

/** The kernel's start time of `pid` (clock ticks since boot, /proc/PID/stat field 22), if readable. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Is `pid` a live process (and, if `startTime` is given and /proc can tell, the same one)? */
export function processAlive(pid: number, startTime?: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    if ((e as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  if (startTime === undefined) return true;
  const now = processStartTime(pid);
  return now === undefined || now === startTime;
}

export class LockedError extends Error {
  constructor(
    message: string,
    readonly pid: number,
  ) {
    super(message);
  }
}

/** Parse "PID [STARTTIME]" as written by acquirePidLock (older locks hold the pid alone). */
function parseLock(text: string): { pid: number; start?: string } {
  const [pid, start] = text.trim().split(/\s+/);
  return { pid: Number(pid), ...(start ? { start } : {}) };
}

/**
 * Take the lock file `path` for this process, or throw LockedError naming the live holder. A lock
 * whose holder is gone is removed and taken. Returns the release function (idempotent; it removes
 * the file only while it is still ours).
 */
export function acquirePidLock(path: string): () => void {
  mkdirSync(dirname(path), { recursive: true });
  const mine = `${process.pid} ${processStartTime(process.pid) ?? ""}`.trim() + "\n";
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(path, mine, { flag: "wx", mode: 0o644 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 5) throw e;
    }
    let holder: { pid: number; start?: string };
    try {
      holder = parseLock(readFileSync(path, "utf8"));
    } catch {
      continue; // removed in between: try again
    }
    if (Number.isNaN(holder.pid) && attempt < 3) {
      // Empty: its creator may be between create and write. Look again shortly.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      continue;
    }
    if (holder.pid !== process.pid && processAlive(holder.pid, holder.start)) {
      throw new LockedError(`${path} is held by process ${holder.pid}, which is running`, holder.pid);
    }
    // Stale (its process is gone), or an empty file from a crash between create and write.
    try {
      unlinkSync(path);
    } catch {
      /* someone else removed it first */
    }
  }
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    try {
      if (readFileSync(path, "utf8") === mine) unlinkSync(path);
    } catch {
      /* already gone */
    }
  };
}
