// The machine name an update is built for, as the manifest and os-release spell it (uname -m:
// x86_64, aarch64), from Node's process.arch. Here rather than in src/host so the update agent
// needs nothing from the host; the host's GET /os reports the same value.
export function osArch(): string {
  return process.arch === "x64" ? "x86_64" : process.arch === "arm64" ? "aarch64" : process.arch;
}
