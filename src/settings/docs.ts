// The generated settings reference (docs/settings.md), walked from the schema so it cannot drift.
import { Kind, type TSchema } from "@sinclair/typebox";
import { schemaFor, VARIANTS, type Variant } from "./schema.js";
import { describeType } from "./model.js";
import { formatKey } from "./keys.js";

interface Row {
  key: string;
  type: string;
  description: string;
  defaults: Partial<Record<Variant, unknown>>;
  generator?: string;
  secret: boolean;
  variants: Variant[];
}

function walk(s: TSchema, path: string[], variant: Variant, rows: Map<string, Row>, section?: string): void {
  const kind = s[Kind];
  const isMapOfTables = kind === "Record" && Object.values(s.patternProperties as Record<string, TSchema>)[0]![Kind] === "Object";
  if (kind === "Object" || isMapOfTables) {
    const props = kind === "Object" ? (s.properties as Record<string, TSchema>) : (Object.values(s.patternProperties as Record<string, TSchema>)[0]!.properties as Record<string, TSchema>);
    const base = kind === "Object" ? path : [...path, "<name>"];
    for (const [k, c] of Object.entries(props)) walk(c, [...base, k], variant, rows, section ?? (s.description as string | undefined));
    return;
  }
  const key = `settings.${path.map((p) => (p === "<name>" ? p : formatKey([p]))).join(".")}`;
  const vd = s["x-variant-defaults"] as Record<string, unknown> | undefined;
  const def = vd && variant in vd ? vd[variant] : s.default;
  const row = rows.get(key) ?? {
    key,
    type: kind === "Record" ? `map of ${describeType(Object.values(s.patternProperties as Record<string, TSchema>)[0]!)}` : describeType(s),
    description: (s.description as string | undefined) ?? "",
    defaults: {},
    generator: s["x-generator"] as string | undefined,
    secret: Boolean(s["x-secret"]) || JSON.stringify(s).includes('"x-secret":true'),
    variants: [],
  };
  if (def !== undefined) row.defaults[variant] = def;
  row.variants.push(variant);
  rows.set(key, row);
}

export function settingsReference(): string {
  const rows = new Map<string, Row>();
  for (const v of VARIANTS) walk(schemaFor(v), [], v, rows);
  const esc = (t: string) => t.replace(/\|/g, "\\|").replace(/\n/g, " ");
  const lines = [
    "# Settings reference",
    "",
    "Generated from `src/settings/schema.ts` by `npm run docs`; do not edit by hand (a test checks it is current).",
    "",
    "Set them in user data (`[settings.<namespace>]` TOML tables) or with `apiclient set key=value`.",
    "Keys holding dots or slashes are quoted: `settings.kernel.sysctl.\"vm.max_map_count\"`.",
    "`<name>` stands for a name you choose (a host container, a bundle, a module...).",
    "",
    `| key | type | default | variants | notes |`,
    `|---|---|---|---|---|`,
  ];
  for (const r of [...rows.values()].sort((a, b) => a.key.localeCompare(b.key))) {
    const d = Object.entries(r.defaults);
    const same = d.length === r.variants.length && d.every(([, x]) => JSON.stringify(x) === JSON.stringify(d[0]![1]));
    const def = d.length === 0 ? "" : same ? `\`${JSON.stringify(d[0]![1])}\`` : d.map(([v, x]) => `${v}: \`${JSON.stringify(x)}\``).join("<br>");
    const notes = [r.description, r.generator ? `Generated (\`${r.generator}\`) when absent.` : "", r.secret ? "**Secret**: redacted in logs and support dumps." : ""]
      .filter(Boolean)
      .join(" ");
    const variants = r.variants.length === VARIANTS.length ? "all" : r.variants.join(", ");
    lines.push(`| \`${esc(r.key)}\` | ${esc(r.type)} | ${esc(def)} | ${variants} | ${esc(notes)} |`);
  }
  return lines.join("\n") + "\n";
}
