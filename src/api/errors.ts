// API errors: a status code and a JSON body with a message (Bottlerocket answers in plain text;
// JSON lets clients show the offending key and what was expected). Every error a route may meet
// that is not a bug has a kind, and every kind one status in STATUS: adding a kind without a
// status does not compile. Anything else is a bug or the host's own trouble: 500, logged by the
// server, with its message (never a bare "internal error").
import { KeyError } from "../settings/keys.js";
import { SettingsError } from "../settings/model.js";
import { LimitError } from "../settings/limits.js";
import { DatastoreError, NothingPendingError } from "../datastore/store.js";
import { ApplyError } from "../applier/applier.js";
import { AGENT_ERROR_STATUS, AgentError } from "../update/errors.js";
import type { ErrorBody, ErrorKind } from "../protocol/types.js";

/** Protocol-level errors of the API itself (no such path, bad body...): status given where thrown. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

// The kinds and the error body are part of the wire: declared in src/protocol/types.ts.
export type { ErrorKind } from "../protocol/types.js";

export const STATUS: Record<ErrorKind, number> = {
  InvalidSetting: 400,
  InvalidKey: 400,
  TooDeep: 400,
  TooLarge: 413,
  NothingPending: 422,
  InvalidTransaction: 400,
  ApplyFailed: 500,
  ...AGENT_ERROR_STATUS,
};

/** The kind of a domain error and what its body adds to the message; undefined for anything else. */
function classify(e: unknown): { kind: ErrorKind; details?: Record<string, unknown> } | undefined {
  if (e instanceof SettingsError) return { kind: "InvalidSetting", details: { key: e.key, expected: e.expected } };
  if (e instanceof LimitError) return { kind: e.limit === "depth" ? "TooDeep" : "TooLarge", details: { limit: e.limit, key: e.key } };
  if (e instanceof KeyError) return { kind: "InvalidKey", details: { key: e.key } };
  if (e instanceof NothingPendingError) return { kind: "NothingPending" };
  if (e instanceof DatastoreError) return { kind: "InvalidTransaction" };
  if (e instanceof ApplyError) return { kind: "ApplyFailed", details: { failures: e.failures, written: e.plan.files.map((f) => f.path), "restart-units": e.plan["restart-units"] } };
  if (e instanceof AgentError) return { kind: e.kind };
  return undefined;
}

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const c = classify(e);
  const message = (e as Error)?.message ?? String(e);
  if (c) return new ApiError(STATUS[c.kind], message, { kind: c.kind, ...c.details });
  return new ApiError(500, `internal error: ${message}`);
}

export function errorBody(e: ApiError): string {
  const body: ErrorBody = { message: e.message };
  for (const [k, v] of Object.entries(e.details)) if (v !== undefined) body[k] = v;
  return JSON.stringify(body);
}
