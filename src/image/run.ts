// Running build tools: no shell (argument vectors only), output captured for the error message,
// and a live progress line from the tool's own output for the long steps.
import { spawn } from "node:child_process";

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each line the tool prints (stdout and stderr), e.g. to show progress. */
  onLine?: (line: string) => void;
  /** Write stdout to this callback instead of keeping it. */
  input?: string;
}

export class CommandError extends Error {}

export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: o.cwd, env: o.env ?? process.env, stdio: [o.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    let out = "";
    const tail: string[] = [];
    const feed = (buf: Buffer, keep: boolean) => {
      const s = buf.toString();
      if (keep) out += s;
      for (const line of s.split("\n")) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 30) tail.shift();
        o.onLine?.(line);
      }
    };
    child.stdout!.on("data", (b: Buffer) => feed(b, true));
    child.stderr!.on("data", (b: Buffer) => feed(b, false));
    if (o.input !== undefined) child.stdin!.end(o.input);
    child.on("error", (e) => reject(new CommandError(`${cmd}: ${e.message}${(e as NodeJS.ErrnoException).code === "ENOENT" ? " (is it installed? see README: set-up)" : ""}`)));
    child.on("close", (code, signal) => {
      if (code === 0) resolve(out);
      else reject(new CommandError(`${cmd} ${args.slice(0, 6).join(" ")}${args.length > 6 ? " ..." : ""} failed (${signal ?? `exit ${code}`}):\n${tail.join("\n")}`));
    });
  });
}
