// The shipped templates (image/templates) rendered from sample settings, and the helpers they use.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { packageRoot } from "../../src/fsutil/package-root.js";
import { compileTemplate, loadTemplates, type Template } from "../../src/applier/templates.js";
import { deepMerge, type Json, type JsonObject } from "../../src/settings/keys.js";
import { defaultsFor, schemaAt, validateSettings } from "../../src/settings/model.js";

const templates = loadTemplates(join(packageRoot(), "image", "templates"));
const b64 = (s: string) => Buffer.from(s).toString("base64");
import { CERT_A, CERT_B } from "../helpers/test-certs.js";

const BASE = "-----BEGIN CERTIFICATE-----\nBASE\n-----END CERTIFICATE-----\n";

function sample(): JsonObject {
  const s = deepMerge(defaultsFor("k8s"), {
    motd: "Hello from Caisson",
    network: {
      hostname: "node-1.example.com",
      hosts: [
        ["10.0.0.5", ["db", "db.internal"]],
        ["127.0.0.1", ["local-alias"]],
        ["10.0.0.5", ["postgres", "db"]],
        ["0:0:0:0:0:0:0:1", ["six-alias"]],
        ["fd00::1", ["v6host"]],
      ],
      "https-proxy": "http://proxy.example:3128",
      "no-proxy": ["example.com", "10.0.0.0/8"],
    },
    dns: { "name-servers": ["1.1.1.1", "8.8.8.8"], "search-list": ["corp.example.com", "example.com"] },
    ntp: { "time-servers": ["0.pool.ntp.org", "time.example.com"], options: ["iburst", "minpoll 4"] },
    kernel: {
      sysctl: { "vm.max_map_count": "262144", "net.ipv4.ip_forward": "1" },
      modules: { sctp: { allowed: false }, br_netfilter: { autoload: true }, udf: { allowed: false, autoload: true }, overlay: { allowed: true, autoload: true } },
    },
    "container-registry": {
      mirrors: [{ registry: "docker.io", endpoint: ["https://mirror-a.example", "https://mirror-b.example"] }],
      credentials: [
        { registry: "docker.io", username: "alice", password: 'pa"ss\\word' },
        { registry: "registry.example:5000", auth: "YWxpY2U6c2VjcmV0" },
      ],
    },
    "container-runtime": { "enable-unprivileged-ports": true, "enable-unprivileged-icmp": false, "max-container-log-line-size": -1 },
    pki: { corp: { data: b64(CERT_A), trusted: true }, other: { data: b64(CERT_B.trimEnd()), trusted: true }, untrusted: { data: b64(CERT_A + CERT_B), trusted: false } }, // CERT_B: no final newline
    updates: { "metadata-base-url": "https://updates.example/meta/", "targets-base-url": "https://updates.example/targets/", seed: 1234, "version-lock": "v1.2.3" },
    kubernetes: { "api-server": "https://api.cluster.example:6443" },
  });
  validateSettings("k8s", s);
  return s;
}

// smol-toml builds null-prototype tables; plain objects compare with deepEqual.
const toml = (text: string): unknown => JSON.parse(JSON.stringify(parseToml(text)));
const at = (v: unknown, ...path: string[]): unknown => path.reduce((o, k) => (o as Record<string, unknown> | undefined)?.[k], v);

function render(name: string, settings: Json = sample(), host: Json = { "ca-bundle-base": BASE }): string {
  const t = templates.get(name);
  assert.ok(t, `template ${name} exists`);
  return t.render({ settings, os: {}, host });
}

test("every template names only settings that exist in the schema, and none through ../", () => {
  for (const [name, t] of templates) {
    assert.ok(t.inputs.length > 0, `${name} reads some settings`);
    for (const input of t.inputs) assert.ok(schemaAt("k8s", input), `${name} names unknown setting settings.${input.join(".")}`);
    assert.doesNotMatch(t.source, /\.\.\//, `${name} uses a parent-relative path, invisible to settingsPaths`);
  }
});

test("every template renders with no settings at all", () => {
  for (const [name, t] of templates) assert.equal(typeof t.render({ settings: {}, os: {}, host: {} }), "string", name);
});

test("motd and hostname", () => {
  assert.equal(render("motd.hbs"), "Hello from Caisson\n");
  assert.equal(render("hostname.hbs"), "node-1.example.com\n");
});

test("hosts: loopback aliases, hostname, repeated addresses merged", () => {
  const body = render("hosts.hbs").split("\n").filter((l) => !l.startsWith("#"));
  assert.deepEqual(body, [
    "127.0.0.1 localhost localhost.localdomain localhost4 localhost4.localdomain4 node-1.example.com local-alias",
    "::1 localhost localhost.localdomain localhost6 localhost6.localdomain6 node-1.example.com six-alias",
    "10.0.0.5 db db.internal postgres",
    "fd00::1 v6host",
    "",
  ]);
});

test("hosts: hostname already mapped by a hosts entry is not a localhost alias; no trailing spaces", () => {
  const s = deepMerge(sample(), { network: { hostname: "db", hosts: [["10.0.0.5", ["db"]]] } });
  const out = render("hosts.hbs", s);
  assert.match(out, /^127\.0\.0\.1 localhost localhost\.localdomain localhost4 localhost4\.localdomain4$/m);
  assert.match(out, /^10\.0\.0\.5 db$/m);
  assert.doesNotMatch(render("hosts.hbs", {}), / $/m);
});

test("resolved drop-in: DNS= and Domains=, omitted when unset", () => {
  assert.match(render("resolved-conf.hbs"), /^\[Resolve\]\nDNS=1\.1\.1\.1 8\.8\.8\.8\nDomains=corp\.example\.com example\.com\n$/m);
  const empty = render("resolved-conf.hbs", {});
  assert.match(empty, /\[Resolve\]\n$/);
  assert.doesNotMatch(empty, /DNS=|Domains=/);
});

test("chrony: a server line per time server with the options", () => {
  const out = render("chrony-conf.hbs");
  assert.match(out, /^server 0\.pool\.ntp\.org iburst minpoll 4$/m);
  assert.match(out, /^server time\.example\.com iburst minpoll 4$/m);
  assert.match(render("chrony-conf.hbs", defaultsFor("dev")), /^server pool\.ntp\.org iburst$/m);
});

test("sysctl: one line per key, dotted keys intact", () => {
  const lines = render("sysctl-conf.hbs").split("\n").filter((l) => l && !l.startsWith("#"));
  assert.deepEqual(lines, ["vm.max_map_count = 262144", "net.ipv4.ip_forward = 1"]);
});

test("kernel modules: allowed=false blocked, autoload=true loaded unless blocked", () => {
  const modprobe = render("modprobe-conf.hbs").split("\n").filter((l) => l && !l.startsWith("#"));
  assert.deepEqual(modprobe, ["blacklist sctp", "install sctp /bin/false", "blacklist udf", "install udf /bin/false"]);
  const load = render("modules-load-conf.hbs").split("\n").filter((l) => l && !l.startsWith("#"));
  assert.deepEqual(load, ["br_netfilter", "overlay"]);
});

test("containerd config: valid TOML with runtime settings, mirrors and credentials", () => {
  const doc = toml(render("containerd-config-toml.hbs"));
  assert.equal(at(doc, "version"), 2);
  const cri = at(doc, "plugins", "io.containerd.grpc.v1.cri");
  assert.equal(at(cri, "max_concurrent_downloads"), 3); // default
  assert.equal(at(cri, "max_container_log_line_size"), -1);
  assert.equal(at(cri, "enable_unprivileged_ports"), true);
  assert.equal(at(cri, "enable_unprivileged_icmp"), false); // false is written, not dropped
  assert.deepEqual(at(cri, "registry", "mirrors", "docker.io", "endpoint"), ["https://mirror-a.example", "https://mirror-b.example"]);
  assert.deepEqual(at(cri, "registry", "configs", "registry-1.docker.io", "auth"), { username: "alice", password: 'pa"ss\\word' });
  assert.deepEqual(at(cri, "registry", "configs", "registry.example:5000", "auth"), { auth: "YWxpY2U6c2VjcmV0" });
  const bare = toml(render("containerd-config-toml.hbs", {}));
  assert.equal(at(bare, "plugins", "io.containerd.grpc.v1.cri", "registry"), undefined);
});

test("proxy env: proxy, no_proxy with localhost and the cluster added", () => {
  const out = render("proxy-env.hbs");
  assert.match(out, /^HTTPS_PROXY="http:\/\/proxy\.example:3128"$/m);
  assert.match(out, /^https_proxy="http:\/\/proxy\.example:3128"$/m);
  const noProxy = "example.com,10.0.0.0/8,localhost,127.0.0.1,api.cluster.example,.cluster.local";
  assert.match(out, new RegExp(`^NO_PROXY="${noProxy.replace(/\./g, "\\.")}"$`, "m"));
  assert.match(out, new RegExp(`^no_proxy="${noProxy.replace(/\./g, "\\.")}"$`, "m"));
  // host:port alone (Bottlerocket accepts it) is an http proxy, written with its scheme.
  const bare = render("proxy-env.hbs", deepMerge(sample(), { network: { "https-proxy": "proxy.example:3128" } }));
  assert.match(bare, /^HTTPS_PROXY="http:\/\/proxy\.example:3128"$/m);
  const dev = render("proxy-env.hbs", defaultsFor("dev"));
  assert.doesNotMatch(dev, /HTTPS_PROXY/);
  assert.match(dev, /^NO_PROXY="localhost,127\.0\.0\.1"$/m);
});

test("CA bundle: base bundle, then trusted bundles only, each ending in a newline", () => {
  assert.equal(render("ca-bundle.hbs"), BASE + CERT_A + CERT_B);
  assert.equal(render("ca-bundle.hbs", {}, {}), "");
});

test("CA bundle: invalid base64 in a trusted bundle is a clear error", () => {
  const s = deepMerge(sample(), { pki: { bad: { data: "not base64!", trusted: true } } });
  assert.throws(() => render("ca-bundle.hbs", s), /base64_decode: value is not valid base64/);
  const junk = deepMerge(sample(), { pki: { bad: { data: b64("junk\n" + CERT_A), trusted: true } } });
  assert.throws(() => render("ca-bundle.hbs", junk), /pem_certificates: value is not only PEM CERTIFICATE blocks/);
});

test("update agent config: valid TOML from settings.updates and the proxy", () => {
  const doc = toml(render("updates-toml.hbs"));
  assert.deepEqual(doc, {
    metadata_base_url: "https://updates.example/meta/",
    targets_base_url: "https://updates.example/targets/",
    seed: 1234,
    version_lock: "v1.2.3",
    ignore_waves: false,
    https_proxy: "http://proxy.example:3128",
    no_proxy: ["example.com", "10.0.0.0/8", "localhost", "127.0.0.1"],
  });
  assert.deepEqual(toml(render("updates-toml.hbs", {})), { version_lock: "latest", ignore_waves: false, no_proxy: ["localhost", "127.0.0.1"] });
});

// Helpers, through one-line templates.
const h = (source: string, settings: Json = {}): string => compileTemplate("t", source).render({ settings, os: {}, host: {} });

test("helpers: absent values render empty or the default", () => {
  assert.equal(h("[{{join_array ', ' settings.x}}]"), "[]");
  assert.equal(h("{{default 'd' settings.x}}"), "d");
  assert.equal(h("{{default 'd' settings.x}}", { x: false }), "false");
  assert.equal(h("[{{base64_decode settings.x}}]"), "[]");
  assert.equal(h("[{{toml_encode settings.x}}]"), "[]");
  assert.equal(h("[{{etc_hosts_entries settings.x}}]"), "[]");
  assert.equal(h("[{{localhost_aliases 'ipv4' settings.h settings.x}}]"), "[]");
  assert.equal(h("[{{host settings.x}}]"), "[]");
  assert.equal(h("{{#if_not_null settings.x}}set{{else}}unset{{/if_not_null}}"), "unset");
  assert.equal(h("{{#if_not_null settings.x}}set{{/if_not_null}}", { x: 0 }), "set");
});

test("helpers: values", () => {
  assert.equal(h("{{join_array ', ' settings.x}}", { x: ["a", 'b"c'] }), '"a", "b\\"c"');
  assert.equal(h("{{toml_encode settings.x}}", { x: { a: [1, "two\n"], "b.c": true } }), '{ a = [1, "two\\n"], "b.c" = true }');
  assert.equal(h("{{toml_encode settings.x}}", { x: "del\x7f" }), '"del\\u007f"');
  assert.equal(h("{{base64_decode settings.x}}", { x: b64("héllo") }), "héllo");
  assert.equal(h("{{host settings.x}}", { x: "https://api.example:6443/path" }), "api.example");
  assert.equal(h("{{#if (is_array settings.x)}}list{{else}}other{{/if}}", { x: ["1.2.3.4"] }), "list");
  assert.equal(h("{{#is_array settings.x}}list{{else}}other{{/is_array}}", { x: "1.2.3.4" }), "other");
  assert.equal(h("{{is_null settings.x}}"), "true");
});

test("helpers: malformed input throws an error naming the helper", () => {
  assert.throws(() => h("{{base64_decode settings.x}}", { x: "@@@@" }), /base64_decode: value is not valid base64/);
  assert.throws(() => h("{{base64_decode settings.x}}", { x: "QUJD=" }), /base64_decode: value is not valid base64/);
  assert.throws(() => h("{{base64_decode settings.x}}", { x: Buffer.from([0xff, 0xfe]).toString("base64") }), /not valid UTF-8/);
  assert.throws(() => h("{{base64_decode settings.x}}", { x: 42 }), /base64_decode: expected a base64 string/);
  assert.throws(() => h("{{join_array ', ' settings.x}}", { x: "a" }), /join_array: expected a separator and a list/);
  assert.throws(() => h("{{join_array ', ' settings.x}}", { x: [1] }), /join_array: list items must be strings/);
  assert.throws(() => h("{{default 'd' settings.x}}", { x: [1] }), /default: expected a scalar/);
  assert.throws(() => h("{{etc_hosts_entries settings.x}}", { x: [["10.0.0.1", "db"]] }), /etc_hosts_entries: each hosts entry/);
  assert.throws(() => h("{{localhost_aliases 'ipv5' settings.h settings.x}}"), /localhost_aliases: first argument/);
  assert.throws(() => h("{{host settings.x}}", { x: "not a url" }), /host: expected an absolute URL/);
  assert.throws(() => h("{{base64_decode}}"), /base64_decode: expected 1 argument/);
});

test("derived inputs include @root paths inside blocks, not the item's own fields", () => {
  const t: Template = compileTemplate("t", "{{#each settings.a}}{{this.b}}{{@root.settings.c.d}}{{/each}}");
  assert.deepEqual(t.inputs, [["a"], ["c", "d"]]);
});
