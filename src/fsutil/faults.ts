// Fault injection for crash tests: when CAISSON_FAULT names a point that the code passes,
// the process kills itself with SIGKILL right there, as a power cut or `kill -9` would.
// Costs one string comparison per point when unset.
const target = process.env.CAISSON_FAULT;

export function faultPoint(name: string): void {
  if (target !== undefined && target === name) process.kill(process.pid, "SIGKILL");
}
