// Settings documents for `apply`: JSON when the text starts with `{`, else TOML in the user-data
// form. Both must hold a top-level settings table; other top-level tables are left alone.
import { parse as parseToml, TomlError } from "smol-toml";
import { isObject, type JsonObject } from "../settings/keys.js";

/** A document that cannot be used; the message names the source (and line:column for TOML). */
export class InputError extends Error {}

export function parseSettingsDocument(text: string, source: string): JsonObject {
  let doc: unknown;
  if (/^\s*\{/.test(text)) {
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new InputError(`${source}: invalid JSON: ${(e as Error).message}`);
    }
  } else {
    try {
      doc = parseToml(text);
    } catch (e) {
      if (e instanceof TomlError) {
        const first = e.message.replace(/^Invalid TOML document: /, "").split("\n")[0];
        throw new InputError(`${source}:${e.line}:${e.column}: invalid TOML: ${first}\n${e.codeblock}`);
      }
      throw e;
    }
  }
  if (!isObject(doc) || !Object.hasOwn(doc, "settings")) {
    throw new InputError(`${source}: no top-level settings table (expected [settings] in TOML or {"settings": {...}} in JSON)`);
  }
  // JSON.stringify turns TOML dates into strings; round-trip so the tree is plain JSON.
  const settings = JSON.parse(JSON.stringify(doc.settings)) as unknown;
  if (!isObject(settings)) throw new InputError(`${source}: settings must be a table`);
  return settings;
}
