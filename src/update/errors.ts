// The update agent's refusals, by kind (Bottlerocket's thar-be-updates error names), each with
// one HTTP status: 404 nothing to act on, 409 the state forbids it, 423 another command holds
// the lock. A refusal is thrown by the request itself (the API answers with it); the message is
// the kind's prefix and the detail, as users have always seen it ("UpdateLockHeld: 'prepare' is
// still running; ...").

import type { AgentErrorKind } from "../protocol/types.js";

// The kinds are part of the wire (error bodies): declared in src/protocol/types.ts.
export type { AgentErrorKind } from "../protocol/types.js";

/** Every kind has a status: adding a kind without one does not compile. */
export const AGENT_ERROR_STATUS: Record<AgentErrorKind, 404 | 409 | 423> = {
  UninitializedUpdateStatus: 404,
  UpdateLockHeld: 423,
  DisallowCommand: 409,
  UpdateDoesNotExist: 404,
  NoStagedImage: 404,
  NothingToRollBack: 409,
  NoBootSlots: 409,
};

/** How the message starts: the kind itself, except where the message has always said it in words. */
const PREFIX: Partial<Record<AgentErrorKind, string>> = {
  NothingToRollBack: "nothing to roll back to",
};

export class AgentError extends Error {
  readonly status: 404 | 409 | 423;

  constructor(
    readonly kind: AgentErrorKind,
    /** The message without its prefix: what is wrong here and what to do next. */
    readonly detail: string,
  ) {
    super(`${PREFIX[kind] ?? kind}: ${detail}`);
    this.status = AGENT_ERROR_STATUS[kind];
  }
}
