// Walks the schema of src/settings/schema.ts: validation with key-named errors, defaults per
// variant, generated keys, redaction of secrets and typing of `key=value` strings.
// Objects and maps are walked here so that every error names the full key path (quoted where
// needed); anything below them (scalars, lists, lists of objects) is checked by TypeBox.
import { Kind, type TSchema } from "@sinclair/typebox";
import { Value } from "@sinclair/typebox/value";
import { formatKey, isObject, type Json, type JsonObject } from "./keys.js";
import { MULTI_LINE, schemaFor, SINGLE_LINE, type Variant } from "./schema.js";

export class SettingsError extends Error {
  constructor(
    message: string,
    readonly key?: string,
    readonly expected?: string,
  ) {
    super(message);
  }
}

type Branch = { kind: "object"; schema: TSchema } | { kind: "map"; schema: TSchema; keyPattern: RegExp; value: TSchema };

function branchOf(schema: TSchema): Branch | undefined {
  if (schema[Kind] === "Object") return { kind: "object", schema };
  if (schema[Kind] === "Record") {
    const [pattern, value] = Object.entries(schema.patternProperties as Record<string, TSchema>)[0]!;
    return { kind: "map", schema, keyPattern: new RegExp(pattern), value };
  }
  return undefined;
}

// Names an object inherits (`constructor`, `__proto__`...) are never settings: own properties only,
// and no map may hold a key that would reach a prototype when merged.
const RESERVED = new Set(["__proto__", "constructor", "prototype"]);

function child(b: Branch, seg: string): TSchema | undefined {
  if (RESERVED.has(seg)) return undefined;
  const props = b.schema.properties as Record<string, TSchema>;
  if (b.kind === "object") return Object.hasOwn(props, seg) ? props[seg] : undefined;
  return b.keyPattern.test(seg) ? b.value : undefined;
}

const fmt = (path: readonly string[]) => `settings${path.length ? "." + formatKey(path) : ""}`;

/** The schema of the setting at `path` (segments under `settings`), or undefined if no such key. */
export function schemaAt(variant: Variant, path: readonly string[]): TSchema | undefined {
  let s: TSchema = schemaFor(variant);
  for (const seg of path) {
    const b = branchOf(s);
    const c = b && child(b, seg);
    if (!c) return undefined;
    s = c;
  }
  return s;
}

/** A short human description of what a schema accepts, for error messages and docs. */
export function describeType(s: TSchema): string {
  if (s.anyOf) return (s.anyOf as TSchema[]).map(describeType).join(" or ");
  if (s.const !== undefined) return JSON.stringify(s.const);
  const kind = s[Kind];
  switch (kind) {
    case "String":
      return s.format
        ? `string (${s.format})`
        : s.pattern === SINGLE_LINE
        ? "single-line string"
        : s.pattern === MULTI_LINE
        ? "text"
        : s.pattern
        ? `string matching ${s.pattern}`
        : "string";
    case "Integer": {
      const range = s.minimum !== undefined || s.maximum !== undefined ? ` in [${s.minimum ?? "-∞"}, ${s.maximum ?? "∞"}]` : "";
      return `integer${range}`;
    }
    case "Number":
      return "number";
    case "Boolean":
      return "boolean";
    case "Tuple":
      return `[${(s.items as TSchema[]).map(describeType).join(", ")}]`;
    case "Array":
      return `list of ${describeType(s.items as TSchema)}`;
    case "Object":
      return "table";
    case "Record":
      return "map";
    case "ApiclientCommand":
      return '["apiclient", arguments...]';
    default:
      return String(kind).toLowerCase();
  }
}

/** Validate a (possibly partial) settings tree. Throws SettingsError naming the first bad key. */
export function validateSettings(variant: Variant, tree: unknown): asserts tree is JsonObject {
  walkValidate(schemaFor(variant), tree, []);
}

function walkValidate(schema: TSchema, value: unknown, path: string[]): void {
  const b = branchOf(schema);
  if (b) {
    if (!isObject(value)) {
      throw new SettingsError(`invalid value for '${fmt(path)}': expected a table of settings, got ${kindOf(value)}`, fmt(path), "table");
    }
    for (const [k, v] of Object.entries(value)) {
      const c = child(b, k);
      const p = [...path, k];
      if (!c) {
        const hint = b.kind === "map" ? ` (names must match ${b.keyPattern.source})` : "";
        throw new SettingsError(`unknown setting '${fmt(p)}'${hint}`, fmt(p));
      }
      walkValidate(c, v, p);
    }
    return;
  }
  // A lone UTF-16 surrogate cannot be written as UTF-8 (it becomes U+FFFD) nor escaped in TOML or
  // JSON for another program: no setting may hold one, whatever its schema.
  const bad = illFormed(value);
  if (bad !== undefined) {
    const shown = containsSecret(schema) ? "" : ` (${preview(value)})`;
    throw new SettingsError(`invalid value for '${fmt(path)}': ${bad}${shown}`, fmt(path), describeType(schema));
  }
  if (!Value.Check(schema, value)) {
    const first = Value.Errors(schema, value).First();
    const where = first && first.path ? ` at ${first.path}` : "";
    const expected = describeType(schema);
    // Error messages reach logs, the boot status and the console: never echo a secret.
    const shown = containsSecret(schema) ? "a value that is not shown (it holds a secret)" : preview(value);
    throw new SettingsError(
      `invalid value for '${fmt(path)}': expected ${expected}, got ${shown}${where && first ? ` (${first.message}${where})` : ""}`,
      fmt(path),
      expected,
    );
  }
}

// With the u flag a surrogate pair is one code point: only a lone surrogate matches (String.prototype.isWellFormed, Node 20+).
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** Why a JSON value holds a string that is not well-formed Unicode text (in a value or a table key), or undefined. */
function illFormed(v: unknown): string | undefined {
  if (typeof v === "string") return !LONE_SURROGATE.test(v) ? undefined : "a string is not well-formed Unicode (it holds a lone UTF-16 surrogate)";
  if (Array.isArray(v)) {
    for (const x of v) {
      const r = illFormed(x);
      if (r) return r;
    }
  } else if (isObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      const r = illFormed(k) ?? illFormed(x);
      if (r) return r;
    }
  }
  return undefined;
}

function containsSecret(s: TSchema): boolean {
  return JSON.stringify(s).includes('"x-secret":true');
}

function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a table" : `${typeof v} ${preview(v)}`;
}

function preview(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

/** Default settings of a variant, from `default` and `x-variant-defaults` in the schema. */
export function defaultsFor(variant: Variant): JsonObject {
  const out = walkDefaults(schemaFor(variant), variant);
  return isObject(out) ? out : {};
}

function walkDefaults(schema: TSchema, variant: Variant): Json | undefined {
  const vd = schema["x-variant-defaults"] as Record<string, Json> | undefined;
  if (vd && Object.hasOwn(vd, variant)) return vd[variant];
  if (schema.default !== undefined) return schema.default as Json;
  if (schema[Kind] === "Object") {
    const out: JsonObject = {};
    for (const [k, c] of Object.entries(schema.properties as Record<string, TSchema>)) {
      const d = walkDefaults(c, variant);
      if (d !== undefined) out[k] = d;
    }
    return Object.keys(out).length ? out : undefined;
  }
  return undefined;
}

export interface SchemaLeaf {
  path: string[];
  schema: TSchema;
}

/** Every named setting (object properties; maps count as one setting). */
export function settingsLeaves(variant: Variant): SchemaLeaf[] {
  const out: SchemaLeaf[] = [];
  const walk = (s: TSchema, path: string[]) => {
    if (s[Kind] === "Object") for (const [k, c] of Object.entries(s.properties as Record<string, TSchema>)) walk(c, [...path, k]);
    else out.push({ path, schema: s });
  };
  walk(schemaFor(variant), []);
  return out;
}

/** key → generator name, for keys generated when absent. */
export function generatorsFor(variant: Variant): Map<string, { path: string[]; generator: string }> {
  const out = new Map<string, { path: string[]; generator: string }>();
  for (const { path, schema } of settingsLeaves(variant)) {
    const g = schema["x-generator"] as string | undefined;
    if (g) out.set(fmt(path), { path, generator: g });
  }
  return out;
}

export const REDACTED = "<redacted>";

/** Copy of a settings tree with every secret value replaced; for logs and support dumps. */
export function redactSettings(variant: Variant, tree: JsonObject): JsonObject {
  return redact(schemaFor(variant), tree) as JsonObject;
}

function redact(schema: TSchema | undefined, value: Json): Json {
  if (!schema) return value;
  if (schema["x-secret"]) return REDACTED;
  if (Array.isArray(value)) {
    const items = schema.items;
    return value.map((v, i) => redact(Array.isArray(items) ? (items as TSchema[])[i] : (items as TSchema | undefined), v));
  }
  if (isObject(value)) {
    const b = branchOf(schema);
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = redact(b ? child(b, k) : undefined, v);
    return out;
  }
  return value;
}

/**
 * Type a `key=value` string by the schema of its key (an improvement on Bottlerocket's guessing,
 * where `motd=42` fails as an integer): strings stay strings, booleans and integers are parsed,
 * lists and tables are read as JSON.
 */
export function coerceKeypairValue(variant: Variant, path: string[], raw: string): Json {
  const schema = schemaAt(variant, path);
  if (!schema) throw new SettingsError(`unknown setting '${fmt(path)}'`, fmt(path));
  const accepts = (s: TSchema): string[] => (s.anyOf ? (s.anyOf as TSchema[]).flatMap(accepts) : [s.const !== undefined ? typeof s.const : String(s[Kind])]);
  const kinds = accepts(schema);
  if (kinds.includes("Boolean") && (raw === "true" || raw === "false")) return raw === "true";
  if ((kinds.includes("Integer") || kinds.includes("Number")) && /^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (kinds.some((k) => k === "Array" || k === "Tuple" || k === "Object" || k === "Record")) {
    try {
      return JSON.parse(raw) as Json;
    } catch {
      if (!kinds.includes("String")) {
        throw new SettingsError(`invalid value for '${fmt(path)}': expected ${describeType(schema)} written as JSON, e.g. '["a","b"]'`, fmt(path), describeType(schema));
      }
    }
  }
  return raw;
}
