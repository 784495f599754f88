// User data: TOML whose top-level table is [settings] (Bottlerocket's format), optionally gzipped,
// read once at first boot from ordered sources; a later source overrides an earlier one.
import { gunzipSync } from "node:zlib";
import { existsSync, readFileSync } from "node:fs";
import { parse, TomlError } from "smol-toml";
import { isObject, type JsonObject } from "../settings/keys.js";

export class UserDataError extends Error {
  constructor(
    message: string,
    readonly source: string,
    readonly line?: number,
    readonly column?: number,
    readonly key?: string,
  ) {
    super(message);
  }
}

/** A place user data may come from. `read` returns undefined when the source has none. */
export interface UserDataSource {
  name: string;
  read(): Buffer | undefined;
}

export function fileSource(path: string): UserDataSource {
  return { name: `file ${path}`, read: () => (existsSync(path) ? readFileSync(path) : undefined) };
}

/** Parse user data bytes into the settings object it holds (the contents of [settings]). */
export function parseUserData(bytes: Buffer, source: string): JsonObject {
  let data = bytes;
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) {
    try {
      data = gunzipSync(data);
    } catch (e) {
      throw new UserDataError(`user data from ${source} looks gzipped but does not decompress: ${(e as Error).message}`, source);
    }
  }
  let doc: unknown;
  try {
    doc = parse(data.toString("utf8"));
  } catch (e) {
    if (e instanceof TomlError) {
      const first = e.message.split("\n")[0];
      throw new UserDataError(`user data from ${source} is not valid TOML at line ${e.line}, column ${e.column}: ${first}`, source, e.line, e.column);
    }
    throw new UserDataError(`user data from ${source} is not valid TOML: ${(e as Error).message}`, source);
  }
  const d = doc as Record<string, unknown>;
  const extra = Object.keys(d).filter((k) => k !== "settings");
  if (extra.length) throw new UserDataError(`user data from ${source} has top-level table(s) ${extra.map((k) => `[${k}]`).join(", ")}: only [settings] is allowed`, source, undefined, undefined, extra[0]);
  if (!isObject(d.settings)) throw new UserDataError(`user data from ${source} has no [settings] table`, source);
  return toJson(d.settings) as JsonObject;
}

// smol-toml yields Dates for TOML datetimes; settings hold JSON, so dates become strings.
function toJson(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  if (typeof v === "bigint") return Number(v);
  return v;
}
