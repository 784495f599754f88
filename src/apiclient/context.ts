// What every subcommand gets: a lazily built client, the I/O streams, and the global options.
import type { Readable, Writable } from "node:stream";
import type { Command } from "commander";
import type { ApiClient } from "./client.js";

export interface Io {
  stdout: Writable;
  stderr: Writable;
  stdin: Readable;
}

export interface Globals {
  socketPath: string;
  verbose: boolean;
}

export interface Context {
  io: Io;
  globals: Globals;
  client(): ApiClient;
  /** Suffix for transaction names; random in real use, fixed in tests. */
  txSuffix(): string;
}

/** Bad arguments: reported on stderr, exit 2. */
export class UsageError extends Error {}

/** One subcommand = one module exporting this; `define` adds its arguments and options. */
export interface Subcommand {
  name: string;
  description: string;
  define(cmd: Command): void;
  run(ctx: Context, cmd: Command): Promise<number>;
}

export function printJson(ctx: Context, value: unknown): void {
  ctx.io.stdout.write(JSON.stringify(value, null, 2) + "\n");
}
