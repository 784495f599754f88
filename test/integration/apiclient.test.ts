// The real apiclient binary against a real host daemon in workstation mode (a temp root).
import { before, after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const caissonBin = join(repo, "dist/src/cli/caisson.js");
const apiclientBin = join(repo, "dist/src/apiclient/main.js");

let dir: string;
let root: string;
let socket: string;
let host: ChildProcess | undefined;
let hostLog = "";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function apiclient(args: string[], stdin?: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [apiclientBin, "--socket-path", socket, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    p.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(stdin ?? "");
  });
}

async function getJson(...prefixes: string[]): Promise<unknown> {
  const r = await apiclient(["get", ...prefixes]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const motd = async () => ((await getJson("settings.motd")) as { settings: { motd: unknown } }).settings.motd;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "apiclient-it-"));
  root = join(dir, "root");
  socket = join(dir, "api.sock");
  const h = spawn(process.execPath, [caissonBin, "host", "--root", root, "--socket", socket], { stdio: ["ignore", "pipe", "pipe"] });
  host = h;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`host not ready after 30 s:\n${hostLog}`)), 30_000);
    h.stdout.on("data", (c: Buffer) => {
      hostLog += c.toString();
      if (hostLog.includes("API ready")) {
        clearTimeout(timer);
        resolve();
      }
    });
    h.stderr.on("data", (c: Buffer) => (hostLog += c.toString()));
    h.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`host exited with ${code} before it was ready:\n${hostLog}`));
    });
  });
  assert.ok(existsSync(socket), "the socket exists once the API is ready");
});

after(async () => {
  const h = host;
  if (h?.pid !== undefined && h.exitCode === null && h.signalCode === null) {
    const exited = new Promise((r) => h.once("exit", r));
    process.kill(h.pid, "SIGTERM");
    const t = setTimeout(() => h.pid !== undefined && process.kill(h.pid, "SIGKILL"), 5_000);
    await exited;
    clearTimeout(t);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("set motd=hi, then get settings.motd prints it under settings", async () => {
  const s = await apiclient(["set", "motd=hi"]);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(s.stdout, "");
  const g = await apiclient(["get", "settings.motd"]);
  assert.equal(g.code, 0, g.stderr);
  assert.deepEqual(JSON.parse(g.stdout), { settings: { motd: "hi" } });
  assert.equal(g.stdout, JSON.stringify({ settings: { motd: "hi" } }, null, 2) + "\n");
  assert.deepEqual(await getJson("motd"), { settings: { motd: "hi" } }, "settings. is optional");
});

test("set motd=42 keeps a string (typed by the schema, not guessed)", async () => {
  const s = await apiclient(["set", "motd=42"]);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(await motd(), "42");
});

test("set --json, with and without the settings wrapper", async () => {
  let s = await apiclient(["set", "--json", '{"motd":"from json"}']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(await motd(), "from json");
  s = await apiclient(["set", "-j", '{"settings":{"motd":"wrapped"}}']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal(await motd(), "wrapped");
});

test("quoted key segments: set and get a sysctl with dots in its name", async () => {
  const s = await apiclient(["set", 'kernel.sysctl."vm.max_map_count"=262144']);
  assert.equal(s.code, 0, s.stderr);
  assert.deepEqual(await getJson('settings.kernel.sysctl."vm.max_map_count"'), {
    settings: { kernel: { sysctl: { "vm.max_map_count": "262144" } } },
  });
});

test("apply from a TOML file and from stdin", async () => {
  const f = join(dir, "apply.toml");
  writeFileSync(f, '[settings]\nmotd = "from file"\n[settings.kernel.sysctl]\n"net.core.somaxconn" = "1024"\n');
  let r = await apiclient(["apply", "--from-file", f]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await motd(), "from file");
  assert.deepEqual(await getJson('kernel.sysctl."net.core.somaxconn"'), { settings: { kernel: { sysctl: { "net.core.somaxconn": "1024" } } } });
  r = await apiclient(["apply"], '[settings]\nmotd = "from stdin"\n');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await motd(), "from stdin");
  r = await apiclient(["apply", "--from-file", "-"], '{"settings": {"motd": "json stdin"}}');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await motd(), "json stdin");
});

test("apply with malformed TOML fails with line and column and changes nothing", async () => {
  const before = await motd();
  const f = join(dir, "bad.toml");
  writeFileSync(f, '[settings]\nmotd = "ok"\nntp = [unclosed\n');
  const r = await apiclient(["apply", "--from-file", f]);
  assert.notEqual(r.code, 0);
  assert.ok(r.stderr.includes(`${f}:3:`), r.stderr);
  assert.equal(await motd(), before);
  await assertNoPendingApiclientTx();
});

test("set of an unknown key fails, names the key, changes nothing", async () => {
  const before = await getJson();
  const r = await apiclient(["set", "motd=changed", "no-such-setting=1"]);
  assert.notEqual(r.code, 0);
  assert.notEqual(r.code, 2, "the API refused it; it is not a usage error");
  assert.match(r.stderr, /no-such-setting/);
  assert.deepEqual(await getJson(), before);
  await assertNoPendingApiclientTx();
});

test("usage errors exit 2", async () => {
  for (const argv of [["set"], ["set", "motd"], ["raw"], ["no-such-subcommand"]]) {
    const r = await apiclient(argv);
    assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /\S/);
  }
});

test("raw -u /settings prints the live settings", async () => {
  const r = await apiclient(["raw", "-u", "/settings"]);
  assert.equal(r.code, 0, r.stderr);
  const settings = JSON.parse(r.stdout) as { motd?: unknown };
  assert.equal(settings.motd, await motd());
  const nf = await apiclient(["raw", "-u", "/no/such/path"]);
  assert.equal(nf.code, 1);
  assert.match(nf.stderr, /\S/);
});

test("get with no prefix shows settings and os", async () => {
  const all = (await getJson()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(all).sort(), ["os", "settings"]);
});

test("set --dry-run shows the /etc/motd diff and leaves the file and the setting alone", async () => {
  const s = await apiclient(["set", "motd=before dry run"]);
  assert.equal(s.code, 0, s.stderr);
  const motdFile = join(root, "etc/motd");
  const content = readFileSync(motdFile, "utf8");
  assert.match(content, /before dry run/);
  const r = await apiclient(["set", "--dry-run", "motd=dry run"]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.includes("would rewrite /etc/motd"), r.stdout);
  assert.match(r.stdout, /^-.*before dry run/m);
  assert.match(r.stdout, /^\+.*dry run/m);
  assert.match(r.stdout, /would restart: /);
  assert.equal(readFileSync(motdFile, "utf8"), content);
  assert.equal(await motd(), "before dry run");
  await assertNoPendingApiclientTx();
});

async function assertNoPendingApiclientTx(): Promise<void> {
  const r = await apiclient(["raw", "-u", "/tx/list"]);
  assert.equal(r.code, 0, r.stderr);
  const txs = JSON.parse(r.stdout) as string[];
  assert.deepEqual(txs.filter((t) => t.startsWith("apiclient-")), []);
}
