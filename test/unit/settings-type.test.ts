// Settings, the type code reads live settings through, is derived from the schema (Static<>):
// checked at compile time here (a wrong type is an error) and against the defaults at run time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { asSettings, DEFAULT_NETWORK_API_PORT, type Settings } from "../../src/settings/schema.js";
import { defaultsFor } from "../../src/settings/model.js";

test("Settings is the schema's type: keys and value types follow it", () => {
  const s: Settings = { updates: { seed: 7, "ignore-waves": true }, api: { network: { port: 9443 } }, network: { "no-proxy": ["example.com"] } };
  const seed: number | undefined = s.updates?.seed;
  const proxy: string | undefined = s.network?.["https-proxy"];
  assert.equal(seed, 7);
  assert.equal(proxy, undefined);
  // @ts-expect-error a key the schema does not have
  const bad: Settings = { updates: { "no-such-key": 1 } };
  // @ts-expect-error a value of the wrong type
  const wrong: Settings = { updates: { seed: "7" } };
  assert.ok(bad && wrong);
  const d = asSettings(defaultsFor("dev"));
  assert.equal(d.api?.network?.port, DEFAULT_NETWORK_API_PORT);
  assert.equal(d.updates?.["version-lock"], "latest");
});
