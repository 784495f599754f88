// The settings reference in docs/ is generated from the schema: it must be current.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { settingsReference } from "../../src/settings/docs.js";
import { packageRoot } from "../../src/fsutil/package-root.js";

test("docs/settings.md is generated from the schema and current (npm run docs)", () => {
  const doc = readFileSync(join(packageRoot(), "docs/settings.md"), "utf8");
  assert.equal(doc, settingsReference(), "docs/settings.md is stale: run npm run docs");
  assert.match(doc, /`settings\.kubernetes\.node-labels` \| map of single-line string .* \| k8s \|/);
  assert.match(doc, /`settings\.kernel\.lockdown` .* dev: `"none"`<br>k8s: `"integrity"`/);
});
