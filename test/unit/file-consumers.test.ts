// Every file the applier renders, checked by the program that reads it on the image (or the same
// parser, run so that it changes nothing on this machine), for fixed hostile values and for random
// hostile strings the schema accepts (issue 8): whatever the schema lets through must render into a
// file its consumer parses, with the value it was given.
//
//   containerd config.toml  containerd --config FILE config dump, values compared
//   proxy.env               systemd's environment-file parser, through systemd-environment-d-generator
//                           (XDG_CONFIG_HOME=DIR), values compared; PID 1 reads EnvironmentFile= with
//                           the same parser
//   chrony.conf             chronyd -p -f FILE (prints the configuration and exits)
//   sysctl.d                systemd-sysctl --prefix=/CAISSON-NO-MATCH FILE: parses the whole file,
//                           applies no key (no key can match an upper-case prefix)
//   hostname                hostname -F FILE in a new UTS namespace (unshare --uts)
//   CA bundle               openssl crl2pkcs7 -nocrl -certfile FILE, every certificate counted
//   updates.toml            smol-toml, the update agent's own parser
//   motd, modules-load.d,   no consumer runnable here without side effects: checked for the
//   modprobe.d, hosts,      line rules (no control characters, one entry per line)
//   resolved.conf.d
// A missing consumer fails the test with the package to install (scripts/setup.mjs installs them).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { parse as parseToml } from "smol-toml";
import { packageRoot } from "../../src/fsutil/package-root.js";
import { loadTemplates } from "../../src/applier/templates.js";
import { deepMerge, type Json, type JsonObject } from "../../src/settings/keys.js";
import { defaultsFor, validateSettings } from "../../src/settings/model.js";
import { CERT_A, CERT_B } from "../helpers/test-certs.js";

const templates = loadTemplates(join(packageRoot(), "image", "templates"));
const b64 = (s: string) => Buffer.from(s).toString("base64");

const SBIN = ["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/lib/systemd", "/usr/lib/systemd/user-environment-generators"];
function need(cmd: string, pkg: string): string {
  const dirs = [...(process.env.PATH ?? "").split(":"), ...SBIN];
  for (const d of dirs) if (d && existsSync(join(d, cmd))) return join(d, cmd);
  throw new Error(`${cmd} is needed to check the rendered files; install the Debian package '${pkg}' (node scripts/setup.mjs does)`);
}
const TOOLS = {
  containerd: need("containerd", "containerd"),
  chronyd: need("chronyd", "chrony"),
  openssl: need("openssl", "openssl"),
  sysctl: need("systemd-sysctl", "systemd"),
  envgen: need("30-systemd-environment-d-generator", "systemd"),
  unshare: need("unshare", "util-linux"),
  hostname: need("hostname", "hostname"),
};

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: env ?? process.env, timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const plain = (v: unknown): unknown => JSON.parse(JSON.stringify(v));
const at = (v: unknown, ...path: string[]): unknown => path.reduce((o, k) => (o as Record<string, unknown> | undefined)?.[k], v);

/** Render every template from `s` into DIR and check each with its consumer; throws on the first failure. */
function checkAll(s: JsonObject, dir: string): void {
  const render = (name: string) => templates.get(name)!.render({ settings: s, os: {}, host: { "ca-bundle-base": "" } });
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const get = (...path: string[]) => at(s, ...path);

  // containerd: the whole file loads, and the credentials and mirrors read back as set.
  {
    const p = file("config.toml", render("containerd-config-toml.hbs"));
    const r = run(TOOLS.containerd, ["--config", p, "config", "dump"]);
    assert.equal(r.status, 0, `containerd rejects its config: ${r.stderr}`);
    const cri = at(plain(parseToml(r.stdout)), "plugins", "io.containerd.grpc.v1.cri", "registry");
    for (const c of (get("container-registry", "credentials") as JsonObject[] | undefined) ?? []) {
      const reg = c.registry === "docker.io" ? "registry-1.docker.io" : (c.registry as string);
      const auth = at(cri, "configs", reg, "auth") as Record<string, unknown>;
      for (const k of ["username", "password", "auth", "identitytoken"]) if (c[k] !== undefined) assert.equal(auth[k], c[k], `containerd reads ${k} of ${reg}`);
    }
    for (const m of (get("container-registry", "mirrors") as JsonObject[] | undefined) ?? []) {
      assert.deepEqual(at(cri, "mirrors", m.registry as string, "endpoint"), m.endpoint, `containerd reads mirrors of ${String(m.registry)}`);
    }
  }

  // The update agent's TOML.
  {
    const doc = plain(parseToml(render("updates-toml.hbs"))) as Record<string, unknown>;
    const proxy = get("network", "https-proxy") as string | undefined;
    if (proxy) assert.equal(new URL(doc.https_proxy as string).href, new URL(proxy).href.replace(/\$/g, "%24").replace(/'/g, "%27"));
    assert.deepEqual(doc.no_proxy, [...((get("network", "no-proxy") as string[] | undefined) ?? []), "localhost", "127.0.0.1"]);
  }

  // proxy.env through systemd's environment-file parser.
  {
    const xdg = join(dir, "xdg");
    mkdirSync(join(xdg, "environment.d"), { recursive: true });
    const text = render("proxy-env.hbs");
    writeFileSync(join(xdg, "environment.d", "zz-caisson-proxy.conf"), text);
    const r = run(TOOLS.envgen, [], { PATH: "/usr/bin:/bin", XDG_CONFIG_HOME: xdg });
    assert.equal(r.status, 0, `systemd's environment parser fails: ${r.stderr}`);
    assert.equal(r.stderr, "", "systemd's environment parser warns");
    // The generator prints NAME=value, double-quoted with backslash escapes when needed.
    const env = new Map<string, string>();
    for (const line of r.stdout.split("\n")) {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
      if (m) env.set(m[1]!, m[2]!.startsWith('"') ? m[2]!.slice(1, -1).replace(/\\(.)/g, "$1") : m[2]!);
    }
    const proxy = get("network", "https-proxy") as string | undefined;
    for (const k of ["HTTPS_PROXY", "https_proxy"]) {
      if (!proxy) {
        assert.equal(env.has(k), false);
        continue;
      }
      const seen = new URL(env.get(k)!);
      const want = new URL(proxy);
      assert.deepEqual(
        [seen.protocol, decodeURIComponent(seen.username), decodeURIComponent(seen.password), seen.host],
        [want.protocol, decodeURIComponent(want.username), decodeURIComponent(want.password), want.host],
        `${k} as systemd reads it`,
      );
    }
    const api = get("kubernetes", "api-server") as string | undefined;
    const domain = get("kubernetes", "cluster-domain") as string | undefined;
    const noProxy = [
      ...((get("network", "no-proxy") as string[] | undefined) ?? []),
      "localhost",
      "127.0.0.1",
      ...(api ? [new URL(api).hostname] : []),
      ...(domain ? [`.${domain}`] : []),
    ].join(",");
    assert.equal(env.get("NO_PROXY"), noProxy);
    assert.equal(env.get("no_proxy"), noProxy);
  }

  // chrony.
  {
    const p = file("chrony.conf", render("chrony-conf.hbs"));
    const r = run(TOOLS.chronyd, ["-p", "-f", p]);
    assert.equal(r.status, 0, `chronyd rejects its config: ${r.stderr}`);
    for (const server of (get("ntp", "time-servers") as string[] | undefined) ?? []) assert.ok(r.stdout.split("\n").some((l) => l.split(" ")[1] === server), `chronyd reads server ${server}`);
  }

  // sysctl: parsed, nothing applied.
  {
    const p = file("90-caisson.conf", render("sysctl-conf.hbs"));
    const r = run(TOOLS.sysctl, ["--prefix=/CAISSON-NO-MATCH", p]);
    assert.equal(r.status, 0, `systemd-sysctl rejects the file: ${r.stderr}`);
    assert.equal(r.stderr, "", "systemd-sysctl warns about the file");
  }

  // hostname: set in a throwaway UTS namespace, read back.
  {
    const name = get("network", "hostname") as string | undefined;
    if (name) {
      const p = file("hostname", render("hostname.hbs"));
      const r = run(TOOLS.unshare, ["--uts", "sh", "-c", `"$1" -F "$2" && "$1"`, "sh", TOOLS.hostname, p]);
      assert.equal(r.status, 0, `hostname rejects the file: ${r.stderr}`);
      assert.equal(r.stdout, name + "\n");
    }
  }

  // CA bundle: OpenSSL reads every certificate.
  {
    const text = render("ca-bundle.hbs");
    const expected = (text.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length;
    if (expected) {
      const p = file("ca.pem", text);
      const p7 = join(dir, "ca.p7");
      const r = run(TOOLS.openssl, ["crl2pkcs7", "-nocrl", "-certfile", p, "-out", p7]);
      assert.equal(r.status, 0, `openssl rejects the CA bundle: ${r.stderr}`);
      const certs = run(TOOLS.openssl, ["pkcs7", "-in", p7, "-print_certs", "-noout"]);
      assert.equal((certs.stdout.match(/^subject=/gm) ?? []).length, expected, "openssl reads every certificate");
    }
  }

  // Line-oriented files with no safe consumer here: one entry per line, no control characters.
  for (const name of ["modules-load-conf.hbs", "modprobe-conf.hbs", "hosts.hbs", "resolved-conf.hbs"]) {
    const text = render(name);
    // eslint-disable-next-line no-control-regex -- control characters are what is refused
    assert.doesNotMatch(text, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, `${name}: control character`);
    assert.doesNotMatch(text, /[\uD800-\uDFFF]/u, `${name}: not well-formed Unicode`);
  }
  const motd = render("motd.hbs");
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  assert.doesNotMatch(motd, /[\x00-\x08\x0b-\x1f\x7f-\x9f]|[\uD800-\uDFFF]/u, "motd: control character or lone surrogate");
}

function withDir<T>(f: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), "caisson-consumers-"));
  try {
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const accepted = (tree: JsonObject): boolean => {
  try {
    validateSettings("k8s", tree);
    return true;
  } catch {
    return false;
  }
};

// Characters that break one file format or another.
const HOSTILE = ['"', "\\", "$", "`", "'", "#", ";", "=", " ", "\t", "\n", "\r", "\0", "\x1b", "\x7f", "\x85", "\u2028", "\ud800", "\udc00", "😀", "[", "]", ":", "/", "@", "%", ",", "{", "}", "*", "a", "Z", "0", "-", ".", "é"];
const hostile = fc.oneof(
  fc.array(fc.constantFrom(...HOSTILE), { maxLength: 12 }).map((a) => a.join("")),
  fc.string({ unit: "binary", maxLength: 12 }),
);

/** Settings with hostile strings in every string setting a template reads; each kept only if the schema accepts it. */
const hostileSettings = fc
  .record({
    password: hostile,
    username: hostile,
    identitytoken: hostile,
    registry: hostile,
    endpointUser: hostile,
    proxyUser: hostile,
    proxyPassword: hostile,
    proxyRaw: hostile,
    noProxy: hostile,
    hostname: hostile,
    timeServer: hostile,
    option: hostile,
    sysctlValue: hostile,
    motd: hostile,
    label: hostile,
    pkiJunk: hostile,
  })
  .map((h) => {
    let s: JsonObject = deepMerge(defaultsFor("k8s"), { kubernetes: { "api-server": "https://api.example:6443" } });
    const tryAdd = (patch: JsonObject) => {
      const next = deepMerge(s, patch);
      if (accepted(next)) s = next;
    };
    tryAdd({ motd: h.motd });
    tryAdd({ network: { hostname: h.hostname } });
    tryAdd({ network: { hostname: `${h.label}.example` } });
    tryAdd({ network: { "https-proxy": h.proxyRaw } });
    tryAdd({ network: { "https-proxy": `http://${h.proxyUser}:${h.proxyPassword}@proxy.example:3128` } });
    const enc = (v: string) => encodeURIComponent(v.replace(/[\uD800-\uDFFF]/gu, "?"));
    tryAdd({ network: { "https-proxy": `http://${enc(h.proxyUser)}:${enc(h.proxyPassword)}@proxy.example:3128` } });
    tryAdd({ network: { "no-proxy": [h.noProxy, `${h.label}.example`] } });
    tryAdd({ ntp: { "time-servers": [h.timeServer, "ntp.example"] } });
    tryAdd({ ntp: { options: ["iburst", h.option] } });
    tryAdd({ kernel: { sysctl: { "vm.max_map_count": h.sysctlValue, "net.ipv4.tcp_rmem": `4096 ${h.sysctlValue} 6291456` } } });
    tryAdd({ "container-registry": { credentials: [{ registry: h.registry, username: h.username, password: h.password }, { registry: "r.example", identitytoken: h.identitytoken }] } });
    tryAdd({ "container-registry": { mirrors: [{ registry: h.registry, endpoint: [`https://${h.endpointUser}@mirror.example/v2/`] }] } });
    tryAdd({ pki: { fuzz: { data: b64(`${h.pkiJunk}${CERT_A}${h.pkiJunk}`), trusted: true } } });
    tryAdd({ updates: { "metadata-base-url": `https://updates.example/${h.label}/` } });
    return s;
  });

test("every rendered file is read by its consumer: random hostile values the schema accepts", () => {
  withDir((dir) => {
    fc.assert(
      fc.property(hostileSettings, (s) => {
        checkAll(s, dir);
      }),
      { numRuns: 60, includeErrorInReport: true },
    );
  });
});

// The defects of issue 8 and their siblings, each as a value a probe would try.
const FIXED: [string, JsonObject][] = [
  ["lone surrogate in a registry password", { "container-registry": { credentials: [{ registry: "docker.io", username: "u", password: "a\ud800b" }] } }],
  ["quotes, backslash and $ in a registry password", { "container-registry": { credentials: [{ registry: "docker.io", username: "u", password: 'p"a\\s$s`w\'d 😀' }] } }],
  ["trailing backslash in the proxy", { network: { "https-proxy": "http://proxy.example:3128\\" } }],
  ["leading quote in the proxy", { network: { "https-proxy": '"http://proxy.example:3128' } }],
  ["quote in the proxy's host", { network: { "https-proxy": 'http://pro"xy.example:3128' } }],
  ["quotes, $ and backslash in the proxy's credentials", { network: { "https-proxy": "http://us$er:p\"a'ss\\w`d@proxy.example:3128" } }],
  ["253-character hostname", { network: { hostname: Array.from({ length: 4 }, () => "a".repeat(62)).join(".") + ".b" } }],
  ["64-character hostname", { network: { hostname: `${"a".repeat(40)}.${"b".repeat(23)}` } }],
  ["junk before a BEGIN line in a trusted bundle", { pki: { corp: { data: b64("junk\n" + CERT_A), trusted: true } } }],
  ["junk inside a certificate block", { pki: { corp: { data: b64(CERT_A.replace("CERTIFICATE-----\n", "CERTIFICATE-----\njunk ")), trusted: true } } }],
  ["two certificates, CRLF line ends", { pki: { corp: { data: b64((CERT_A + CERT_B).replace(/\n/g, "\r\n")), trusted: true } } }],
  ["NUL in the motd", { motd: "hello\u0000world" }],
  ["an unknown chrony option", { ntp: { options: ["bogus"] } }],
  ["an IPv6 time server", { ntp: { "time-servers": ["fd00::123"] } }],
  ["space around a sysctl value", { kernel: { sysctl: { "vm.swappiness": " 10 " } } }],
  ["a space in a no-proxy entry", { network: { "no-proxy": ["a b"] } }],
  ["a quote in a registry name (containerd's TOML parser cannot read an escaped quote in a key)", { "container-registry": { credentials: [{ registry: 'r"x', password: "p" }], mirrors: [{ registry: 'r"x', endpoint: ["https://m.example"] }] } }],
];

for (const [what, patch] of FIXED) {
  test(`rendered files stay valid for their consumers: ${what}`, () => {
    const s = deepMerge(deepMerge(defaultsFor("k8s"), { network: { hostname: "node-1" } }), patch);
    // Either the schema refuses the value, or every consumer reads the files rendered from it.
    if (accepted(s)) withDir((dir) => checkAll(s, dir));
  });
}

test("the consumer checks do catch a broken file", () => {
  // A NUL in a TOML string, a lone surrogate, a stray BEGIN: each must fail its consumer, or the
  // checks above prove nothing.
  const s = deepMerge(defaultsFor("k8s"), { "container-registry": { credentials: [{ registry: "r.example", password: "x" }] } }) as Json;
  withDir((dir) => {
    const bad = structuredClone(s) as JsonObject;
    ((bad["container-registry"] as JsonObject).credentials as JsonObject[])[0]!.password = "a\ud800";
    assert.throws(() => checkAll(bad, dir));
    const junk = deepMerge(s as JsonObject, { pki: { x: { data: b64("junk\n-----BEGIN CERTIFICATE-----\n" + CERT_A), trusted: true } } });
    assert.throws(() => checkAll(junk, dir));
  });
});
