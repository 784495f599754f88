// Key paths: `settings.kernel.sysctl."vm.max_map_count"` ⇄ ["settings","kernel","sysctl","vm.max_map_count"].
// Bottlerocket's rules: segments are separated by dots; a segment holding a dot (or any character
// outside [A-Za-z0-9_/-]) must be double-quoted. We accept any character inside quotes, except a
// quote itself, so labels like `example.com/role` round-trip.

export class KeyError extends Error {
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message);
  }
}

const BARE_SEGMENT = /^[A-Za-z0-9_/-]+$/;
export const MAX_KEY_LENGTH = 255;

export function parseKey(key: string): string[] {
  if (key.length === 0) throw new KeyError("empty key", key);
  if (key.length > MAX_KEY_LENGTH) throw new KeyError(`key is longer than ${MAX_KEY_LENGTH} characters`, key);
  const segments: string[] = [];
  let i = 0;
  while (i <= key.length) {
    if (key[i] === '"') {
      const end = key.indexOf('"', i + 1);
      if (end < 0) throw new KeyError(`unterminated quote in key '${key}'`, key);
      const seg = key.slice(i + 1, end);
      if (seg.length === 0) throw new KeyError(`empty quoted segment in key '${key}'`, key);
      segments.push(seg);
      i = end + 1;
    } else {
      let end = key.indexOf(".", i);
      if (end < 0) end = key.length;
      const seg = key.slice(i, end);
      if (!BARE_SEGMENT.test(seg)) {
        throw new KeyError(
          seg.length === 0
            ? `empty segment in key '${key}'`
            : `invalid segment '${seg}' in key '${key}': quote segments holding dots or other characters, e.g. kernel.sysctl."vm.max_map_count"`,
          key,
        );
      }
      segments.push(seg);
      i = end;
    }
    if (i === key.length) break;
    if (key[i] !== ".") throw new KeyError(`expected '.' after segment in key '${key}'`, key);
    i++;
    if (i === key.length) throw new KeyError(`key '${key}' ends with '.'`, key);
  }
  return segments;
}

export function formatKey(segments: readonly string[]): string {
  return segments.map((s) => (BARE_SEGMENT.test(s) ? s : `"${s}"`)).join(".");
}

/** Parse a settings key given with or without its `settings.` prefix; returns segments under `settings`. */
export function parseSettingsKey(key: string): string[] {
  const segs = parseKey(key);
  return segs[0] === "settings" ? segs.slice(1) : segs;
}

/**
 * Split `key=value` at the first `=` outside a quoted key segment, so quoted keys may hold `=`
 * and values may too. undefined: there is no such `=`; `unterminated`: a quote is left open.
 */
export function splitKeyPair(pair: string): { key: string; value: string } | "no-equals" | "unterminated" {
  let inQuote = false;
  for (let i = 0; i < pair.length; i++) {
    if (pair[i] === '"') inQuote = !inQuote;
    else if (pair[i] === "=" && !inQuote) return { key: pair.slice(0, i), value: pair.slice(i + 1) };
  }
  return inQuote ? "unterminated" : "no-equals";
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function getPath(tree: Json | undefined, path: readonly string[]): Json | undefined {
  let cur: Json | undefined = tree;
  for (const seg of path) {
    if (!isObject(cur) || !Object.hasOwn(cur, seg)) return undefined;
    cur = cur[seg];
  }
  return cur;
}

/**
 * Put `value` at `path` in `tree` itself (parents created as needed), for building a new tree in
 * one pass: setPath copies every parent, so n calls on a growing tree cost n².
 */
export function setPathInPlace(tree: JsonObject, path: readonly string[], value: Json): void {
  let cur = tree;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!;
    const next = Object.hasOwn(cur, seg) ? cur[seg] : undefined;
    if (isObject(next)) cur = next;
    else {
      const made: JsonObject = {};
      Object.defineProperty(cur, seg, { value: made, enumerable: true, writable: true, configurable: true });
      cur = made;
    }
  }
  const last = path[path.length - 1];
  if (last === undefined) throw new Error("cannot replace the root in place");
  Object.defineProperty(cur, last, { value, enumerable: true, writable: true, configurable: true });
}

/** Returns a copy of `tree` with `value` at `path` (parents created as needed). */
export function setPath(tree: JsonObject, path: readonly string[], value: Json): JsonObject {
  if (path.length === 0) {
    if (!isObject(value)) throw new Error("cannot replace the root with a non-object");
    return value;
  }
  const [head, ...rest] = path as [string, ...string[]];
  const child = tree[head];
  return { ...tree, [head]: rest.length === 0 ? value : setPath(isObject(child) ? child : {}, rest, value) };
}

// The walks below are iterative (explicit stacks): trees come from users, and although every entry
// point bounds their depth (src/settings/limits.ts), a walk must not be what overflows the stack.

/** Deep merge: objects merge key by key, anything else in `patch` replaces what `base` had. */
export function deepMerge(base: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  const work: [JsonObject, JsonObject][] = [[out, patch]];
  while (work.length) {
    const [into, from] = work.pop()!;
    for (const [k, v] of Object.entries(from)) {
      const b = Object.hasOwn(into, k) ? into[k] : undefined;
      let value: Json = v;
      if (isObject(b) && isObject(v)) {
        value = { ...b };
        work.push([value, v]);
      }
      // defineProperty: a key named __proto__ stays a key, never a prototype change.
      Object.defineProperty(into, k, { value, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/** Leaf paths of a tree, depth first in key order: objects are descended, anything else (arrays too) is a leaf. */
export function leafPaths(tree: JsonObject, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  const path = [...prefix];
  const stack: Iterator<[string, Json]>[] = [Object.entries(tree)[Symbol.iterator]()];
  while (stack.length) {
    const next = stack[stack.length - 1]!.next();
    if (next.done) {
      stack.pop();
      path.pop();
      continue;
    }
    const [k, v] = next.value;
    if (isObject(v) && Object.keys(v).length > 0) {
      path.push(k);
      stack.push(Object.entries(v)[Symbol.iterator]());
    } else out.push([...path, k]);
  }
  return out;
}

export function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  const stack: [Json | undefined, Json | undefined][] = [[a, b]];
  while (stack.length) {
    const [x, y] = stack.pop()!;
    if (x === y) continue;
    if (typeof x !== typeof y || x === null || y === null || x === undefined || y === undefined) return false;
    if (Array.isArray(x)) {
      if (!Array.isArray(y) || x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) stack.push([x[i], y[i]]);
    } else if (isObject(x) && isObject(y)) {
      const kx = Object.keys(x);
      if (kx.length !== Object.keys(y).length) return false;
      for (const k of kx) {
        if (!Object.hasOwn(y, k)) return false;
        stack.push([x[k], y[k]]);
      }
    } else return false;
  }
  return true;
}

/** Keys (formatted, `settings.`-prefixed) whose leaf values differ between two settings trees. */
export function changedKeys(before: JsonObject, after: JsonObject): string[] {
  const paths = new Map<string, string[]>();
  for (const p of [...leafPaths(before), ...leafPaths(after)]) paths.set(formatKey(p), p);
  const out: string[] = [];
  for (const [k, p] of paths) if (!deepEqual(getPath(before, p), getPath(after, p))) out.push(`settings.${k}`);
  return out.sort();
}

/** True when one key path is a prefix of the other (a change to either touches the other). */
export function pathsOverlap(a: readonly string[], b: readonly string[]): boolean {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
