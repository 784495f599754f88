// User data: TOML whose top-level table is [settings] (Bottlerocket's format), optionally gzipped,
// read once at first boot from ordered sources; a later source overrides an earlier one.
// Bounded (src/settings/limits.ts): a source yields at most MAX_USER_DATA_BYTES (+1, to tell that it
// had more), gunzip stops at MAX_USER_DATA_DECOMPRESSED_BYTES, and the settings are held to the
// depth and size limits of every settings tree.
import { gunzipSync } from "node:zlib";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { parse, TomlError } from "smol-toml";
import { isObject, type JsonObject } from "../settings/keys.js";
import { checkDepth, checkSettingsSize, formatBytes, LimitError, MAX_DEPTH, MAX_USER_DATA_BYTES, MAX_USER_DATA_DECOMPRESSED_BYTES } from "../settings/limits.js";

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
  return { name: `file ${path}`, read: () => (existsSync(path) ? readBounded(path) : undefined) };
}

/**
 * Read at most `max + 1` bytes of a regular file (one more than allowed, so that parseUserData can
 * tell the file was over the limit without reading all of it). Anything else (a FIFO, a device)
 * is refused rather than opened: it could block or never end.
 */
export function readBounded(path: string, max = MAX_USER_DATA_BYTES): Buffer {
  if (!statSync(path).isFile()) throw new Error(`${path} is not a regular file`);
  const buf = Buffer.alloc(max + 1);
  const fd = openSync(path, "r");
  try {
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Parse user data bytes into the settings object it holds (the contents of [settings]). */
export function parseUserData(bytes: Buffer, source: string): JsonObject {
  if (bytes.length > MAX_USER_DATA_BYTES) {
    throw new UserDataError(`user data from ${source} is over the limit of ${formatBytes(MAX_USER_DATA_BYTES)} (raw, as read from the source)`, source);
  }
  let data = bytes;
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) {
    try {
      // maxOutputLength: zlib stops as soon as the output passes the limit (a bomb costs ~1 MiB).
      data = gunzipSync(data, { maxOutputLength: MAX_USER_DATA_DECOMPRESSED_BYTES });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
        throw new UserDataError(`user data from ${source} decompresses to more than the limit of ${formatBytes(MAX_USER_DATA_DECOMPRESSED_BYTES)} (decompressed)`, source);
      }
      throw new UserDataError(`user data from ${source} looks gzipped but does not decompress: ${(e as Error).message}`, source);
    }
  }
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    throw new UserDataError(`user data from ${source} is not valid UTF-8 (TOML documents must be)`, source);
  }
  let doc: unknown;
  try {
    // maxDepth bounds inline tables and lists inside the parser; checkDepth below bounds the rest
    // (dotted keys and [a.b.c] headers nest without limit in smol-toml).
    doc = parse(text, { maxDepth: MAX_DEPTH });
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
  try {
    checkDepth(d.settings, `user data from ${source}`);
    const settings = toJson(d.settings) as JsonObject;
    checkSettingsSize(settings, `user data from ${source}`);
    return settings;
  } catch (e) {
    if (e instanceof LimitError) throw new UserDataError(e.message, source, undefined, undefined, e.key);
    throw e;
  }
}

// smol-toml yields Dates for TOML datetimes; settings hold JSON, so dates become strings.
// Recursive: called only on trees checkDepth has bounded.
function toJson(v: unknown): unknown {
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(toJson);
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toJson(x)]));
  if (typeof v === "bigint") return Number(v);
  return v;
}
