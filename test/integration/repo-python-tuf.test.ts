// Cross-implementation check: python-tuf's ngclient (the reference TUF client, not the library
// that signed the repository) accepts what `caisson repo` publishes and refuses tampering.
// The venv is made by `npm run setup` (scripts/setup.mjs); a missing venv FAILS this test, so a
// machine without python-tuf cannot pass the suite by accident.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { fakeBuild } from "../helpers/fake-build.js";
import { addUpdate, initRepository, readRepository, repoPaths, rotateRoot, serveRepository } from "../../src/repo/repository.js";
import { packageRoot } from "../../src/fsutil/package-root.js";

const run = promisify(execFile);
let python = "";
const clientScript = join(packageRoot(), "test", "fixtures", "python_tuf_client.py");
const quiet = () => {};

before(() => {
  // The venv lives in the shared cache, keyed by its pins; setup makes it when missing and names it.
  const r = spawnSync(process.execPath, [join(packageRoot(), "scripts", "setup.mjs"), "--print-python-tuf"], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  python = r.stdout.trim();
  const ready = () => python !== "" && existsSync(python) && spawnSync(python, ["-c", "import tuf.ngclient"], { stdio: "ignore" }).status === 0;
  assert.ok(ready(), `python-tuf could not be set up in the shared cache (exit ${r.status}): run \`npm run setup\``);
});

async function repoWithTwoVersions() {
  const work = mkdtempSync(join(tmpdir(), "caisson-pytuf-"));
  const dir = join(work, "repo");
  await initRepository(dir);
  fakeBuild(join(work, "b1"), { version: "1.0.0" });
  fakeBuild(join(work, "b2"), { version: "1.1.0", size: 200_000 });
  const mig = join(work, "mig");
  mkdirSync(mig);
  writeFileSync(join(mig, "motd.mjs"), "export const forward = (s) => s;\n");
  await addUpdate(dir, { buildDir: join(work, "b1"), progress: quiet });
  await addUpdate(dir, { buildDir: join(work, "b2"), migrationsDir: mig, progress: quiet });
  return { work, dir };
}

interface ClientResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the python client (asynchronously: the server answering it lives in this process). */
async function pyClient(work: string, dir: string, urls: { metadataUrl: string; targetsUrl: string }, names: string[], root = "1.root.json"): Promise<ClientResult> {
  const c = mkdtempSync(join(work, "pyclient-"));
  const args = [clientScript, join(repoPaths(dir).metadata, root), join(c, "metadata"), urls.metadataUrl, urls.targetsUrl, join(c, "targets"), ...names];
  try {
    const r = await run(python, args, { timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? String(e) };
  }
}

test("python-tuf accepts the published repository: manifest.json and a root image", async () => {
  const { work, dir } = await repoWithTwoVersions();
  const s = await serveRepository(dir, 0);
  try {
    const { manifest, targets } = readRepository(dir);
    const rootImage = manifest.updates[0]!.images.root;
    const migration = manifest.migrations["(1.0.0, 1.1.0)"]![0]!;
    const r = await pyClient(work, dir, s, ["manifest.json", rootImage, migration]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { ok: boolean; targets: Record<string, { path: string; sha256: string }> };
    assert.ok(out.ok);
    assert.deepEqual(JSON.parse(readFileSync(out.targets["manifest.json"]!.path, "utf8")), manifest);
    const published = targets.find((t) => t.name === rootImage)!;
    assert.equal(out.targets[rootImage]!.sha256, published.sha256);
    assert.deepEqual(readFileSync(out.targets[rootImage]!.path), readFileSync(join(repoPaths(dir).targets, `${published.sha256}.${rootImage}`)));
  } finally {
    await s.close();
  }
});

test("python-tuf follows a root rotation from the shipped root", async () => {
  const { work, dir } = await repoWithTwoVersions();
  await rotateRoot(dir);
  const s = await serveRepository(dir, 0);
  try {
    const r = await pyClient(work, dir, s, ["manifest.json"], "1.root.json");
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { root_version: number }).root_version, 2);
  } finally {
    await s.close();
  }
});

test("python-tuf refuses a tampered target", async () => {
  const { work, dir } = await repoWithTwoVersions();
  const { manifest, targets } = readRepository(dir);
  const kernel = manifest.updates[0]!.images.kernel;
  const t = targets.find((x) => x.name === kernel)!;
  const file = join(repoPaths(dir).targets, `${t.sha256}.${kernel}`);
  const bytes = readFileSync(file);
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
  writeFileSync(file, bytes);
  const s = await serveRepository(dir, 0);
  try {
    const r = await pyClient(work, dir, s, [kernel]);
    assert.equal(r.code, 1, `expected a refusal, got exit ${r.code}: ${r.stdout}`);
    assert.match(r.stderr, /hash|LengthOrHashMismatch/i);
    // Untouched targets still download: the refusal is about the tampered file.
    assert.equal((await pyClient(work, dir, s, ["manifest.json"])).code, 0);
  } finally {
    await s.close();
  }
});

test("python-tuf refuses metadata with a broken signature", async () => {
  const { work, dir } = await repoWithTwoVersions();
  const m = repoPaths(dir).metadata;
  const ts = JSON.parse(readFileSync(join(m, "timestamp.json"), "utf8")) as { signatures: { keyid: string; sig: string }[] };
  const sig = ts.signatures[0]!;
  sig.sig = (sig.sig[0] === "0" ? "1" : "0") + sig.sig.slice(1);
  writeFileSync(join(m, "timestamp.json"), JSON.stringify(ts, null, 2));
  const s = await serveRepository(dir, 0);
  try {
    const r = await pyClient(work, dir, s, ["manifest.json"]);
    assert.equal(r.code, 1, `expected a refusal, got exit ${r.code}: ${r.stdout}`);
    assert.match(r.stderr, /signature|threshold|Unsigned/i);
  } finally {
    await s.close();
  }
});
