import { test } from "node:test";
import assert from "node:assert/strict";
import {
  REDACTED,
  SettingsError,
  coerceKeypairValue,
  defaultsFor,
  describeType,
  generatorsFor,
  redactSettings,
  schemaAt,
  validateSettings,
} from "../../src/settings/model.js";
import { VARIANTS, type Variant } from "../../src/settings/schema.js";
import type { JsonObject } from "../../src/settings/keys.js";
import { CERT_A, CERT_B } from "../helpers/test-certs.js";

/** Asserts that validation fails with a SettingsError for `key` whose message matches `re`. */
function rejects(variant: Variant, tree: unknown, key: string, re: RegExp, expected?: string): void {
  assert.throws(
    () => validateSettings(variant, tree),
    (e: unknown) => {
      assert.ok(e instanceof SettingsError, `not a SettingsError: ${String(e)}`);
      assert.equal(e.key, key);
      assert.match(e.message, re);
      if (expected !== undefined) assert.equal(e.expected, expected);
      return true;
    },
  );
}

test("validateSettings accepts a representative valid tree on both variants", () => {
  const tree: JsonObject = {
    motd: "hi",
    network: { hostname: "node-1.example.com", hosts: [["10.0.0.1", ["db.example"]]], "no-proxy": ["10.0.0.0/8"] },
    dns: { "name-servers": ["1.1.1.1", "2606:4700:4700::1111"], "search-list": ["example.com"] },
    kernel: { sysctl: { "vm.max_map_count": "262144", "net/ipv4/ip_forward": "1" }, lockdown: "integrity", modules: { sctp: { allowed: false } } },
    "host-containers": { admin: { source: "registry.example/admin:1", enabled: true, "user-data": "aGVsbG8=" } },
    updates: { "metadata-base-url": "https://updates.example/meta", seed: 2047, "version-lock": "v1.2.3" },
    "container-registry": { credentials: [{ registry: "docker.io", username: "u", password: "p" }] },
    "oci-defaults": { "resource-limits": { "max-open-files": { "hard-limit": "unlimited", "soft-limit": 1024 } } },
  };
  for (const v of VARIANTS) validateSettings(v, tree);
  validateSettings("dev", {});
});

test("unknown keys are named in full", () => {
  rejects("dev", { motdd: "x" }, "settings.motdd", /^unknown setting 'settings\.motdd'$/);
  rejects("dev", { network: { hostnam: "x" } }, "settings.network.hostnam", /unknown setting 'settings\.network\.hostnam'/);
  rejects("dev", { kernel: { sysctl: { "vm.max_map_count": "1", "Bad Name": "x" } } }, 'settings.kernel.sysctl."Bad Name"', /unknown setting 'settings\.kernel\.sysctl\."Bad Name"' \(names must match/);
  rejects("dev", { kernel: { sysctl: { vm: "1" } } }, "settings.kernel.sysctl.vm", /names must match/);
  rejects("dev", { "host-containers": { admin: { source: "x", userdata: "y" } } }, "settings.host-containers.admin.userdata", /unknown setting/);
});

test("kubernetes settings exist only on the k8s variant", () => {
  const k8s = { kubernetes: { "max-pods": 50, "node-labels": { "example.com/role": "worker" }, "cluster-dns-ip": ["10.96.0.10"] } };
  rejects("dev", k8s, "settings.kubernetes", /unknown setting 'settings\.kubernetes'/);
  validateSettings("k8s", k8s);
  rejects("k8s", { kubernetes: { "node-labels": { "bad label!": "x" } } }, 'settings.kubernetes.node-labels."bad label!"', /unknown setting/);
  assert.equal(schemaAt("dev", ["kubernetes"]), undefined);
  assert.ok(schemaAt("k8s", ["kubernetes", "node-labels", "example.com/role"]));
});

test("wrong types name the key and what was expected", () => {
  rejects("dev", { motd: 42 }, "settings.motd", /invalid value for 'settings\.motd': expected text, got 42/, "text");
  rejects("k8s", { kubernetes: { "max-pods": "5" } }, "settings.kubernetes.max-pods", /expected integer in \[1, ∞\], got "5"/, "integer in [1, ∞]");
  rejects("k8s", { kubernetes: { "max-pods": 0 } }, "settings.kubernetes.max-pods", /expected integer in \[1, ∞\], got 0/);
  rejects("dev", { updates: { seed: 2048 } }, "settings.updates.seed", /expected integer in \[0, 2047\]/);
  rejects("dev", { "boot": { "reboot-to-reconcile": "yes" } }, "settings.boot.reboot-to-reconcile", /expected boolean, got "yes"/, "boolean");
  rejects("dev", { kernel: { lockdown: "strict" } }, "settings.kernel.lockdown", /expected "none" or "integrity" or "confidentiality"/);
  rejects("dev", { kernel: "x" }, "settings.kernel", /expected a table of settings, got string "x"/, "table");
  rejects("dev", { kernel: { sysctl: ["a"] } }, "settings.kernel.sysctl", /expected a table of settings, got a list/);
  rejects("dev", [], "settings", /invalid value for 'settings': expected a table/);
  rejects("dev", { ntp: { "time-servers": "pool.ntp.org" } }, "settings.ntp.time-servers", /expected list of string \(host\)/);
  rejects("dev", { network: { hosts: [["10.0.0.1", []]] } }, "settings.network.hosts", /expected list of \[string \(ip\), list of string \(domain\)\].*at \/0\/1/);
});

test("format checks: ip, url, hostname, base64", () => {
  const ok: JsonObject[] = [
    { dns: { "name-servers": ["192.0.2.1", "::1"] } },
    { updates: { "metadata-base-url": "https://updates.example/meta", "targets-base-url": "http://10.0.0.1:8080/t" } },
    { network: { hostname: "a" } },
    { network: { hostname: "ip-10-0-0-1.ec2.internal" } },
    { "host-containers": { admin: { "user-data": "" } } },
    { "host-containers": { admin: { "user-data": "aGk=" } } },
    { pki: { corp: { data: Buffer.from(CERT_A).toString("base64").replace(/(.{16})/, "$1\n") } } },
  ];
  for (const t of ok) validateSettings("dev", t);
  rejects("dev", { dns: { "name-servers": ["1.2.3.400"] } }, "settings.dns.name-servers", /expected list of string \(ip\).*format/);
  rejects("dev", { dns: { "name-servers": ["dns.example"] } }, "settings.dns.name-servers", /string \(ip\)/);
  rejects("dev", { updates: { "metadata-base-url": "not a url" } }, "settings.updates.metadata-base-url", /expected string \(url\)/, "string (url)");
  rejects("dev", { updates: { "metadata-base-url": "mailto:x@example.com" } }, "settings.updates.metadata-base-url", /expected string \(url\)/);
  rejects("dev", { updates: { "metadata-base-url": "/relative/path" } }, "settings.updates.metadata-base-url", /expected string \(url\)/);
  rejects("dev", { network: { hostname: "-bad" } }, "settings.network.hostname", /expected string \(hostname\)/, "string (hostname)");
  rejects("dev", { network: { hostname: "under_score" } }, "settings.network.hostname", /hostname/);
  rejects("dev", { network: { hostname: "a".repeat(64) } }, "settings.network.hostname", /hostname/);
  rejects("dev", { "host-containers": { admin: { "user-data": "not base64!" } } }, "settings.host-containers.admin.user-data", /expected string \(base64\)/, "string (base64)");
  rejects("dev", { "host-containers": { admin: { "user-data": "abc" } } }, "settings.host-containers.admin.user-data", /base64/);
});

test("defaultsFor gives each variant its defaults", () => {
  const dev = defaultsFor("dev");
  const k8s = defaultsFor("k8s");
  assert.equal(dev.motd, "Welcome to Caisson!");
  assert.deepEqual(dev.kernel, { lockdown: "none" });
  assert.deepEqual(k8s.kernel, { lockdown: "integrity" });
  assert.deepEqual(dev.ntp, { "time-servers": ["pool.ntp.org"], options: ["iburst"] });
  assert.deepEqual(dev.updates, { "version-lock": "latest", "ignore-waves": false });
  assert.equal(dev.kubernetes, undefined);
  assert.deepEqual(k8s.kubernetes, {
    "cluster-domain": "cluster.local",
    "authentication-mode": "tls",
    "standalone-mode": false,
    "max-pods": 110,
    "log-level": 2,
    "server-tls-bootstrap": true,
  });
  // Generated keys have no default: they are generated when absent.
  assert.equal((dev.updates as JsonObject).seed, undefined);
  assert.equal(dev.network, undefined);
  // Defaults are valid settings themselves.
  validateSettings("dev", dev);
  validateSettings("k8s", k8s);
});

test("coerceKeypairValue types key=value strings by the key's schema", () => {
  assert.equal(coerceKeypairValue("dev", ["motd"], "42"), "42", "motd=42 stays a string");
  assert.equal(coerceKeypairValue("dev", ["motd"], "true"), "true");
  assert.equal(coerceKeypairValue("dev", ["motd"], '["a"]'), '["a"]');
  assert.equal(coerceKeypairValue("dev", ["kernel", "sysctl", "vm.max_map_count"], "262144"), "262144");
  assert.equal(coerceKeypairValue("dev", ["boot", "reboot-to-reconcile"], "true"), true);
  assert.equal(coerceKeypairValue("dev", ["boot", "reboot-to-reconcile"], "false"), false);
  assert.equal(coerceKeypairValue("dev", ["updates", "seed"], "42"), 42);
  assert.equal(coerceKeypairValue("dev", ["container-runtime", "max-container-log-line-size"], "-1"), -1);
  assert.equal(coerceKeypairValue("dev", ["oci-defaults", "resource-limits", "max-open-files", "hard-limit"], "1024"), 1024);
  assert.equal(coerceKeypairValue("dev", ["oci-defaults", "resource-limits", "max-open-files", "hard-limit"], "unlimited"), "unlimited");
  assert.deepEqual(coerceKeypairValue("dev", ["ntp", "time-servers"], '["a.example","b.example"]'), ["a.example", "b.example"]);
  assert.deepEqual(coerceKeypairValue("dev", ["kernel", "modules"], '{"sctp":{"allowed":false}}'), { sctp: { allowed: false } });
  // A key that takes a string or a list: JSON when it parses, else the string.
  assert.deepEqual(coerceKeypairValue("k8s", ["kubernetes", "cluster-dns-ip"], '["10.96.0.10"]'), ["10.96.0.10"]);
  assert.equal(coerceKeypairValue("k8s", ["kubernetes", "cluster-dns-ip"], "10.96.0.10"), "10.96.0.10");
  // Values that do not parse as the key's type are left for validation to reject with its message.
  assert.equal(coerceKeypairValue("dev", ["boot", "reboot-to-reconcile"], "yes"), "yes");

  assert.throws(
    () => coerceKeypairValue("dev", ["ntp", "time-servers"], "a.example"),
    (e: unknown) =>
      e instanceof SettingsError &&
      e.key === "settings.ntp.time-servers" &&
      /invalid value for 'settings\.ntp\.time-servers': expected list of string \(host\) written as JSON/.test(e.message),
  );
  assert.throws(() => coerceKeypairValue("dev", ["motdd"], "x"), (e: unknown) => e instanceof SettingsError && e.key === "settings.motdd" && /unknown setting/.test(e.message));
  assert.throws(() => coerceKeypairValue("dev", ["kubernetes", "max-pods"], "5"), SettingsError);
  assert.equal(coerceKeypairValue("k8s", ["kubernetes", "max-pods"], "5"), 5);
});

test("redactSettings hides secrets and keeps everything else", () => {
  const tree: JsonObject = {
    motd: "hi",
    "container-registry": {
      credentials: [
        { registry: "docker.io", username: "u", password: "hunter2" },
        { registry: "ghcr.io", auth: "dXNlcjpwYXNz", identitytoken: "tok" },
      ],
      mirrors: [{ registry: "docker.io", endpoint: ["https://mirror.example"] }],
    },
    "host-containers": { admin: { source: "img", enabled: true, "user-data": "c2VjcmV0" } },
    "bootstrap-containers": { init: { mode: "once", "user-data": "c2VjcmV0" } },
    kubernetes: { "bootstrap-token": "abcdef.0123456789abcdef", "cluster-name": "prod", "server-key": "a2V5" },
  };
  const before = structuredClone(tree);
  const r = redactSettings("k8s", tree);
  assert.deepEqual(r, {
    motd: "hi",
    "container-registry": {
      credentials: [
        { registry: "docker.io", username: "u", password: REDACTED },
        { registry: "ghcr.io", auth: REDACTED, identitytoken: REDACTED },
      ],
      mirrors: [{ registry: "docker.io", endpoint: ["https://mirror.example"] }],
    },
    "host-containers": { admin: { source: "img", enabled: true, "user-data": REDACTED } },
    "bootstrap-containers": { init: { mode: "once", "user-data": REDACTED } },
    kubernetes: { "bootstrap-token": REDACTED, "cluster-name": "prod", "server-key": REDACTED },
  });
  assert.deepEqual(tree, before, "the input is not mutated");
  assert.ok(!JSON.stringify(r).includes("hunter2"));
});

test("generatorsFor lists the generated keys", () => {
  for (const v of VARIANTS) {
    const g = generatorsFor(v);
    assert.deepEqual([...g.keys()].sort(), ["settings.network.hostname", "settings.updates.seed"]);
    assert.deepEqual(g.get("settings.updates.seed"), { path: ["updates", "seed"], generator: "seed" });
    assert.deepEqual(g.get("settings.network.hostname"), { path: ["network", "hostname"], generator: "hostname" });
  }
});

test("describeType summarises schemas", () => {
  assert.equal(describeType(schemaAt("dev", ["motd"])!), "text");
  assert.equal(describeType(schemaAt("dev", ["updates", "seed"])!), "integer in [0, 2047]");
  assert.equal(describeType(schemaAt("dev", ["kernel", "sysctl"])!), "map");
  assert.equal(describeType(schemaAt("dev", ["network"])!), "table");
  assert.equal(describeType(schemaAt("k8s", ["kubernetes", "cluster-dns-ip"])!), "string (ip) or list of string (ip)");
});

test("values that would break the file they render into are refused (issue 8)", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const cred = (c: JsonObject) => ({ "container-registry": { credentials: [{ registry: "r.example", ...c }] } });
  const bad: [JsonObject, string][] = [
    [cred({ password: "a\ud800b" }), "settings.container-registry.credentials"], // lone surrogate: \ud800 is not TOML
    [cred({ username: "\udfffx" }), "settings.container-registry.credentials"],
    [cred({ password: "two\nlines" }), "settings.container-registry.credentials"],
    [cred({ auth: "not base64!" }), "settings.container-registry.credentials"],
    [{ motd: "nul\u0000" }, "settings.motd"],
    [{ motd: "esc\u001b[2J" }, "settings.motd"],
    [{ motd: "lone \ud83d" }, "settings.motd"],
    [{ network: { hostname: `${"a".repeat(40)}.${"b".repeat(24)}` } }, "settings.network.hostname"], // 65 characters
    [{ network: { "https-proxy": "http://proxy.example:3128\\" } }, "settings.network.https-proxy"],
    [{ network: { "https-proxy": '"http://proxy.example:3128' } }, "settings.network.https-proxy"],
    [{ network: { "https-proxy": "http://proxy.example:3128/path?q" } }, "settings.network.https-proxy"],
    [{ network: { "https-proxy": "socks5://proxy.example:1080" } }, "settings.network.https-proxy"],
    [{ network: { "https-proxy": 'http://pro"xy.example:3128' } }, "settings.network.https-proxy"],
    [{ network: { "no-proxy": ["a b"] } }, "settings.network.no-proxy"],
    [{ network: { "no-proxy": ['x"y'] } }, "settings.network.no-proxy"],
    [{ network: { "no-proxy": ["a,b"] } }, "settings.network.no-proxy"],
    [{ updates: { "metadata-base-url": 'http://a"b.example/' } }, "settings.updates.metadata-base-url"],
    [{ updates: { "metadata-base-url": "ftp://a.example/" } }, "settings.updates.metadata-base-url"],
    [{ ntp: { options: ["bogus"] } }, "settings.ntp.options"],
    [{ ntp: { options: ["iburst 4"] } }, "settings.ntp.options"],
    [{ kernel: { sysctl: { "vm.x": " 1" } } }, "settings.kernel.sysctl.vm.x"],
    [{ pki: { corp: { data: b64("junk\n" + CERT_A) } } }, "settings.pki.corp.data"],
    [{ pki: { corp: { data: b64(CERT_A + "trailing junk\n") } } }, "settings.pki.corp.data"],
    [{ pki: { corp: { data: b64("-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n") } } }, "settings.pki.corp.data"],
    [{ pki: { corp: { data: b64(CERT_A.replace("CERTIFICATE-----\n", "CERTIFICATE-----\njunk ")) } } }, "settings.pki.corp.data"],
  ];
  for (const [tree, key] of bad) {
    assert.throws(
      () => validateSettings("dev", tree),
      (e: unknown) => e instanceof SettingsError && e.key !== undefined && e.key.startsWith(key.split(".").slice(0, 3).join(".")),
      JSON.stringify(tree),
    );
  }
  const good: JsonObject[] = [
    cred({ password: "p@ss w$rd \"quoted\" \\ 😀" }),
    { motd: "Line one\n\tLine two\n" },
    { network: { hostname: `${"a".repeat(40)}.${"b".repeat(23)}` } }, // 64 characters
    { network: { "https-proxy": "http://user:pa$$w'rd@proxy.example:3128" } },
    { network: { "https-proxy": "https://[fd00::1]:3128/" } },
    // No scheme, as Bottlerocket's Url type allows: http.
    { network: { "https-proxy": "proxy.example:3128" } },
    { network: { "no-proxy": ["*", ".example.com", "*.example.com", "host.example:8080", "10.0.0.0/8", "fd00::/8", "192.0.2.1"] } },
    { ntp: { "time-servers": ["fd00::123", "192.0.2.1", "ntp.example"], options: ["iburst", "minpoll 4", "maxpoll 10", "offset -0.5"] } },
    { kernel: { sysctl: { "net.ipv4.tcp_rmem": "4096 87380 6291456" } } },
    { pki: { corp: { data: b64(CERT_A + "\n" + CERT_B) } } },
    { pki: { corp: { data: b64((CERT_A + CERT_B).replace(/\n/g, "\r\n")) } } },
  ];
  for (const tree of good) assert.doesNotThrow(() => validateSettings("dev", tree), JSON.stringify(tree));
});
