// Fault injection for crash tests: when CAISSON_FAULT names a point that the code passes,
// the process kills itself with SIGKILL right there, as a power cut or `kill -9` would.
// Costs one string comparison per point when unset.
const target = process.env.CAISSON_FAULT;
// With a fault armed, the distinct points passed so far: a test whose fault point is never reached
// (misspelt, or moved off the path it exercises) can say which ones the code did pass.
const passed = new Set<string>();

export function faultPoint(name: string): void {
  if (target === undefined) return;
  if (target === name) process.kill(process.pid, "SIGKILL");
  passed.add(name);
}

/** The fault point CAISSON_FAULT arms in this process, if any. */
export function armedFault(): string | undefined {
  return target;
}

/** With a fault armed: the distinct fault points passed (without dying) so far, in order. */
export function faultPointsPassed(): string[] {
  return [...passed];
}
