// Bounds on settings and on everything that carries them (API request bodies, user data), in one
// place. A 1 GiB guest must survive any input: no source may make the daemon hold more than a few
// MiB, and no tree may be deep enough to overflow the stack of code that walks it recursively
// (deepMerge, leafPaths, validation, JSON.stringify of an error preview).
//
// Why these numbers: Bottlerocket's user data is at most 16 KiB raw on EC2; our real settings are a
// few KiB (the largest values are base64 certificates, ~3 KiB each). 1 MiB of user data (raw and
// decompressed) and of settings leaves two orders of magnitude of room and still fits a 1 GiB
// guest many times over; 64 KiB for one value holds a chain of ~20 certificates (split bigger CA
// bundles over several `pki` entries); 32 levels of nesting is 5 times the deepest setting
// (`network.hosts` is [[ip, [names]]] under two tables).
import { formatKey } from "./keys.js";

/** User data as read from one source, before decompression. */
export const MAX_USER_DATA_BYTES = 1024 * 1024;
/** User data after gunzip (a gzip bomb stops here, not at the end of its output). */
export const MAX_USER_DATA_DECOMPRESSED_BYTES = 1024 * 1024;
/** One string value (or one name) in a settings tree, in UTF-8 bytes. */
export const MAX_VALUE_BYTES = 64 * 1024;
/** A whole settings tree as JSON: a patch, a pending transaction, live settings after a commit. */
export const MAX_SETTINGS_BYTES = 1024 * 1024;
/** Nesting of tables and lists; the settings root is level 1. */
export const MAX_DEPTH = 32;
/**
 * Pending transactions at once. Each may hold MAX_SETTINGS_BYTES on the data partition until it is
 * committed or deleted (or the daemon restarts): without a cap, clients could fill /var. apiclient
 * uses one short-lived transaction per command; 64 leaves room for many concurrent scripts.
 */
export const MAX_TRANSACTIONS = 64;

/** An input over one of the limits above. `limit` names it; `status` is the HTTP answer. */
export class LimitError extends Error {
  constructor(
    message: string,
    readonly limit: "depth" | "value-bytes" | "settings-bytes" | "transactions",
    readonly status: 400 | 413,
    readonly key?: string,
  ) {
    super(message);
  }
}

/** "1 MiB", "64 KiB", "100 bytes". */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024 && n % (1024 * 1024) === 0) return `${n / (1024 * 1024)} MiB`;
  if (n >= 1024 && n % 1024 === 0) return `${n / 1024} KiB`;
  return `${n} bytes`;
}

const depthError = (what: string) => new LimitError(`${what} is nested deeper than the limit of ${MAX_DEPTH} levels of tables and lists`, "depth", 400);

/**
 * Refuse JSON text nested deeper than MAX_DEPTH, before it is parsed. Brackets inside strings do not
 * count. Text that is not JSON may pass or fail here; JSON.parse judges it afterwards.
 */
export function checkJsonTextDepth(text: string, what: string): void {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > MAX_DEPTH) throw depthError(what);
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
}

const isContainer = (v: unknown): v is object => typeof v === "object" && v !== null && !(v instanceof Date);

/** Refuse a parsed value nested deeper than MAX_DEPTH. Iterative: any depth is safe to check. */
export function checkDepth(value: unknown, what: string): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (!isContainer(v)) continue;
    if (d > MAX_DEPTH) throw depthError(what);
    for (const c of Array.isArray(v) ? v : Object.values(v)) if (isContainer(c)) stack.push([c, d + 1]);
  }
}

const utf8Bytes = (s: string) => (s.length * 3 <= MAX_VALUE_BYTES ? 0 : Buffer.byteLength(s, "utf8"));

/**
 * Refuse a settings tree over the limits: nested deeper than MAX_DEPTH (400), a string value or a
 * name over MAX_VALUE_BYTES, or over MAX_SETTINGS_BYTES as JSON (413). `what` starts the message
 * ("the settings to set", "user data from ..."). Values are never shown (they may be secrets).
 */
export function checkSettingsSize(tree: unknown, what: string): void {
  checkDepth(tree, what);
  const stack: [unknown, string[]][] = [[tree, []]];
  const over = (n: number, path: string[], of: string) => {
    const key = `settings${path.length ? "." + formatKey(path) : ""}`;
    return new LimitError(`${what}: ${of} at '${key}' is ${n} bytes, over the limit of ${formatBytes(MAX_VALUE_BYTES)} for one value`, "value-bytes", 413, key);
  };
  while (stack.length) {
    const [v, path] = stack.pop()!;
    if (typeof v === "string") {
      const n = utf8Bytes(v);
      if (n > MAX_VALUE_BYTES) throw over(n, path, "the value");
    } else if (Array.isArray(v)) {
      for (const c of v) stack.push([c, path]); // a list's items are named by the list's key
    } else if (isContainer(v)) {
      for (const [k, c] of Object.entries(v)) {
        const n = utf8Bytes(k);
        if (n > MAX_VALUE_BYTES) throw over(n, path, "a name");
        stack.push([c, [...path, k]]);
      }
    }
  }
  // Depth is bounded above, so JSON.stringify cannot overflow the stack here.
  const size = Buffer.byteLength(JSON.stringify(tree) ?? "", "utf8");
  if (size > MAX_SETTINGS_BYTES) {
    throw new LimitError(`${what} is ${size} bytes as JSON, over the limit of ${formatBytes(MAX_SETTINGS_BYTES)} for a settings tree`, "settings-bytes", 413);
  }
}
