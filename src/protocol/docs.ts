// The generated API reference (docs/api.md), walked from the routes table so it cannot drift.
import { ROUTES, type Method, type RouteSpec } from "./routes.js";

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

export function apiReference(): string {
  const lines = [
    "# API reference",
    "",
    "Generated from `src/protocol/routes.ts` by `caisson docs api` (`npm run docs:api`); do not edit by hand.",
    "The shapes named below are the TypeScript types of `src/protocol/types.ts` (`ApplyRecords` is `ApplyRecord[]`).",
    "",
    "The API listens on a Unix socket (`/run/api.sock` on the image) and, when settings enable it, over mutual TLS on the network;",
    "paths and semantics are Bottlerocket's, those marked *Ours* are Caisson's own. Bodies are JSON.",
    "Casing is one per family: Bottlerocket's where it has one (snake_case in `/updates/status`, kebab-case in settings",
    "and transactions), kebab-case in ours (`/boot-status`, `/diagnostics/memory`, `/applier/history`, error bodies).",
    "",
    "Errors answer with `ErrorBody`: `message`; `kind` for a domain error (e.g. `InvalidSetting` 400, `TooLarge` 413,",
    "`NothingPending` 422, `ApplyFailed` 500, the update agent's `UpdateLockHeld` 423, `DisallowCommand` 409); and the kind's details.",
    "",
    "| path | method | what it does | query | body | response |",
    "|---|---|---|---|---|---|",
  ];
  for (const [path, methods] of Object.entries(ROUTES)) {
    for (const [method, spec] of Object.entries(methods) as [Method, RouteSpec][]) {
      const query = Object.entries(spec.query ?? {})
        .map(([k, v]) => `\`${k}\`: ${v}`)
        .join("<br>");
      lines.push(
        `| \`${path}\` | ${method} | ${cell(spec.description)} | ${cell(query) || "—"} | ${spec.body ? `\`${spec.body}\`` : "—"} | ${spec.response ? `200 \`${spec.response}\`` : "204"} |`,
      );
    }
  }
  return lines.join("\n") + "\n";
}
