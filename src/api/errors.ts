// API errors: a status code and a JSON body with a message (Bottlerocket answers in plain text;
// JSON lets clients show the offending key and what was expected).
import { KeyError } from "../settings/keys.js";
import { SettingsError } from "../settings/model.js";
import { LimitError } from "../settings/limits.js";
import { DatastoreError, NothingPendingError } from "../datastore/store.js";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof SettingsError) return new ApiError(400, e.message, { key: e.key, expected: e.expected });
  if (e instanceof LimitError) return new ApiError(e.status, e.message, { limit: e.limit, key: e.key });
  if (e instanceof KeyError) return new ApiError(400, e.message, { key: e.key });
  if (e instanceof NothingPendingError) return new ApiError(422, e.message);
  if (e instanceof DatastoreError) return new ApiError(400, e.message);
  return new ApiError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
}

export function errorBody(e: ApiError): string {
  const body: Record<string, unknown> = { message: e.message };
  for (const [k, v] of Object.entries(e.details)) if (v !== undefined) body[k] = v;
  return JSON.stringify(body);
}
