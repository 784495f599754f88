// The wire, declared once (src/protocol): the server's handlers serve exactly the table's paths and
// methods, the update actions are in it, and each wire family keeps one casing.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { ROUTES, UPDATE_ACTION } from "../../src/protocol/routes.js";
import { routes, routeFor } from "../../src/api/routes.js";
import { packageRoot } from "../../src/fsutil/package-root.js";

const methods = (t: Record<string, object>) => Object.entries(t).map(([p, m]) => `${p} ${Object.keys(m).sort().join(",")}`).sort();

test("the API's handlers and the protocol's table name the same paths and methods", () => {
  assert.deepEqual(methods(routes), methods(ROUTES));
  assert.equal(Object.keys(ROUTES).length, 24);
  assert.ok(routeFor("/settings", "PATCH")?.handler);
  assert.deepEqual(routeFor("/settings", "PUT"), { handler: undefined, allowed: ["GET", "PATCH"] });
  assert.equal(routeFor("/nope", "GET"), undefined);
  assert.equal(routeFor("constructor", "GET"), undefined, "not a path: an Object prototype member");
});

test("every update command has an action: a POST route answering 204", () => {
  for (const [cmd, path] of Object.entries(UPDATE_ACTION)) {
    const spec = (ROUTES[path] as Record<string, { response?: string }>).POST;
    assert.ok(spec, `${cmd}: ${path} has no POST`);
    assert.equal(spec.response, undefined, `${cmd}: ${path} answers 204`);
  }
});

// Bottlerocket's families keep its casing; ours are kebab-case (src/protocol/README.md).
const SNAKE = new Set(["KeypairRequest", "Image", "CommandRecord", "DownloadProgress", "BootRecord", "UpdateStatus"]);
const KEBAB = /^[a-z0-9]+(-[a-z0-9]+)*$/;
const SNAKE_CASE = /^[a-z0-9]+(_[a-z0-9]+)*$/;

test("one casing per wire family: snake_case for /updates/status, kebab-case for ours", () => {
  const file = join(packageRoot(), "src/protocol/types.ts");
  const src = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const wrong: string[] = [];
  let seen = 0;
  const check = (owner: string, members: ts.NodeArray<ts.TypeElement>) => {
    for (const m of members) {
      if (!ts.isPropertySignature(m)) continue;
      const name = ts.isStringLiteral(m.name) ? m.name.text : m.name.getText(src);
      seen++;
      if (!(SNAKE.has(owner) ? SNAKE_CASE : KEBAB).test(name)) wrong.push(`${owner}.${name}`);
      if (m.type) visit(owner, m.type);
    }
  };
  const visit = (owner: string, n: ts.Node): void => {
    if (ts.isTypeLiteralNode(n)) check(owner, n.members);
    else n.forEachChild((c) => visit(owner, c));
  };
  for (const s of src.statements) {
    if (ts.isInterfaceDeclaration(s)) check(s.name.text, s.members);
    else if (ts.isTypeAliasDeclaration(s)) visit(s.name.text, s.type);
  }
  assert.ok(seen > 80, `only ${seen} properties seen`);
  assert.deepEqual(wrong, []);
});
