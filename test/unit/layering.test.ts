// The import structure of src/: every folder has a layer, and a folder imports only folders of
// lower layers (so no cycle between folders can form). A new folder must be placed here.
// Imports are read by TypeScript's own pre-processor (ts.preProcessFile), not by a regex.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { packageRoot } from "../../src/fsutil/package-root.js";

/** Lower first. Same layer: may not import each other. Why each sits where it does: src/README.md. */
export const LAYERS: Record<string, number> = {
  fsutil: 0,
  settings: 1,
  protocol: 2,
  boot: 3,
  datastore: 3,
  userdata: 3,
  controller: 3,
  apiclient: 3,
  applier: 4,
  update: 4,
  migrations: 5,
  image: 5,
  launch: 6,
  repo: 6,
  api: 7,
  host: 8,
  cli: 9,
};

const SRC = join(packageRoot(), "src");

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith(".ts") ? [p] : [];
  });
}

function folderImports(): { from: string; to: string; file: string; spec: string }[] {
  const out: { from: string; to: string; file: string; spec: string }[] = [];
  for (const file of sources(SRC)) {
    const from = relative(SRC, file).split("/")[0]!;
    for (const imp of ts.preProcessFile(readFileSync(file, "utf8"), true, true).importedFiles) {
      if (!imp.fileName.startsWith(".")) continue;
      const target = relative(SRC, resolve(dirname(file), imp.fileName));
      const to = target.split("/")[0]!;
      if (target.startsWith("..")) out.push({ from, to: "(outside src)", file: relative(SRC, file), spec: imp.fileName });
      else if (to !== from) out.push({ from, to, file: relative(SRC, file), spec: imp.fileName });
    }
  }
  return out;
}

test("every folder under src/ has a layer and a README", () => {
  const folders = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
  const unplaced = folders.filter((f) => !(f in LAYERS));
  assert.deepEqual(unplaced, [], `place these folders in LAYERS (test/unit/layering.test.ts): ${unplaced.join(", ")}`);
  const noReadme = folders.filter((f) => !readdirSync(join(SRC, f)).includes("README.md"));
  assert.deepEqual(noReadme, [], `folders without a README.md: ${noReadme.join(", ")}`);
});

test("folders import only folders of lower layers (hence no cycle between folders)", () => {
  const wrong = folderImports()
    .filter((e) => !(e.to in LAYERS) || LAYERS[e.to]! >= LAYERS[e.from]!)
    .map((e) => `${e.from} (layer ${LAYERS[e.from]}) -> ${e.to} (layer ${LAYERS[e.to] ?? "?"}): src/${e.file} imports ${e.spec}`);
  assert.deepEqual(wrong, [], `imports against the layer order:\n${wrong.join("\n")}`);
});

test("the check sees imports: a known edge is found", () => {
  const edges = folderImports();
  assert.ok(edges.some((e) => e.from === "host" && e.to === "settings"), "host imports settings");
  assert.ok(edges.length > 20, `only ${edges.length} edges seen`);
  assert.ok(edges.some((e) => e.from === "api" && e.to === "protocol"), "api imports protocol");
});

test("protocol, the wire, imports only settings and fsutil", () => {
  const wrong = folderImports().filter((e) => e.from === "protocol" && e.to !== "settings" && e.to !== "fsutil");
  assert.deepEqual(wrong, []);
});
