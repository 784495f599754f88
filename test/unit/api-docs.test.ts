// The API reference in docs/ is generated from the protocol's routes table: it must be current.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { apiReference } from "../../src/protocol/docs.js";
import { ROUTES } from "../../src/protocol/routes.js";
import { packageRoot } from "../../src/fsutil/package-root.js";

test("docs/api.md is generated from src/protocol/routes.ts and current (npm run docs:api)", () => {
  const doc = readFileSync(join(packageRoot(), "docs/api.md"), "utf8");
  assert.equal(doc, apiReference(), "docs/api.md is stale: run npm run docs:api");
  for (const [path, methods] of Object.entries(ROUTES)) {
    for (const m of Object.keys(methods)) assert.ok(doc.includes(`| \`${path}\` | ${m} |`), `${m} ${path} is not in docs/api.md`);
  }
  assert.match(doc, /\| `\/updates\/status` \| GET \| .* \| 200 `UpdateStatus` \|/);
  assert.match(doc, /\| `\/tx\/commit_and_apply` \| POST \| .*`dry-run`: .* \| — \| 200 `CommitAndApplyResult` \|/);
});
