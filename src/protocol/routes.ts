// The API's paths, in one table: path → method → what it does, its query parameters, its request
// body and its response, named by the types in types.ts. The server's handlers (src/api/routes.ts)
// are typed from it (a path, a method or a response shape that disagrees does not compile), the
// apiclient and the tests take their paths from it, and docs/api.md is generated from it.
import type * as T from "./types.js";

/** The shapes a route may take or answer, by the name the table uses. */
export interface Shapes {
  Model: T.Model;
  SettingsTree: T.SettingsTree;
  OsInfo: T.OsInfo;
  CatalogMap: T.CatalogMap;
  KeyList: T.KeyList;
  TransactionList: T.TransactionList;
  KeyMap: T.KeyMap;
  GeneratorMap: T.GeneratorMap;
  KeypairRequest: T.KeypairRequest;
  CommitAndApplyResult: T.CommitAndApplyResult;
  BootStatus: T.BootStatus;
  MemoryReport: T.MemoryReport;
  ApplyRecords: readonly T.ApplyRecord[];
  UpdateStatus: T.UpdateStatus;
}

export type ShapeName = keyof Shapes;
export type Method = "GET" | "PATCH" | "POST" | "DELETE";

export interface RouteSpec {
  /** One line: what it does. */
  description: string;
  /** Query parameters: name → what it means ("required" when it must be given). */
  query?: Readonly<Record<string, string>>;
  /** The request body's shape; absent: none is read. */
  body?: ShapeName;
  /** The 200 answer's shape; absent: 204 No Content. */
  response?: ShapeName;
}

const TX = { tx: "transaction name (default: `default`)" } as const;

export const ROUTES = {
  "/": {
    GET: { description: "The whole model: settings, services, configuration-files and os.", query: { prefix: "only keys starting with it (e.g. `settings.motd`, `os`)" }, response: "Model" },
  },
  "/settings": {
    GET: {
      description: "Live settings, rooted at `settings`.",
      query: { keys: "comma-separated full keys to pick", prefix: "only keys starting with it" },
      response: "SettingsTree",
    },
    PATCH: { description: "Validate a partial settings tree and merge it into a pending transaction.", query: TX, body: "SettingsTree" },
  },
  "/settings/keypair": {
    PATCH: { description: "As PATCH /settings, with `key=value` pairs.", query: TX, body: "KeypairRequest" },
  },
  "/tx": {
    GET: { description: "A pending transaction's settings.", query: TX, response: "SettingsTree" },
    DELETE: { description: "Discard a pending transaction; the keys it held.", query: TX, response: "KeyList" },
  },
  "/tx/list": { GET: { description: "The pending transactions' names.", response: "TransactionList" } },
  "/tx/commit": { POST: { description: "Make a transaction live (renders nothing); the changed keys.", query: TX, response: "KeyList" } },
  "/tx/apply": {
    POST: { description: "Render the configuration files fed by the keys (or all) and restart what reads them.", query: { keys: "comma-separated full keys (default: all)" } },
  },
  "/tx/commit_and_apply": {
    POST: {
      description: "Commit a transaction and apply it; with dry-run, what would change (keys, file diffs, restarts) and change nothing.",
      query: { ...TX, "dry-run": "`true` (or empty): preview only" },
      response: "CommitAndApplyResult",
    },
  },
  "/os": { GET: { description: "The OS's read-only description.", query: { prefix: "only keys starting with it" }, response: "OsInfo" } },
  "/services": { GET: { description: "Services and the files and units they own.", query: { names: "comma-separated names", prefix: "only names starting with it" }, response: "CatalogMap" } },
  "/configuration-files": {
    GET: { description: "Configuration files and their templates.", query: { names: "comma-separated names", prefix: "only names starting with it" }, response: "CatalogMap" },
  },
  "/metadata/affected-services": { GET: { description: "For each key, the services whose files it feeds.", query: { keys: "required: comma-separated full keys" }, response: "KeyMap" } },
  "/metadata/setting-generators": { GET: { description: "Generated keys and their generators.", response: "GeneratorMap" } },
  "/metadata/templates": { GET: { description: "For each key, the templates that read it.", query: { keys: "required: comma-separated full keys" }, response: "KeyMap" } },
  "/boot-status": { GET: { description: "Ours: bring-up (user data, migration, datastore, first apply), controllers, and on the image the boot, health and data partition.", response: "BootStatus" } },
  "/diagnostics/memory": { GET: { description: "Ours: PSS of the resident agents (and of the benchmark's bare node:http server when it runs).", response: "MemoryReport" } },
  "/applier/history": { GET: { description: "Ours: what the last applies did (files rewritten, units restarted), newest first.", response: "ApplyRecords" } },
  "/actions/reboot": { POST: { description: "Reboot the host shortly after answering." } },
  "/updates/status": { GET: { description: "The update agent's state, chosen update, slots and last command (404 before any command ran).", response: "UpdateStatus" } },
  "/actions/refresh-updates": { POST: { description: "Refresh the list of available updates (runs in the background)." } },
  "/actions/prepare-update": { POST: { description: "Download and write the chosen update into the other slot (runs in the background)." } },
  "/actions/activate-update": { POST: { description: "Make the prepared slot boot next, on trial." } },
  "/actions/deactivate-update": { POST: { description: "Undo activate: the running slot boots next." } },
  "/actions/rollback-update": { POST: { description: "Ours: go back to the version that ran before this one (Bottlerocket uses signpost on the host)." } },
} as const satisfies Record<string, Partial<Record<Method, RouteSpec>>>;

export type Path = keyof typeof ROUTES;

/** The update agent's commands and the action that starts each (POST, 204 at once). */
export const UPDATE_ACTION: Record<T.CommandType, Path> = {
  refresh: "/actions/refresh-updates",
  prepare: "/actions/prepare-update",
  activate: "/actions/activate-update",
  deactivate: "/actions/deactivate-update",
  rollback: "/actions/rollback-update",
};

