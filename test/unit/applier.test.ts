// The applier with the shipped catalog and templates: derived key → service map, and applying to
// a temporary root (only changed files rewritten, only their units restarted).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/fsutil/package-root.js";
import { Applier } from "../../src/applier/applier.js";
import { loadServiceCatalog } from "../../src/applier/services.js";
import { loadTemplates } from "../../src/applier/templates.js";
import { RecordingServiceManager } from "../../src/applier/service-manager.js";
import { changedKeys, deepMerge, type JsonObject } from "../../src/settings/keys.js";
import { defaultsFor, validateSettings } from "../../src/settings/model.js";
import { CERT_A } from "../helpers/test-certs.js";

process.umask(0o022); // so default file modes are predictable

const imageDir = join(packageRoot(), "image");
const catalog = loadServiceCatalog(imageDir);
const templates = loadTemplates(join(imageDir, "templates"));
const BASE = "-----BEGIN CERTIFICATE-----\nBASE\n-----END CERTIFICATE-----\n";

function setup() {
  const root = mkdtempSync(join(tmpdir(), "caisson-applier-"));
  const sm = new RecordingServiceManager();
  const applier = new Applier({ root, catalog, templates, serviceManager: sm, os: { "variant-id": "k8s" }, host: { "ca-bundle-base": BASE } });
  return { root, sm, applier, done: () => rmSync(root, { recursive: true, force: true }) };
}

function settings(patch: JsonObject = {}): JsonObject {
  const s = deepMerge(
    deepMerge(defaultsFor("k8s"), {
      network: { hostname: "node-1", "no-proxy": ["example.com"] },
      dns: { "name-servers": ["10.0.0.2"] },
      kernel: { sysctl: { "vm.max_map_count": "262144" } },
      "container-registry": { credentials: [{ registry: "docker.io", username: "alice", password: "s3cret" }] },
      updates: { seed: 7 },
    }),
    patch,
  );
  validateSettings("k8s", s);
  return s;
}

const inode = (root: string, path: string) => statSync(join(root, path)).ino;
const read = (root: string, path: string) => readFileSync(join(root, path), "utf8");
const allPaths = () => Object.values(catalog["configuration-files"]).map((f) => f.path);

test("the catalog names only existing templates and absolute paths", () => {
  for (const [name, f] of Object.entries(catalog["configuration-files"])) {
    assert.ok(templates.has(f["template-path"]), `${name}: template ${f["template-path"]}`);
    assert.ok(f.path.startsWith("/"), `${name}: absolute path`);
  }
  assert.doesNotThrow(() => setup().done()); // the Applier constructor checks the templates too
});

test("affected services are derived from the templates", () => {
  const { applier, done } = setup();
  try {
    assert.deepEqual(applier.affectedServices(["settings.motd"]), { "settings.motd": ["motd"] });
    assert.deepEqual(applier.affectedServices(["motd"]), { motd: ["motd"] });
    const keys = [
      "settings.dns.name-servers",
      "settings.dns.search-list",
      "settings.network.https-proxy",
      "settings.network.no-proxy",
      "settings.network.hostname",
      "settings.network.hosts",
      "settings.ntp.time-servers",
      'settings.kernel.sysctl."vm.max_map_count"',
      "settings.kernel.modules.sctp.allowed",
      "settings.container-registry.mirrors",
      "settings.container-runtime.max-concurrent-downloads",
      "settings.pki.corp.data",
      "settings.updates.seed",
      "settings.kubernetes.api-server",
      "settings.host-containers.admin.enabled",
    ];
    assert.deepEqual(applier.affectedServices(keys), {
      "settings.dns.name-servers": ["dns"],
      "settings.dns.search-list": ["dns"],
      "settings.network.https-proxy": ["containerd", "update-agent"],
      "settings.network.no-proxy": ["containerd", "update-agent"],
      "settings.network.hostname": ["hostname", "hosts"],
      "settings.network.hosts": ["hosts"],
      "settings.ntp.time-servers": ["ntp"],
      'settings.kernel.sysctl."vm.max_map_count"': ["sysctl"],
      "settings.kernel.modules.sctp.allowed": ["kernel-modules"],
      "settings.container-registry.mirrors": ["containerd"],
      "settings.container-runtime.max-concurrent-downloads": ["containerd"],
      "settings.pki.corp.data": ["containerd", "update-agent"],
      "settings.updates.seed": ["update-agent"],
      "settings.kubernetes.api-server": ["containerd"],
      "settings.host-containers.admin.enabled": [],
    });
    // A parent key touches every service below it.
    assert.deepEqual(applier.affectedServices(["settings.network"])["settings.network"], ["containerd", "hostname", "hosts", "update-agent"]);
    assert.equal(applier.servicesView().dns!["restart-commands"][0], "systemctl try-restart systemd-resolved.service");
  } finally {
    done();
  }
});

test("apply all writes every file with its mode and restarts every unit once", async () => {
  const { root, sm, applier, done } = setup();
  try {
    const plan = await applier.apply(settings(), "all");
    assert.deepEqual(plan.files.map((f) => f.path).sort(), allPaths().sort());
    for (const p of allPaths()) assert.ok(statSync(join(root, p)).isFile(), p);
    assert.equal(statSync(join(root, "/etc/containerd/config.toml")).mode & 0o777, 0o600);
    assert.equal(statSync(join(root, "/etc/motd")).mode & 0o777, 0o644);
    assert.match(read(root, "/etc/containerd/config.toml"), /password = "s3cret"/);
    assert.match(read(root, "/etc/ssl/certs/ca-certificates.crt"), /BASE/);
    assert.deepEqual(sm.restarted.length, 1);
    assert.deepEqual(
      [...sm.restarted[0]!].sort(),
      ["caisson-hostname.service", "chrony.service", "containerd.service", "systemd-modules-load.service", "systemd-resolved.service", "systemd-sysctl.service"],
    );
  } finally {
    done();
  }
});

test("a changed key rewrites only its files and restarts only their units", async () => {
  const { root, sm, applier, done } = setup();
  try {
    const before = settings();
    await applier.apply(before, "all");
    const inodes = new Map(allPaths().map((p) => [p, inode(root, p)]));
    sm.restarted.length = 0;

    const after = settings({ dns: { "name-servers": ["10.0.0.3", "10.0.0.4"] } });
    const keys = changedKeys(before, after);
    assert.deepEqual(keys, ["settings.dns.name-servers"]);
    const plan = await applier.apply(after, keys);
    assert.deepEqual(plan.files.map((f) => f.name), ["resolved-conf"]);
    assert.deepEqual(plan.services, ["dns"]);
    assert.deepEqual(sm.restarted, [["systemd-resolved.service"]]);
    assert.match(read(root, "/etc/systemd/resolved.conf.d/10-caisson.conf"), /^DNS=10\.0\.0\.3 10\.0\.0\.4$/m);
    for (const p of allPaths()) {
      if (p === "/etc/systemd/resolved.conf.d/10-caisson.conf") assert.notEqual(inode(root, p), inodes.get(p), p);
      else assert.equal(inode(root, p), inodes.get(p), `${p} was not rewritten`);
    }
  } finally {
    done();
  }
});

test("a proxy change rewrites containerd's and the update agent's files, restarting containerd only", async () => {
  const { root, sm, applier, done } = setup();
  try {
    await applier.apply(settings(), "all");
    sm.restarted.length = 0;
    const plan = await applier.apply(settings({ network: { "https-proxy": "http://proxy:3128" } }), ["settings.network.https-proxy"]);
    assert.deepEqual(plan.files.map((f) => f.name).sort(), ["proxy-env", "updates-toml"]);
    assert.deepEqual(plan.services, ["containerd", "update-agent"]);
    assert.deepEqual(sm.restarted, [["containerd.service"]]);
    assert.match(read(root, "/etc/caisson/proxy.env"), /^HTTPS_PROXY="http:\/\/proxy:3128"$/m);
  } finally {
    done();
  }
});

test("an unchanged value writes nothing and restarts nothing", async () => {
  const { root, sm, applier, done } = setup();
  try {
    const s = settings();
    await applier.apply(s, "all");
    const inodes = allPaths().map((p) => inode(root, p));
    const mtimes = allPaths().map((p) => statSync(join(root, p)).mtimeMs);
    sm.restarted.length = 0;
    const plan = await applier.apply(s, ["settings.dns.name-servers", "settings.network.https-proxy", "settings.pki"]);
    assert.deepEqual(plan, { files: [], services: [], "restart-units": [] });
    assert.deepEqual(sm.restarted, []);
    assert.deepEqual(allPaths().map((p) => inode(root, p)), inodes);
    assert.deepEqual(allPaths().map((p) => statSync(join(root, p)).mtimeMs), mtimes);
    // And again with everything: the boot-time apply after an unchanged reboot.
    assert.deepEqual((await applier.apply(s, "all")).files, []);
    assert.deepEqual(sm.restarted, []);
  } finally {
    done();
  }
});

test("dryRun returns a unified diff and changes nothing", async () => {
  const { root, sm, applier, done } = setup();
  try {
    await applier.apply(settings(), "all");
    sm.restarted.length = 0;
    const path = "/etc/sysctl.d/90-caisson.conf";
    const text = read(root, path);
    const plan = applier.dryRun(settings({ kernel: { sysctl: { "vm.max_map_count": "524288" } } }), ['settings.kernel.sysctl."vm.max_map_count"']);
    assert.deepEqual(plan.files.map((f) => f.path), [path]);
    assert.deepEqual(plan["restart-units"], ["systemd-sysctl.service"]);
    const diff = plan.files[0]!.diff;
    assert.match(diff, /^--- a\/etc\/sysctl\.d\/90-caisson\.conf/m);
    assert.match(diff, /^-vm\.max_map_count = 262144$/m);
    assert.match(diff, /^\+vm\.max_map_count = 524288$/m);
    assert.equal(read(root, path), text);
    assert.deepEqual(sm.restarted, []);
  } finally {
    done();
  }
});

test("dryRun on an empty root diffs against /dev/null and writes nothing", () => {
  const { root, applier, done } = setup();
  try {
    const plan = applier.dryRun(settings(), ["settings.motd"]);
    assert.equal(plan.files.length, 1);
    assert.match(plan.files[0]!.diff, /^--- \/dev\/null/m);
    assert.throws(() => statSync(join(root, "/etc/motd")), /ENOENT/);
  } finally {
    done();
  }
});

test("trusting a PKI bundle rewrites the CA bundle and restarts containerd", async () => {
  const { root, sm, applier, done } = setup();
  try {
    const cert = CERT_A;
    const data = Buffer.from(cert).toString("base64");
    const s1 = settings({ pki: { corp: { data, trusted: false } } });
    await applier.apply(s1, "all");
    assert.equal(read(root, "/etc/ssl/certs/ca-certificates.crt"), BASE);
    sm.restarted.length = 0;
    const s2 = settings({ pki: { corp: { data, trusted: true } } });
    const plan = await applier.apply(s2, changedKeys(s1, s2));
    assert.deepEqual(plan.files.map((f) => f.name), ["ca-bundle"]);
    assert.equal(read(root, "/etc/ssl/certs/ca-certificates.crt"), BASE + cert);
    assert.deepEqual(sm.restarted, [["containerd.service"]]);
  } finally {
    done();
  }
});

test("a malformed value fails only its file: the error names it, the other files are still written", async () => {
  const { root, applier, done } = setup();
  try {
    // The schema would refuse this; the applier must still not write a broken bundle.
    const s = deepMerge(settings(), { pki: { bad: { data: "%%%%", trusted: true } } });
    await assert.rejects(applier.apply(s, "all"), /ca-certificates\.crt: rendering from ca-bundle\.hbs failed: base64_decode: value is not valid base64/);
    assert.throws(() => statSync(join(root, "etc/ssl/certs/ca-certificates.crt")), /ENOENT/);
    for (const p of allPaths().filter((p) => !p.includes("ca-certificates"))) assert.ok(statSync(join(root, p)).isFile(), p);
  } finally {
    done();
  }
});
