// Templates: Handlebars files (as Bottlerocket's schnauzer) rendered with {settings, os, host}.
// Each template's inputs are read off its syntax tree — every `settings.*` path it names — so the
// map from a changed key to the files (and services) it affects is derived, never hand-kept.
import Handlebars from "handlebars";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { registerHelpers } from "./helpers.js";
import type { Json } from "../settings/keys.js";

type HB = typeof Handlebars;
type Node = hbs.AST.Node;

export interface Template {
  name: string;
  source: string;
  render: (ctx: TemplateContext) => string;
  /** Settings paths (segments under `settings`) the template reads. */
  inputs: string[][];
}

export interface TemplateContext {
  settings: Json;
  os: Json;
  /** Facts of the host that are inputs but not settings (e.g. the base CA bundle). */
  host: Json;
}

export function createHandlebars(): HB {
  const hb = Handlebars.create();
  registerHelpers(hb);
  return hb;
}

export function loadTemplates(dir: string, hb: HB = createHandlebars()): Map<string, Template> {
  const out = new Map<string, Template>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith(".hbs")).sort()) {
    const source = readFileSync(join(dir, name), "utf8");
    out.set(name, compileTemplate(name, source, hb));
  }
  return out;
}

export function compileTemplate(name: string, source: string, hb: HB = createHandlebars()): Template {
  let ast: hbs.AST.Program;
  try {
    ast = hb.parse(source);
  } catch (e) {
    throw new Error(`template ${name}: ${(e as Error).message}`);
  }
  // noEscape: these are configuration files, not HTML. strict is off: absent settings render empty.
  const render = hb.compile(source, { noEscape: true });
  return { name, source, render: (ctx) => render(ctx), inputs: settingsPaths(ast) };
}

/** Every `settings.a.b` path a template names, outermost form (prefixes of others dropped later by overlap tests). */
export function settingsPaths(ast: hbs.AST.Program): string[][] {
  const found = new Map<string, string[]>();
  const visit = (n: unknown): void => {
    if (!n || typeof n !== "object") return;
    if (Array.isArray(n)) return n.forEach(visit);
    const node = n as Node & Record<string, unknown>;
    if (node.type === "PathExpression") {
      const p = node as unknown as hbs.AST.PathExpression;
      // Paths inside blocks may be written from the root (@root.settings.x); relative ones are
      // covered by the block's own path.
      if (p.parts[0] === "settings" && p.depth === 0) {
        const segs = p.parts.slice(1);
        found.set(JSON.stringify(segs), segs);
      } else if (p.data && p.parts[0] === "root" && p.parts[1] === "settings") {
        const segs = p.parts.slice(2);
        found.set(JSON.stringify(segs), segs);
      }
    }
    for (const [k, v] of Object.entries(node)) if (k !== "loc") visit(v);
  };
  visit(ast);
  return [...found.values()];
}
