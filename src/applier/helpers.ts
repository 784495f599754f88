// Handlebars helpers available to templates (a subset of Bottlerocket's schnauzer helpers).
import type Handlebars from "handlebars";

export function registerHelpers(hb: typeof Handlebars): void {
  hb.registerHelper("join_array", (sep: string, arr: unknown) => (Array.isArray(arr) ? arr.join(sep) : ""));
}
