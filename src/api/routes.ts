// The API's handlers, one per path and method of the protocol's table (src/protocol/routes.ts:
// Bottlerocket's paths and semantics, docs/api.md generated from it). The table types them: a
// path or method it lacks, or an answer of another shape, does not compile. Handlers translate
// HTTP to calls on the host's services (services.ts); domain errors become statuses in errors.ts.
import { ApiError } from "./errors.js";
import { formatKey, getPath, isObject, leafPaths, parseSettingsKey, setPathInPlace, type Json, type JsonObject } from "../settings/keys.js";
import { DEFAULT_TX } from "../datastore/store.js";
import type { UpdateAgent } from "../update/agent.js";
import type { CommandType } from "../protocol/types.js";
import type { Method, Path, ROUTES, Shapes } from "../protocol/routes.js";
import type { Services } from "./services.js";

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when there is none). */
  body: () => Json | undefined;
}

/** What a route answers: its response shape (200), or nothing (204); a pre-serialised JSON string of the shape is allowed. */
type Answer<S> = S extends { response: infer R extends keyof Shapes } ? Shapes[R] | { raw: string } : undefined;

/** A handler returns its route's answer: a JSON value (200), a pre-serialised JSON string (200), or undefined (204). */
export type Handler<A = unknown> = (svc: Services, req: Request) => A | Promise<A>;

type Table = typeof ROUTES;
/** Exactly the table's paths and methods, each handler typed by its route's response. */
type Handlers = { [P in Path]: { [M in keyof Table[P]]: Handler<Answer<Table[P][M]>> } };

const tx = (q: URLSearchParams) => q.get("tx") || DEFAULT_TX;

function required(q: URLSearchParams, name: string): string {
  const v = q.get(name);
  if (v === null || v === "") throw new ApiError(400, `missing required query parameter '${name}'`);
  return v;
}

function list(v: string): string[] {
  return v.split(",").map((s) => s.trim()).filter(Boolean);
}

function bodyObject(req: Request): JsonObject {
  const b = req.body();
  if (b === undefined) throw new ApiError(400, "request body is empty: send a JSON object");
  if (!isObject(b)) throw new ApiError(400, "request body must be a JSON object");
  return b;
}

/** Keep the leaves of `tree` (keys formatted under `root`) whose key starts with `prefix`. */
export function filterByPrefix(tree: JsonObject, root: string, prefix: string): JsonObject {
  // Built in place: one pass over the leaves (a copying setPath per leaf was quadratic, 113 s of
  // blocked event loop for 20,000 sysctl entries).
  const out: JsonObject = {};
  for (const p of leafPaths(tree)) {
    const key = `${root}.${formatKey(p)}`;
    if (key.startsWith(prefix)) setPathInPlace(out, p, getPath(tree, p) as Json);
  }
  return out;
}

/** Pick full keys (`settings.a.b`) out of a tree rooted at `settings`. */
function pickKeys(tree: JsonObject, keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of keys) {
    const path = parseSettingsKey(k);
    const v = getPath(tree, path);
    // A key inside one already picked adds nothing; a key above one replaces it.
    if (v !== undefined && path.length > 0) setPathInPlace(out, path, v);
  }
  return out;
}

function namedOrPrefixed(all: JsonObject, root: string, q: URLSearchParams): JsonObject {
  const names = q.get("names");
  if (names !== null) return Object.fromEntries(list(names).filter((n) => Object.hasOwn(all, n)).map((n) => [n, all[n]!]));
  const prefix = q.get("prefix");
  if (prefix === null) return all;
  if (prefix === "") throw new ApiError(400, "empty prefix");
  const full = prefix.startsWith(root) ? prefix : `${root}.${prefix}`;
  return Object.fromEntries(Object.entries(all).filter(([n]) => `${root}.${n}`.startsWith(full) || full === root));
}

function agent(svc: Services): UpdateAgent {
  if (!svc.updates) throw new ApiError(404, "this host has no update agent");
  return svc.updates;
}

// The agent's refusals keep Bottlerocket's codes (404 nothing to act on, 409 wrong state, 423
// busy): AgentError kinds in errors.ts's STATUS.
const updateCommand = (cmd: CommandType): Handler<undefined> => (svc) => {
  agent(svc).command(cmd);
  return undefined;
};

export const routes: Handlers = {
  "/": {
    GET: (svc, req) => {
      const model: JsonObject = {
        settings: svc.settings.live(),
        services: svc.catalog.services(),
        "configuration-files": svc.catalog.configurationFiles(),
        os: svc.os(),
      };
      const prefix = req.query.get("prefix");
      if (prefix === null) return model;
      if (prefix === "") throw new ApiError(400, "empty prefix");
      const out: JsonObject = {};
      for (const [root, sub] of Object.entries(model)) {
        if (!isObject(sub)) continue;
        if (root.startsWith(prefix)) out[root] = sub;
        else if (prefix.startsWith(root + ".")) {
          const filtered = filterByPrefix(sub, root, prefix);
          if (Object.keys(filtered).length) out[root] = filtered;
        }
      }
      return out;
    },
  },
  "/settings": {
    GET: (svc, req) => {
      const keys = req.query.get("keys");
      if (keys !== null) return pickKeys(svc.settings.live(), list(keys));
      const prefix = req.query.get("prefix");
      if (prefix === null) return { raw: svc.settings.liveJson() };
      if (prefix === "") throw new ApiError(400, "empty prefix");
      return filterByPrefix(svc.settings.live(), "settings", prefix.startsWith("settings") ? prefix : `settings.${prefix}`);
    },
    PATCH: (svc, req) => {
      svc.settings.patch(tx(req.query), bodyObject(req));
      return undefined;
    },
  },
  "/settings/keypair": {
    PATCH: (svc, req) => {
      const b = bodyObject(req);
      const payload = b.request_payload;
      if (!Array.isArray(payload) || payload.length === 0 || !payload.every((p) => typeof p === "string")) {
        throw new ApiError(400, 'body must be {"request_payload": ["key=value", ...]} with at least one pair');
      }
      svc.settings.patchKeypairs(tx(req.query), payload as string[]);
      return undefined;
    },
  },
  "/tx": {
    GET: (svc, req) => svc.settings.pending(tx(req.query)),
    DELETE: (svc, req) => svc.settings.deleteTx(tx(req.query)),
  },
  "/tx/list": { GET: (svc) => svc.settings.transactions() },
  "/tx/commit": { POST: (svc, req) => svc.settings.commit(tx(req.query)) },
  "/tx/apply": {
    POST: async (svc, req) => {
      const keys = req.query.get("keys");
      await svc.settings.apply(keys === null ? "all" : list(keys));
      return undefined;
    },
  },
  "/tx/commit_and_apply": {
    POST: async (svc, req) => {
      const dry = req.query.get("dry-run");
      if (dry === "true" || dry === "") return svc.settings.preview(tx(req.query));
      return svc.settings.commitAndApply(tx(req.query));
    },
  },
  "/os": {
    GET: (svc, req) => {
      const prefix = req.query.get("prefix");
      const os = svc.os();
      if (prefix === null) return os;
      if (prefix === "") throw new ApiError(400, "empty prefix");
      return filterByPrefix(os, "os", prefix.startsWith("os") ? prefix : `os.${prefix}`);
    },
  },
  "/services": { GET: (svc, req) => namedOrPrefixed(svc.catalog.services(), "services", req.query) },
  "/configuration-files": { GET: (svc, req) => namedOrPrefixed(svc.catalog.configurationFiles(), "configuration-files", req.query) },
  "/metadata/affected-services": { GET: (svc, req) => svc.catalog.affectedServices(list(required(req.query, "keys"))) },
  "/metadata/setting-generators": { GET: (svc) => svc.settings.generators() },
  "/metadata/templates": { GET: (svc, req) => svc.catalog.templatesFor(list(required(req.query, "keys"))) },
  "/boot-status": { GET: (svc) => svc.bootStatus() },
  "/diagnostics/memory": { GET: (svc) => svc.memory() },
  "/applier/history": { GET: (svc) => svc.catalog.history() },
  "/actions/reboot": {
    POST: (svc) => {
      svc.reboot();
      return undefined;
    },
  },
  "/updates/status": { GET: (svc) => agent(svc).status() },
  "/actions/refresh-updates": { POST: updateCommand("refresh") },
  "/actions/prepare-update": { POST: updateCommand("prepare") },
  "/actions/activate-update": { POST: updateCommand("activate") },
  "/actions/deactivate-update": { POST: updateCommand("deactivate") },
  "/actions/rollback-update": { POST: updateCommand("rollback") },
};

/** The handler for a request's path and method: undefined when the path has none; `allowed` lists its methods. */
export function routeFor(path: string, method: string): { handler?: Handler; allowed: string[] } | undefined {
  if (!Object.hasOwn(routes, path)) return undefined;
  const byMethod = routes[path as Path] as Partial<Record<Method, Handler>>;
  return { handler: byMethod[method as Method], allowed: Object.keys(byMethod) };
}
