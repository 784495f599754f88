// Key=value arguments of the CLI: `KEY=VALUE` splitting and prefixes, with Bottlerocket's quoting
// (`kubernetes.node-labels."example.com/role"=x`). Settings key paths themselves are
// src/settings/keys.ts.
import { formatKey, parseSettingsKey, splitKeyPair, KeyError } from "../settings/keys.js";
import { UsageError } from "./context.js";

/** Top-level names of the model that `get` passes through instead of assuming `settings.`. */
const ROOTS = ["settings", "os", "services", "configuration-files"];

/** Split on the first `=` outside double quotes, so quoted keys may hold `=` and values may too. */
export function splitKeyValue(arg: string): { key: string; value: string } {
  const r = splitKeyPair(arg);
  if (typeof r === "string") throw new UsageError(`expected KEY=VALUE, got '${arg}'`);
  return r;
}

/** Validates a settings key and returns it in canonical `settings.`-prefixed form. */
export function canonicalSettingsKey(key: string): string {
  try {
    const segs = parseSettingsKey(key);
    if (segs.length === 0) throw new UsageError(`'${key}' names all of settings; give a key below it`);
    return `settings.${formatKey(segs)}`;
  } catch (e) {
    if (e instanceof KeyError) throw new UsageError(e.message);
    throw e;
  }
}

/** `KEY=VALUE` → `settings.KEY=VALUE` as sent in a keypair PATCH. */
export function keypair(arg: string): string {
  const { key, value } = splitKeyValue(arg);
  return `${canonicalSettingsKey(key)}=${value}`;
}

/**
 * A `get` prefix as the API's `prefix=` expects it: left as typed (prefixes may be partial, like
 * `settings.host`), only `settings.` added when the first segment is not a top-level name.
 */
export function fullPrefix(prefix: string): string {
  if (prefix.length === 0) throw new UsageError("empty prefix");
  const first = /^[^."]*/.exec(prefix)?.[0] ?? "";
  return ROOTS.includes(first) ? prefix : `settings.${prefix}`;
}
