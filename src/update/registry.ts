// Which update agent serves a host's API. A side table rather than a Host field: the host's
// bring-up (src/host/host.ts) stays independent of the update agent, which the daemon attaches.
import type { UpdateAgent } from "./agent.js";

const agents = new WeakMap<object, UpdateAgent>();

export function attachUpdateAgent(host: object, agent: UpdateAgent): void {
  agents.set(host, agent);
}

export function updateAgentOf(host: object): UpdateAgent | undefined {
  return agents.get(host);
}
