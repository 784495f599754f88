#!/usr/bin/env node
// Set-up for the main job and the tests on a fresh Debian 12 machine: the Debian tools Caisson's
// image build and QEMU runs need, installed with apt-get when missing (as root), and python-tuf
// in a venv under the shared cache (CAISSON_CACHE, else ~/.cache/caisson; the independent TUF client the repository tests check against).
// Usage: node scripts/setup.mjs [--only debian|python-tuf] | --print-python-tuf
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const TOOLS = {
  mmdebstrap: "mmdebstrap",
  "qemu-system-x86_64": "qemu-system-x86",
  "qemu-img": "qemu-utils",
  "mkfs.erofs": "erofs-utils",
  veritysetup: "cryptsetup-bin",
  sgdisk: "gdisk",
  "mkfs.vfat": "dosfstools",
  mcopy: "mtools",
  "mkfs.ext4": "e2fsprogs",
  debugfs: "e2fsprogs",
  zstd: "zstd",
  openssl: "openssl",
  depmod: "kmod",
  // Consumers of the rendered configuration files, run by test/unit/file-consumers.test.ts.
  containerd: "containerd",
  chronyd: "chrony",
  "systemd-analyze": "systemd", // systemd-sysctl and the environment.d generator come with it, off PATH
  unshare: "util-linux",
  hostname: "hostname",
};
const FILES = { "/usr/share/OVMF/OVMF_CODE_4M.fd": "ovmf", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi": "systemd-boot-efi" };

// Looked up on PATH (and the sbin directories root's PATH may lack) without a shell.
const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin"];
const have = (cmd) => dirs.some((d) => d && existsSync(join(d, cmd)));
const missing = new Set([
  ...Object.entries(TOOLS).filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg),
  ...Object.entries(FILES).filter(([f]) => !existsSync(f)).map(([, pkg]) => pkg),
]);

/** apt-get install, as root; false (with the reason on stderr) when it cannot be done. */
function aptInstall(pkgs) {
  if (process.getuid?.() !== 0) {
    console.error(`Caisson needs these Debian packages: ${pkgs.join(" ")}\nInstall them as root: apt-get install -y --no-install-recommends ${pkgs.join(" ")}`);
    return false;
  }
  console.error(`setup: installing ${pkgs.join(" ")} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  // Some of these packages ship daemons (containerd, chrony) that the tests only run as parsers:
  // Debian's policy-rc.d (exit 101) keeps their services from starting on this machine.
  const policy = "/usr/sbin/policy-rc.d";
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, "#!/bin/sh\n# Caisson's setup: no service starts while it installs packages.\nexit 101\n", { mode: 0o755 });
  try {
    for (const args of [["update", "-q"], ["install", "-y", "-q", "--no-install-recommends", ...pkgs]]) {
      const r = spawnSync("apt-get", args, { stdio: ["ignore", "inherit", "inherit"], env });
      if (r.status !== 0) {
        console.error(`setup: apt-get ${args[0]} failed (exit ${r.status}); fix the machine's apt sources and run again`);
        return false;
      }
    }
    return true;
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
}

// python-tuf, pinned: the reference TUF client (ngclient), for test/integration/repo-python-tuf.test.ts.
// securesystemslib's ed25519 verification needs cryptography (its [crypto] extra).
const PYTHON_TUF = ["tuf==7.0.1", "securesystemslib[crypto]==1.6.0", "cryptography==50.0.2"];
const cacheBase = process.env.CAISSON_CACHE || join(process.env.XDG_CACHE_HOME || join(process.env.HOME || "/root", ".cache"), "caisson");
// Keyed by the pins: a change of pins makes a new venv.
const pythonTufVenv = join(cacheBase, `python-tuf-${PYTHON_TUF.join("_").replace(/[^A-Za-z0-9._-]/g, "-")}`);
const venvPython = join(pythonTufVenv, "bin", "python");
const pythonTufReady = () =>
  existsSync(venvPython) &&
  spawnSync(venvPython, ["-c", "import tuf.ngclient, cryptography, sys; sys.exit(0 if tuf.__version__ == '7.0.1' else 1)"], { stdio: "ignore" }).status === 0;

function pythonTuf() {
  if (pythonTufReady()) return true;
  console.error(`setup: creating ${pythonTufVenv} with ${PYTHON_TUF.join(" ")}`);
  const venv = () => spawnSync("python3", ["-m", "venv", "--clear", pythonTufVenv], { stdio: ["ignore", "inherit", "inherit"] }).status === 0;
  // Debian splits venv/ensurepip into python3-venv.
  if (!venv()) {
    rmSync(pythonTufVenv, { recursive: true, force: true });
    if (!aptInstall(["python3-venv"]) || !venv()) {
      console.error("setup: python3 -m venv failed (is python3 with venv installed?)");
      return false;
    }
  }
  const pip = spawnSync(venvPython, ["-m", "pip", "install", "-q", "--disable-pip-version-check", ...PYTHON_TUF], { stdio: ["ignore", "inherit", "inherit"] });
  if (pip.status !== 0 || !pythonTufReady()) {
    console.error(`setup: pip install ${PYTHON_TUF.join(" ")} failed (PyPI unreachable?)`);
    return false;
  }
  return true;
}

// --print-python-tuf: make sure the venv is ready, then print its python (for the tests).
if (process.argv.includes("--print-python-tuf")) {
  const ok = pythonTuf();
  if (ok) console.log(venvPython);
  process.exit(ok ? 0 : 1);
}
const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
let ok = true;
if (only === undefined || only === "debian") ok = (missing.size === 0 || aptInstall([...missing])) && ok;
if (only === undefined || only === "python-tuf") ok = pythonTuf() && ok;
process.exit(ok ? 0 : 1);
