// The helper library handed to every migration module (Bottlerocket's common_migrations.rs): a
// module receives it as an argument, so it needs no imports (it runs from a data: URL, where
// relative imports could not resolve anyway, so no file besides the verified module is loaded;
// a data: module can still import node: built-ins).
//
// Every function is pure: it returns a new tree and never mutates its input. Keys are settings
// keys as the API spells them (`settings.kernel.sysctl."vm.max_map_count"`, the `settings.` prefix
// optional). No key is assumed to exist: a host may never have set it, and variants differ.
import { getPath, isObject, parseSettingsKey, type Json, type JsonObject } from "../settings/keys.js";

/** One direction of a migration: settings tree in, settings tree out. */
export type Step = (settings: JsonObject) => JsonObject;
export interface Migration {
  forward: Step;
  backward: Step;
}

const clone = (t: JsonObject): JsonObject => structuredClone(t);

export function get(settings: JsonObject, key: string): Json | undefined {
  return getPath(settings, parseSettingsKey(key));
}

export function has(settings: JsonObject, key: string): boolean {
  return get(settings, key) !== undefined;
}

/** Set `key` to `value`, making the tables on the way (a scalar in the way is replaced). */
export function set(settings: JsonObject, key: string, value: Json): JsonObject {
  const path = parseSettingsKey(key);
  const out = clone(settings);
  let node = out;
  for (const seg of path.slice(0, -1)) {
    const next = node[seg];
    node = node[seg] = isObject(next) ? next : {};
  }
  node[path[path.length - 1]!] = structuredClone(value);
  return out;
}

/**
 * Remove `key` if present, and the tables it leaves empty (so that adding then removing a setting
 * gives back the very tree it started from).
 */
export function remove(settings: JsonObject, key: string): JsonObject {
  const path = parseSettingsKey(key);
  if (getPath(settings, path) === undefined) return settings;
  const out = clone(settings);
  const chain: JsonObject[] = [out];
  for (const seg of path.slice(0, -1)) chain.push(chain[chain.length - 1]![seg] as JsonObject);
  delete chain[chain.length - 1]![path[path.length - 1]!];
  for (let i = chain.length - 1; i > 0 && Object.keys(chain[i]!).length === 0; i--) delete chain[i - 1]![path[i - 1]!];
  return out;
}

/** Move the value at `from` to `to` (overwriting it); nothing happens when `from` is absent. */
export function rename(settings: JsonObject, from: string, to: string): JsonObject {
  const value = get(settings, from);
  return value === undefined ? settings : set(remove(settings, from), to, value);
}

// ---- Bottlerocket's common migrations, as {forward, backward} pairs ----

/**
 * Settings new in this version: forward does nothing (the host fills defaults for absent keys),
 * backward removes them, since the older version's schema does not know them.
 */
export function addSettings(keys: string[]): Migration {
  return { forward: (s) => s, backward: (s) => keys.reduce(remove, s) };
}

/** Settings dropped in this version: forward removes them; backward cannot bring values back. */
export function removeSettings(keys: string[]): Migration {
  return { forward: (s) => keys.reduce(remove, s), backward: (s) => s };
}

/** A setting renamed in this version. */
export function renameSetting(from: string, to: string): Migration {
  return { forward: (s) => rename(s, from, to), backward: (s) => rename(s, to, from) };
}

/**
 * A value this version sets when the host has none (e.g. a new recommended sysctl); backward
 * removes it only if it still holds that value, so a user's own choice survives a downgrade.
 */
export function addValue(key: string, value: Json): Migration {
  return {
    forward: (s) => (has(s, key) ? s : set(s, key, value)),
    backward: (s) => (JSON.stringify(get(s, key)) === JSON.stringify(value) ? remove(s, key) : s),
  };
}

/** Replace a string value that still equals the old one (e.g. an image tag); others are kept. */
export function replaceString(key: string, oldValue: string, newValue: string): Migration {
  const swap = (from: string, to: string): Step => (s) => (get(s, key) === from ? set(s, key, to) : s);
  return { forward: swap(oldValue, newValue), backward: swap(newValue, oldValue) };
}

/** Replace a list value that still equals the old list exactly. */
export function replaceList(key: string, oldValue: Json[], newValue: Json[]): Migration {
  const same = (a: Json | undefined, b: Json[]) => JSON.stringify(a) === JSON.stringify(b);
  const swap = (from: Json[], to: Json[]): Step => (s) => (same(get(s, key), from) ? set(s, key, to) : s);
  return { forward: swap(oldValue, newValue), backward: swap(newValue, oldValue) };
}

/** A hop that needs a module but changes nothing. */
export const noOp: Migration = { forward: (s) => s, backward: (s) => s };

/** Run several migrations as one: forward in order, backward in reverse. */
export function chain(...ms: Migration[]): Migration {
  return {
    forward: (s) => ms.reduce((t, m) => m.forward(t), s),
    backward: (s) => ms.reduceRight((t, m) => m.backward(t), s),
  };
}

export const helpers = { get, has, set, remove, rename, addSettings, removeSettings, renameSetting, addValue, replaceString, replaceList, noOp, chain };
export type Helpers = typeof helpers;
