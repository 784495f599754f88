// apiclient argument handling, against a fake transport that records every request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Readable, Writable } from "node:stream";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runApiclient, type ApiRequest, type ApiResponse, type Globals } from "../../src/apiclient/index.js";

const SUFFIX = "abcdEFGH01234567";
const SET_TX = `tx=apiclient-set-${SUFFIX}`;
const APPLY_TX = `tx=apiclient-apply-${SUFFIX}`;

interface Seen {
  method: string;
  path: string;
  body?: unknown;
}

type Handler = (req: Seen) => ApiResponse | undefined;

const ok204 = { status: 204, body: "" };

/** Default answers: PATCH 204, commit 200 with no keys listed, DELETE 200. */
function defaults(req: Seen): ApiResponse {
  if (req.method === "PATCH") return ok204;
  if (req.path.startsWith("/tx/commit_and_apply")) return { status: 200, body: '["settings.motd"]' };
  if (req.method === "DELETE") return { status: 200, body: "[]" };
  return { status: 200, body: "{}" };
}

async function run(argv: string[], opts: { handler?: Handler; stdin?: string; env?: Record<string, string> } = {}) {
  const requests: Seen[] = [];
  const globals: Globals[] = [];
  let stdout = "";
  let stderr = "";
  const sink = (f: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        f(chunk.toString());
        cb();
      },
    });
  const transport = async (req: ApiRequest): Promise<ApiResponse> => {
    const seen: Seen = { method: req.method, path: req.path };
    if (req.body !== undefined) seen.body = JSON.parse(req.body);
    requests.push(seen);
    return opts.handler?.(seen) ?? defaults(seen);
  };
  const code = await runApiclient(
    argv,
    {
      stdout: sink((s) => (stdout += s)),
      stderr: sink((s) => (stderr += s)),
      stdin: Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]),
    },
    {
      env: opts.env ?? {},
      txSuffix: () => SUFFIX,
      target: (g) => {
        globals.push(g);
        return transport;
      },
    },
  );
  return { code, stdout, stderr, requests, globals };
}

const commit = (q: string) => ({ method: "POST", path: `/tx/commit_and_apply?${q}` });
const keypairPatch = (...pairs: string[]) => ({ method: "PATCH", path: `/settings/keypair?${SET_TX}`, body: { request_payload: pairs } });

test("set KEY=VALUE patches a keypair into a private tx, commits, prints nothing", async () => {
  const r = await run(["set", "motd=hi"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests, [keypairPatch("settings.motd=hi"), commit(SET_TX)]);
  assert.equal(r.stdout, "");
});

test("set splits on the first = outside quotes", async () => {
  const r = await run([
    "set",
    "settings.motd=a=b",
    'kubernetes.node-labels."example.com/role"=web',
    'kernel.sysctl."vm.max_map_count"=262144',
    'kubernetes.node-labels."odd=key"=v=w',
    "motd=",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests[0], keypairPatch(
    "settings.motd=a=b",
    'settings.kubernetes.node-labels."example.com/role"=web',
    'settings.kernel.sysctl."vm.max_map_count"=262144',
    'settings.kubernetes.node-labels."odd=key"=v=w',
    "settings.motd=",
  ));
});

test("set usage errors exit 2 without any request", async () => {
  for (const argv of [
    ["set"],
    ["set", "motd"],
    ["set", "=x"],
    ["set", "a..b=1"],
    ["set", 'kernel.sysctl."vm.max=1'],
    ["set", "settings=x"],
    ["set", "motd=x", "--json", '{"motd":"y"}'],
    ["set", "--json", "{not json"],
    ["set", "--json", "[1]"],
    ["set", "--json"],
    ["set", "--bogus", "motd=x"],
  ]) {
    const r = await run(argv);
    assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
    assert.deepEqual(r.requests, [], argv.join(" "));
    assert.match(r.stderr, /\S/, argv.join(" "));
  }
});

test("set --json patches /settings relative to settings; a leading settings wrapper is accepted", async () => {
  for (const json of ['{"motd":"hi"}', '{"settings":{"motd":"hi"}}']) {
    const r = await run(["set", "-j", json]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.requests, [{ method: "PATCH", path: `/settings?${SET_TX}`, body: { motd: "hi" } }, commit(SET_TX)]);
  }
});

test("a refused PATCH reports the API's message, exits 1 and deletes the tx", async () => {
  const r = await run(["set", "nope=1"], {
    handler: (q) =>
      q.method === "PATCH" ? { status: 400, body: JSON.stringify({ message: "unknown setting 'nope'", key: "settings.nope" }) } : undefined,
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /unknown setting 'nope'/);
  assert.match(r.stderr, /400/);
  assert.deepEqual(r.requests, [keypairPatch("settings.nope=1"), { method: "DELETE", path: `/tx?${SET_TX}` }]);
});

test("a failed commit deletes the tx too", async () => {
  const r = await run(["set", "motd=x"], {
    handler: (q) => (q.path.startsWith("/tx/commit") ? { status: 500, body: '{"message":"applier failed"}' } : undefined),
  });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /applier failed/);
  assert.deepEqual(r.requests.at(-1), { method: "DELETE", path: `/tx?${SET_TX}` });
});

test("set --dry-run asks for a dry-run commit, prints diffs and restarts, then deletes the tx", async () => {
  const dry = {
    "changed-keys": ["settings.motd"],
    files: [{ name: "motd", path: "/etc/motd", diff: "@@ -1 +1 @@\n-old\n+new\n" }],
    services: ["motd"],
    "restart-units": ["motd-reload.service"],
  };
  const r = await run(["set", "--dry-run", "motd=new"], {
    handler: (q) => (q.path.includes("dry-run=true") ? { status: 200, body: JSON.stringify(dry) } : undefined),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests, [
    keypairPatch("settings.motd=new"),
    { method: "POST", path: `/tx/commit_and_apply?${SET_TX}&dry-run=true` },
    { method: "DELETE", path: `/tx?${SET_TX}` },
  ]);
  assert.match(r.stdout, /settings\.motd/);
  assert.match(r.stdout, /\/etc\/motd/);
  assert.match(r.stdout, /^\+new$/m);
  assert.match(r.stdout, /would restart: motd-reload\.service/);
});

test("get turns prefixes into /?prefix= queries and merges the answers", async () => {
  const answers: Record<string, unknown> = {
    "settings.motd": { settings: { motd: "hi" } },
    'settings.kernel.sysctl."vm.max_map_count"': { settings: { kernel: { sysctl: { "vm.max_map_count": "1" } } } },
    os: { os: { arch: "x86_64" } },
  };
  const r = await run(["get", "motd", 'settings.kernel.sysctl."vm.max_map_count"', "os"], {
    handler: (q) => {
      const p = new URL(q.path, "http://x").searchParams.get("prefix") ?? "";
      return { status: 200, body: JSON.stringify(answers[p] ?? {}) };
    },
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.requests.map((q) => q.path),
    ["/?prefix=settings.motd", `/?prefix=${encodeURIComponent('settings.kernel.sysctl."vm.max_map_count"')}`, "/?prefix=os"],
  );
  assert.equal(
    r.stdout,
    JSON.stringify({ settings: { motd: "hi", kernel: { sysctl: { "vm.max_map_count": "1" } } }, os: { arch: "x86_64" } }, null, 2) + "\n",
  );
});

test("get keeps top-level names and adds settings. to the rest", async () => {
  const r = await run(["get", "services", "configuration-files.motd", "settings", "host-containers.admin"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    r.requests.map((q) => q.path),
    ["/?prefix=services", "/?prefix=configuration-files.motd", "/?prefix=settings", "/?prefix=settings.host-containers.admin"],
  );
});

test("get with no prefix shows settings and os only", async () => {
  const r = await run(["get"], {
    handler: () => ({ status: 200, body: JSON.stringify({ settings: { motd: "m" }, services: {}, "configuration-files": {}, os: { arch: "a" } }) }),
  });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests, [{ method: "GET", path: "/" }]);
  assert.deepEqual(JSON.parse(r.stdout), { settings: { motd: "m" }, os: { arch: "a" } });
});

test("get /URI is a raw GET, pretty-printed; a /URI must be alone", async () => {
  const r = await run(["get", "/settings?keys=settings.motd"], { handler: () => ({ status: 200, body: '{"motd":"x"}' }) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests, [{ method: "GET", path: "/settings?keys=settings.motd" }]);
  assert.equal(r.stdout, '{\n  "motd": "x"\n}\n');
  const bad = await run(["get", "/settings", "motd"]);
  assert.equal(bad.code, 2);
  assert.deepEqual(bad.requests, []);
});

test("get reports API errors with exit 1", async () => {
  const r = await run(["get", "motd"], { handler: () => ({ status: 400, body: '{"message":"bad prefix"}' }) });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /bad prefix/);
});

test("raw sends the method and body as given and prints the body as is", async () => {
  const r = await run(["raw", "-u", "/settings?tx=t", "-X", "patch", "-d", '{"motd":"-x"}'], { handler: () => ({ status: 200, body: "as-is" }) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests, [{ method: "PATCH", path: "/settings?tx=t", body: { motd: "-x" } }]);
  assert.equal(r.stdout, "as-is\n");
  const m = await run(["raw", "--uri", "/tx/commit?tx=t", "--method", "POST"]);
  assert.deepEqual(m.requests, [{ method: "POST", path: "/tx/commit?tx=t" }]);
});

test("raw may be omitted, as in Bottlerocket", async () => {
  const r = await run(["-s", "/x.sock", "-u", "/os"]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests, [{ method: "GET", path: "/os" }]);
});

test("raw: non-2xx prints the message on stderr and exits 1; missing -u is a usage error", async () => {
  const r = await run(["raw", "-u", "/nope"], { handler: () => ({ status: 404, body: '{"message":"no such path"}' }) });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /no such path/);
  for (const argv of [["raw"], [], ["raw", "-u"], ["raw", "-u", "settings"], ["raw", "-u", "/a", "-m", "GET", "-X", "POST"]]) {
    const u = await run(argv);
    assert.equal(u.code, 2, `${argv.join(" ")}: ${u.stderr}`);
    assert.deepEqual(u.requests, []);
  }
});

test("unknown subcommands and options are usage errors; --help is not", async () => {
  assert.equal((await run(["frobnicate"])).code, 2);
  assert.equal((await run(["get", "--nope"])).code, 2);
  const h = await run(["--help"]);
  assert.equal(h.code, 0);
  assert.match(h.stdout, /set/);
});

test("socket path: -s beats CAISSON_API_SOCKET beats /run/api.sock; -v traces requests", async () => {
  assert.equal((await run(["get", "motd"])).globals[0]?.socketPath, "/run/api.sock");
  assert.equal((await run(["get", "motd"], { env: { CAISSON_API_SOCKET: "/e.sock" } })).globals[0]?.socketPath, "/e.sock");
  const r = await run(["get", "motd", "--socket-path", "/o.sock", "-v"], { env: { CAISSON_API_SOCKET: "/e.sock" } });
  assert.equal(r.globals[0]?.socketPath, "/o.sock");
  assert.match(r.stderr, /> GET \/\?prefix=settings\.motd/);
  assert.match(r.stderr, /< 200/);
});

test("apply reads TOML or JSON from stdin and files into one tx", async () => {
  const dir = mkdtempSync(join(tmpdir(), "apiclient-unit-"));
  try {
    const a = join(dir, "a.toml");
    const b = join(dir, "b.json");
    writeFileSync(a, '[settings]\nmotd = "from toml"\n[settings.kernel.sysctl]\n"vm.max_map_count" = "262144"\n');
    writeFileSync(b, '  {"settings": {"motd": "from json"}}');
    const r = await run(["apply", "--from-file", a, "--from-file", b, "--from-file", "-"], { stdin: "[settings.ntp]\ntime-servers = ['a.example']\n" });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.requests, [
      { method: "PATCH", path: `/settings?${APPLY_TX}`, body: { motd: "from toml", kernel: { sysctl: { "vm.max_map_count": "262144" } } } },
      { method: "PATCH", path: `/settings?${APPLY_TX}`, body: { motd: "from json" } },
      { method: "PATCH", path: `/settings?${APPLY_TX}`, body: { ntp: { "time-servers": ["a.example"] } } },
      commit(APPLY_TX),
    ]);
    const s = await run(["apply"], { stdin: '{"settings":{"motd":"x"}}' });
    assert.deepEqual(s.requests[0], { method: "PATCH", path: `/settings?${APPLY_TX}`, body: { motd: "x" } });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("apply refuses bad input before any request", async () => {
  const bad = await run(["apply"], { stdin: '[settings]\nmotd = "unterminated\n' });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /<stdin>:2:\d+: invalid TOML/);
  assert.deepEqual(bad.requests, []);
  const noTable = await run(["apply"], { stdin: 'motd = "x"\n' });
  assert.equal(noTable.code, 1);
  assert.match(noTable.stderr, /settings/);
  assert.deepEqual(noTable.requests, []);
  const badJson = await run(["apply"], { stdin: '{"settings": ' });
  assert.equal(badJson.code, 1);
  assert.deepEqual(badJson.requests, []);
  const missing = await run(["apply", "--from-file", "/nonexistent/x.toml"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /nonexistent/);
  assert.deepEqual(missing.requests, []);
});

test("apply --dry-run uses the dry-run commit and deletes the tx", async () => {
  const r = await run(["apply", "--dry-run"], { stdin: '[settings]\nmotd = "x"\n', handler: (q) => (q.path.includes("dry-run") ? { status: 200, body: '{"changed-keys":[]}' } : undefined) });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.requests.map((q) => `${q.method} ${q.path}`), [
    `PATCH /settings?${APPLY_TX}`,
    `POST /tx/commit_and_apply?${APPLY_TX}&dry-run=true`,
    `DELETE /tx?${APPLY_TX}`,
  ]);
  assert.match(r.stdout, /no settings would change/);
});

test("an unreachable socket is an error, not a usage error", async () => {
  const r = await runApiclient(["-s", "/nonexistent/api.sock", "get", "motd"], {
    stdout: new Writable({ write: (_c, _e, cb) => cb() }),
    stderr: new Writable({ write: (_c, _e, cb) => cb() }),
    stdin: Readable.from([]),
  });
  assert.equal(r, 1);
});
