// The API's routes, in one table: Bottlerocket's paths and semantics (reference §1.2).
// Handlers translate HTTP to calls on the host's management plane (src/host/host.ts).
import { ApiError } from "./errors.js";
import { formatKey, getPath, isObject, leafPaths, parseSettingsKey, setPath, type Json, type JsonObject } from "../settings/keys.js";
import { DEFAULT_TX } from "../datastore/store.js";
import type { Host } from "../host/host.js";
import { AgentError, type CommandType, type UpdateAgent } from "../update/agent.js";
import { updateAgentOf } from "../update/registry.js";
import { memoryReport } from "../host/memory.js";

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body (undefined when there is none). */
  body: () => Json | undefined;
}

/** A handler returns a JSON value (200), a pre-serialised JSON string (200), or undefined (204). */
export type Handler = (host: Host, req: Request) => Json | undefined | { raw: string } | Promise<Json | undefined | { raw: string }>;

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
  let out: JsonObject = {};
  for (const p of leafPaths(tree)) {
    const key = `${root}.${formatKey(p)}`;
    if (key.startsWith(prefix)) out = setPath(out, p, getPath(tree, p) as Json);
  }
  return out;
}

/** Pick full keys (`settings.a.b`) out of a tree rooted at `settings`. */
function pickKeys(tree: JsonObject, keys: string[]): JsonObject {
  let out: JsonObject = {};
  for (const k of keys) {
    const path = parseSettingsKey(k);
    const v = getPath(tree, path);
    if (v !== undefined) out = setPath(out, path, v);
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

function agent(host: Host): UpdateAgent {
  const a = updateAgentOf(host);
  if (!a) throw new ApiError(404, "this host has no update agent");
  return a;
}

/** The agent's refusals keep Bottlerocket's codes: 404 nothing to act on, 409 wrong state, 423 busy. */
function updates<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof AgentError) throw new ApiError(e.status, e.message);
    throw e;
  }
}

const updateCommand = (cmd: CommandType): Handler => (host) => updates(() => {
  agent(host).command(cmd);
  return undefined;
});

export const routes: Record<string, Partial<Record<string, Handler>>> = {
  "/": {
    GET: (host, req) => {
      const model: JsonObject = host.model();
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
    GET: (host, req) => {
      const keys = req.query.get("keys");
      if (keys !== null) return pickKeys(host.liveSettings(), list(keys));
      const prefix = req.query.get("prefix");
      if (prefix === null) return { raw: host.liveSettingsJson() };
      if (prefix === "") throw new ApiError(400, "empty prefix");
      return filterByPrefix(host.liveSettings(), "settings", prefix.startsWith("settings") ? prefix : `settings.${prefix}`);
    },
    PATCH: (host, req) => {
      host.patch(tx(req.query), bodyObject(req));
      return undefined;
    },
  },
  "/settings/keypair": {
    PATCH: (host, req) => {
      const b = bodyObject(req);
      const payload = b.request_payload;
      if (!Array.isArray(payload) || payload.length === 0 || !payload.every((p) => typeof p === "string")) {
        throw new ApiError(400, 'body must be {"request_payload": ["key=value", ...]} with at least one pair');
      }
      host.patchKeypairs(tx(req.query), payload as string[]);
      return undefined;
    },
  },
  "/tx": {
    GET: (host, req) => host.pendingSettings(tx(req.query)),
    DELETE: (host, req) => host.deleteTx(tx(req.query)),
  },
  "/tx/list": { GET: (host) => host.transactions() },
  "/tx/commit": { POST: (host, req) => host.commit(tx(req.query)) },
  "/tx/apply": {
    POST: async (host, req) => {
      const keys = req.query.get("keys");
      await host.apply(keys === null ? "all" : list(keys));
      return undefined;
    },
  },
  "/tx/commit_and_apply": {
    POST: async (host, req) => {
      const dry = req.query.get("dry-run");
      if (dry === "true" || dry === "") return host.previewCommit(tx(req.query)) as unknown as Json;
      return host.commitAndApply(tx(req.query));
    },
  },
  "/os": {
    GET: (host, req) => {
      const prefix = req.query.get("prefix");
      const os = host.os();
      if (prefix === null) return os;
      if (prefix === "") throw new ApiError(400, "empty prefix");
      return filterByPrefix(os, "os", prefix.startsWith("os") ? prefix : `os.${prefix}`);
    },
  },
  "/services": { GET: (host, req) => namedOrPrefixed(host.services(), "services", req.query) },
  "/configuration-files": { GET: (host, req) => namedOrPrefixed(host.configurationFiles(), "configuration-files", req.query) },
  "/metadata/affected-services": { GET: (host, req) => host.affectedServices(list(required(req.query, "keys"))) },
  "/metadata/setting-generators": { GET: (host) => host.settingGenerators() },
  "/metadata/templates": { GET: (host, req) => host.templatesFor(list(required(req.query, "keys"))) },
  "/boot-status": { GET: (host) => host.bootStatus() as unknown as Json },
  // Ours: PSS of the resident agents (and of the benchmark's bare node:http server when it runs).
  "/diagnostics/memory": { GET: () => memoryReport() as unknown as Json },
  // Ours: what the last applies did (files rewritten, units restarted), newest first.
  "/applier/history": { GET: (host) => host.applyHistory() },
  "/actions/reboot": {
    POST: (host) => {
      host.reboot();
      return undefined;
    },
  },
  "/updates/status": { GET: (host) => updates(() => agent(host).status() as unknown as Json) },
  "/actions/refresh-updates": { POST: updateCommand("refresh") },
  "/actions/prepare-update": { POST: updateCommand("prepare") },
  "/actions/activate-update": { POST: updateCommand("activate") },
  "/actions/deactivate-update": { POST: updateCommand("deactivate") },
  // Ours: Bottlerocket rolls back with signpost on the host; here it is an API action.
  "/actions/rollback-update": { POST: updateCommand("rollback") },
};
