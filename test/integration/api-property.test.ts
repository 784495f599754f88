// Property-based tests of the API (fast-check) against the production Host and API server on a
// real Unix socket: random bodies (JSON values, nested trees of real and random setting names,
// text that is not JSON, huge and tiny), random key paths, random transaction names, random
// request targets. Properties:
//   - the server never answers 5xx and never dies (it answers the next request);
//   - every 4xx body is JSON with a non-empty message;
//   - a request answered 4xx changes nothing (live settings and every pending transaction);
//   - an accepted PATCH merges into its pending transaction, and a commit makes live exactly the
//     old live deep-merged with what was pending — never part of it.
//
// Server bugs these properties found are pinned as regression tests at the end. Inputs that hit
// them are in the random runs; CAISSON_PROPERTY_LENIENT=1 keeps them out (for triage of a new bug).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { request as httpRequest } from "node:http";
import { call, startHost, type Response, type TestHost } from "../helpers/host.js";

// The bugs these properties found are fixed; the input filters for them stay available for triage.
const STRICT = process.env.CAISSON_PROPERTY_LENIENT !== "1";
const SEED = process.env.CAISSON_PROPERTY_SEED === undefined ? undefined : Number(process.env.CAISSON_PROPERTY_SEED);
// A time limit per property bounds shrinking, which replays requests against a stateful host. A
// property interrupted before its numRuns fails (failOnInterrupt): fewer runs than asked for must
// not pass unseen (raise the limit, or lower numRuns, if a slow machine needs it).
const TIME_LIMIT_MS = Number(process.env.CAISSON_PROPERTY_TIME_LIMIT_MS ?? 120_000);
const runs = (n: number) => ({
  numRuns: n,
  includeErrorInReport: true,
  plugins: [fc.interruptAfterTimeLimit(TIME_LIMIT_MS, { failOnInterrupt: true })],
  ...(SEED === undefined ? {} : { seed: SEED }),
});

let h: TestHost;
before(async () => {
  h = await startHost();
});
after(async () => {
  await h.stop();
});

// ---- JSON as a tree we serialise ourselves (duplicate keys and "__proto__" survive) ----

type Scalar = null | boolean | number | string;
type J = { o: [string, J][] } | { a: J[] } | { v: Scalar };
type Value = null | boolean | number | string | Value[] | { [k: string]: Value };

function text(j: J): string {
  if ("v" in j) return JSON.stringify(j.v) ?? "null";
  if ("a" in j) return `[${j.a.map(text).join(",")}]`;
  return `{${j.o.map(([k, v]) => `${JSON.stringify(k)}:${text(v)}`).join(",")}}`;
}

const isObj = (v: unknown): v is { [k: string]: Value } => typeof v === "object" && v !== null && !Array.isArray(v);

function define(o: { [k: string]: Value }, k: string, v: Value): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Reference deep merge with own-key semantics: objects merge key by key, anything else replaces. */
function merge(base: { [k: string]: Value }, patch: { [k: string]: Value }): { [k: string]: Value } {
  const out: { [k: string]: Value } = {};
  for (const k of Object.keys(base)) define(out, k, base[k]!);
  for (const k of Object.keys(patch)) {
    const b = Object.hasOwn(out, k) ? out[k] : undefined;
    const v = patch[k]!;
    define(out, k, isObj(b) && isObj(v) ? merge(b, v) : v);
  }
  return out;
}

/** What a value looks like after a JSON round trip (-0 → 0, ...). */
const normal = (v: Value): Value => JSON.parse(JSON.stringify(v)) as Value;

function getPath(tree: Value | undefined, path: readonly string[]): Value | undefined {
  let cur = tree;
  for (const seg of path) {
    if (!isObj(cur) || !Object.hasOwn(cur, seg)) return undefined;
    cur = cur[seg];
  }
  return cur;
}

function leafPaths(tree: { [k: string]: Value }, prefix: string[] = []): string[][] {
  return Object.keys(tree).flatMap((k) => {
    const v = tree[k]!;
    return isObj(v) && Object.keys(v).length ? leafPaths(v, [...prefix, k]) : [[...prefix, k]];
  });
}

/** Every leaf of `part` is in `whole` at the same path with the same value. */
function assertSubtree(part: Value, whole: Value, what: string): void {
  assert.ok(isObj(part), `${what}: not an object: ${JSON.stringify(part)}`);
  for (const p of leafPaths(part)) {
    const v: Value = getPath(part, p)!;
    const w: Value | undefined = getPath(whole, p);
    if (isObj(v) && Object.keys(v).length === 0) assert.ok(isObj(w), `${what}: ${p.join(".")} is {} but not a table in the whole`);
    else assert.deepEqual(w, v, `${what}: ${JSON.stringify(p)} differs from the whole`);
  }
}

// ---- requests ----

/** Percent-encode every byte but the unreserved ones (works for lone surrogates too). */
function pct(s: string): string {
  let out = "";
  for (const b of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9_.~-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/**
 * One request. Bodies are sent with a content-length: the helper's `call` streams them unframed
 * for GET and DELETE (Node's client does not chunk those), so their bytes would reach the server as
 * the start of a next request — a client artefact, not API input.
 */
function api(method: string, path: string, body?: string): Promise<Response> {
  if (body === undefined || body === "") return call(h.socket, method, path);
  const data = Buffer.from(body, "utf8");
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath: h.socket, method, path, headers: { "content-type": "application/json", "content-length": data.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const t = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode ?? 0, text: t, json: () => JSON.parse(t) as unknown });
      });
    });
    req.on("error", reject);
    req.end(data);
  });
}

/** No 5xx; a 4xx carries a JSON body with a non-empty message. */
function checkAnswer(r: Response, what: string): void {
  assert.ok(r.status >= 200 && r.status < 500, `${what} → ${r.status} ${r.text.slice(0, 500)}`);
  if (r.status >= 400) {
    let b: unknown;
    try {
      b = JSON.parse(r.text);
    } catch {
      assert.fail(`${what} → ${r.status} with a body that is not JSON: ${JSON.stringify(r.text.slice(0, 200))}`);
    }
    assert.ok(isObj(b) && typeof b.message === "string" && b.message.length > 0, `${what} → ${r.status} without a message: ${r.text.slice(0, 200)}`);
  }
}

interface State {
  live: Value;
  txs: Record<string, Value>;
}

/** Live settings and every pending transaction. Also proves the server still answers. */
async function state(): Promise<State> {
  const live = await api("GET", "/settings");
  assert.equal(live.status, 200, `GET /settings after the request: ${live.status} ${live.text.slice(0, 200)}`);
  const list = await api("GET", "/tx/list");
  assert.equal(list.status, 200);
  const txs: Record<string, Value> = {};
  for (const tx of list.json() as string[]) {
    const r = await api("GET", `/tx?tx=${pct(tx)}`);
    assert.equal(r.status, 200, `GET /tx?tx=${tx}: ${r.status} ${r.text}`);
    txs[tx] = JSON.parse(r.text) as Value;
  }
  return { live: JSON.parse(live.text) as Value, txs };
}

async function dropAllTx(): Promise<void> {
  for (const tx of (await api("GET", "/tx/list")).json() as string[]) await api("DELETE", `/tx?tx=${pct(tx)}`);
}

// ---- known server bugs (see the regression tests at the end) ----

const INHERITED = new Set(Object.getOwnPropertyNames(Object.prototype));
/** Bug 1 and 2: names of Object.prototype's properties as setting names. */
const hasInheritedName = (s: string) => [...INHERITED].some((n) => s.includes(n));
/** Bug 3: a tx name whose pending file name (percent-encoded, plus the temp-file suffix) passes NAME_MAX. */
const txNameTooLongForFile = (tx: string) => encodeURIComponent(tx).replace(/\./g, "%2E").length + ".json".length + 40 > 255;
/** Bug 4: a request target the WHATWG URL parser rejects (e.g. starting with "//"). */
const badUrl = (target: string) => !URL.canParse(target, "http://localhost");

const KNOWN_BUGS = {
  text: (s: string) => !STRICT && hasInheritedName(s),
  tx: (tx: string) => !STRICT && txNameTooLongForFile(tx),
  target: (t: string) => !STRICT && badUrl(t),
};

// ---- arbitraries ----

const lit = <T extends Scalar>(a: fc.Arbitrary<T>): fc.Arbitrary<J> => a.map((v) => ({ v }));
const arr = (a: fc.Arbitrary<J>, c: { minLength?: number; maxLength?: number } = {}): fc.Arbitrary<J> => fc.array(a, { maxLength: 3, ...c }).map((xs) => ({ a: xs }));
/** A table: any subset of its fields (possibly none). */
const table = (fields: Record<string, fc.Arbitrary<J>>): fc.Arbitrary<J> =>
  fc.record(fields, { requiredKeys: [] }).map((r) => ({ o: Object.entries(r) as [string, J][] }));
/** A map: a few entries with keys from `key`. */
const mapOf = (key: fc.Arbitrary<string>, value: fc.Arbitrary<J>): fc.Arbitrary<J> => fc.array(fc.tuple(key, value), { maxLength: 3 }).map((o) => ({ o }));

const anyString = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: "binary", maxLength: 20 }), fc.string({ unit: "grapheme", maxLength: 10 }));
const str = lit(anyString);
const nonEmpty = lit(fc.string({ minLength: 1, maxLength: 20 }));
const bool = lit(fc.boolean());
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const hostnameS = fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => ls.join("."));
const hostname = lit(hostnameS);
const ip = lit(fc.oneof(fc.ipV4(), fc.ipV6()));
const url = lit(fc.webUrl());
const base64 = lit(fc.base64String({ minLength: 4, maxLength: 24 }));
/** Base64 of UTF-8 text; any base64 when strict (bug 5: non-UTF-8 certificate data breaks rendering). */
const base64Text = STRICT ? base64 : lit(fc.string({ unit: "grapheme", minLength: 1, maxLength: 16 }).map((t) => Buffer.from(t, "utf8").toString("base64")));
const NAME = /^[a-z0-9][a-z0-9_-]{0,10}$/;
const limit = fc.oneof(lit(fc.integer({ min: -1, max: 1 << 20 })), lit(fc.constant("unlimited")));

/** Partial settings trees the dev variant accepts (its schema, src/settings/schema.ts). */
const validSettings: fc.Arbitrary<J> = table({
  motd: str,
  network: table({
    hostname,
    hosts: arr(fc.tuple(ip, arr(hostname, { minLength: 1 })).map(([a, n]) => ({ a: [a, n] }))),
    "https-proxy": nonEmpty,
    "no-proxy": arr(nonEmpty),
  }),
  dns: table({ "name-servers": arr(ip), "search-list": arr(hostname) }),
  ntp: table({ "time-servers": arr(hostname), options: arr(lit(fc.stringMatching(/^[a-z][a-z0-9-]{0,6}( [0-9]{1,2})?$/))) }),
  kernel: table({
    sysctl: mapOf(fc.stringMatching(/^[a-z0-9_]{1,6}([./][a-z0-9_*-]{1,6}){1,3}$/), str),
    lockdown: lit(fc.constantFrom("none", "integrity", "confidentiality")),
    modules: mapOf(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.constantFrom("__proto__", "constructor")), table({ allowed: bool, autoload: bool })),
  }),
  boot: table({
    "kernel-parameters": mapOf(fc.oneof(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), fc.constant("__proto__")), arr(str)),
    "init-parameters": mapOf(fc.stringMatching(/^[A-Za-z0-9_.-]{1,12}$/), arr(str)),
    "reboot-to-reconcile": bool,
  }),
  "host-containers": mapOf(fc.stringMatching(NAME), table({ source: nonEmpty, enabled: bool, superpowered: bool, "user-data": base64 })),
  "bootstrap-containers": mapOf(fc.stringMatching(NAME), table({ source: nonEmpty, mode: lit(fc.constantFrom("off", "once", "always")), essential: bool })),
  updates: table({
    "metadata-base-url": url,
    "targets-base-url": url,
    seed: lit(fc.integer({ min: 0, max: 2047 })),
    "version-lock": lit(fc.oneof(fc.constant("latest"), fc.stringMatching(/^v?[0-9]{1,2}\.[0-9]{1,2}\.[0-9]{1,2}$/))),
    "ignore-waves": bool,
  }),
  "container-registry": table({
    mirrors: arr(table({ registry: nonEmpty, endpoint: arr(url, { minLength: 1 }) }).filter((j) => "o" in j && j.o.length === 2)),
    credentials: arr(table({ registry: nonEmpty, username: str, password: str }).filter((j) => "o" in j && j.o.some(([k]) => k === "registry"))),
  }),
  "container-runtime": table({
    "enable-unprivileged-icmp": bool,
    "enable-unprivileged-ports": bool,
    "max-concurrent-downloads": lit(fc.integer({ min: 1, max: 64 })),
    "max-container-log-line-size": lit(fc.integer({ min: -1, max: 1 << 20 })),
  }),
  "oci-defaults": table({
    capabilities: mapOf(fc.stringMatching(/^[a-z][a-z-]{0,10}$/), bool),
    "resource-limits": mapOf(fc.stringMatching(/^[a-z][a-z-]{0,10}$/), table({ "hard-limit": limit, "soft-limit": limit })),
  }),
  pki: mapOf(fc.stringMatching(NAME), table({ data: base64Text, trusted: bool })),
});

const REAL_NAMES = [
  "settings", "motd", "network", "hostname", "hosts", "https-proxy", "no-proxy", "dns", "name-servers", "search-list", "ntp",
  "time-servers", "options", "kernel", "sysctl", "lockdown", "modules", "allowed", "autoload", "boot", "kernel-parameters",
  "init-parameters", "reboot-to-reconcile", "host-containers", "admin", "control", "source", "enabled", "superpowered",
  "user-data", "bootstrap-containers", "mode", "essential", "updates", "metadata-base-url", "seed", "version-lock",
  "ignore-waves", "container-registry", "mirrors", "credentials", "registry", "container-runtime", "max-concurrent-downloads",
  "oci-defaults", "capabilities", "resource-limits", "hard-limit", "pki", "data", "trusted", "kubernetes", "cluster-name",
  "vm.max_map_count", "net.ipv4.ip_forward",
];
const ODD_NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "", ".", "a.b", '"q"', "\u0000", "é", " ", "-", "A", "x".repeat(300)];
const nameArb = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...REAL_NAMES) }, { weight: 1, arbitrary: fc.constantFrom(...ODD_NAMES) }, { weight: 3, arbitrary: anyString });
const scalarArb: fc.Arbitrary<Scalar> = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), anyString, fc.constantFrom(1e300, -1, 2047, 2048, "latest", "none", "true"));

/** Random trees of real and random setting names with random values. */
const randomTree: fc.Arbitrary<J> = fc.letrec<{ node: J; obj: J }>((tie) => ({
  node: fc.oneof({ depthSize: "small", withCrossShrink: true }, lit(scalarArb), tie("obj"), fc.array(tie("node"), { maxLength: 3 }).map((a) => ({ a }))),
  obj: fc.array(fc.tuple(nameArb, tie("node")), { maxLength: 4 }).map((o) => ({ o })),
})).obj;

/** A valid tree with one random change somewhere: mostly rejected, sometimes not. */
const nearlyValid: fc.Arbitrary<J> = fc.tuple(validSettings, nameArb, lit(scalarArb)).map(([j, k, v]) => ("o" in j ? { o: [...j.o, [k, v] as [string, J]] } : j));

const TINY = ["", " ", "{}", "[]", "null", "0", '""', "{", "}", "[", '{"":1}', '{"motd":}', "\u0000", "\ufeff{}", '{"motd":"a"}garbage', "true", "1e999"];

/**
 * Deep values: lists and tables nested up to 2000 levels (far past the limit of 32), at the root or
 * under real setting names, closed or not. Built as text: a tree this deep would overflow the
 * recursive helpers of this file.
 */
const DEEP_UNDER: [string, string][] = [
  ["", ""],
  ['{"motd":', "}"],
  ['{"kernel":{"sysctl":{"a.b":', "}}}"],
  ['{"network":{"hosts":', "}}"],
  ['{"x":', "}"],
  ['{"container-registry":{"credentials":[{"registry":', "}]}}"],
];
const deepBody: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1, max: 2000 }), fc.constantFrom(...DEEP_UNDER), fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }), fc.boolean(), fc.constantFrom("1", '"s"', "[]", "{}", "null"))
  .map(([depth, [under, tail], pattern, closed, leaf]) => {
    let open = "";
    let close = "";
    for (let i = 0; i < depth; i++) {
      const list = pattern[i % pattern.length]!;
      open += list ? "[" : '{"a":';
      close = (list ? "]" : "}") + close;
    }
    return under + open + leaf + (closed ? close + tail : "");
  });
/** Wide values: many entries or list items, long strings (up to past the value limit). */
const wideBody: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 1, max: 5000 }).map((n) => JSON.stringify({ kernel: { sysctl: Object.fromEntries(Array.from({ length: n }, (_, i) => [`k.${i}`, `${i}`])) } })),
  fc.integer({ min: 1, max: 20000 }).map((n) => JSON.stringify({ dns: { "name-servers": Array.from({ length: n }, (_, i) => `10.0.${(i >> 8) & 255}.${i & 255}`) } })),
  fc.integer({ min: 60 * 1024, max: 70 * 1024 }).map((n) => JSON.stringify({ motd: "m".repeat(n) })),
  fc.integer({ min: 1, max: 3000 }).map((n) => JSON.stringify(Array.from({ length: n }, () => ({})))),
);

/** Request bodies: text, mostly JSON, some not; deep and wide ones too. */
const bodyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 1, arbitrary: deepBody },
  { weight: 1, arbitrary: wideBody },
  { weight: 4, arbitrary: validSettings.map(text) },
  { weight: 3, arbitrary: randomTree.map(text) },
  { weight: 2, arbitrary: nearlyValid.map(text) },
  { weight: 1, arbitrary: fc.json() },
  { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: anyString },
  { weight: 1, arbitrary: fc.constantFrom(...TINY) },
);

const printable = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 20 });
const longPrintable = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 60, maxLength: 140 });
/** Transaction names: usual, random printable, long, invalid (empty, spaces, non-ASCII, too long). */
const txArb: fc.Arbitrary<string> = fc
  .oneof(
    { weight: 4, arbitrary: fc.constantFrom("default", "t1", "bench", "caisson-launch", "a.b", "..", "%", "%2E", "x/y", "*") },
    { weight: 3, arbitrary: printable },
    { weight: 1, arbitrary: longPrintable },
    { weight: 1, arbitrary: anyString },
    { weight: 1, arbitrary: fc.constantFrom("", " ", "a b", "é", "x".repeat(129), "x".repeat(128)) },
  )
  .filter((tx) => !KNOWN_BUGS.tx(tx));

const txQuery = (tx: string) => (tx === "" ? "" : `?tx=${pct(tx)}`);

const REAL_KEYS = [
  "settings", "settings.motd", "motd", "settings.network.hostname", "network", 'settings.kernel.sysctl."vm.max_map_count"',
  "kernel.sysctl", "settings.updates.seed", "updates.version-lock", "ntp.time-servers", "settings.ntp", "os", "os.arch",
  "services", "configuration-files", "settings.host-containers.admin.enabled", "settings.dns.name-servers", "settings.boot",
];
const bareSeg = fc.stringMatching(/^[A-Za-z0-9_/-]{1,8}$/);
const quotedSeg = anyString.map((s) => `"${s}"`);
/** Key paths: real ones, dotted bare/quoted segments, random strings, broken quoting. */
const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...REAL_KEYS) },
  { weight: 3, arbitrary: fc.array(fc.oneof(bareSeg, quotedSeg, fc.constantFrom(...REAL_NAMES)), { minLength: 1, maxLength: 5 }).map((s) => s.join(".")) },
  { weight: 2, arbitrary: anyString },
  { weight: 1, arbitrary: fc.constantFrom("", ".", "..", '"', '""', 'a."b', "a.", ".a", "a..b", '"a"b', "x".repeat(256), "settings.") },
);

const valueText: fc.Arbitrary<string> = fc.oneof(anyString, fc.json(), fc.constantFrom("true", "false", "42", "-1", "2048", "[]", '["a"]', "{}", "latest", "none", "1.2.3"));

// ---- properties ----

/** Send one request; check the answer; if 4xx, check nothing changed. Returns the answer. */
async function probe(method: string, target: string, body: string | undefined): Promise<{ r: Response; before: State; after: State }> {
  const before = await state();
  const r = await api(method, target, body);
  const what = `${method} ${target} ${body === undefined ? "" : JSON.stringify(body.slice(0, 300))}`;
  checkAnswer(r, what);
  const after = await state();
  if (r.status >= 400) assert.deepEqual(after, before, `${what} → ${r.status} but state changed`);
  return { r, before, after };
}

test("PATCH /settings with random bodies: no 5xx, 4xx is JSON and changes nothing, 204 merges into the transaction", async () => {
  await fc.assert(
    fc.asyncProperty(txArb, fc.option(validSettings.map(text), { nil: undefined }), bodyArb.filter((b) => !KNOWN_BUGS.text(b)), async (tx, seed, body) => {
      try {
        if (seed !== undefined && !KNOWN_BUGS.text(seed)) await api("PATCH", `/settings${txQuery(tx)}`, seed);
        const { r, before, after } = await probe("PATCH", `/settings${txQuery(tx)}`, body);
        if (r.status === 204) {
          const name = tx === "" ? "default" : tx;
          const expected = normal(merge((before.txs[name] ?? {}) as { [k: string]: Value }, JSON.parse(body) as { [k: string]: Value }));
          assert.deepEqual(after.txs[name], expected, "pending = old pending deep-merged with the patch");
          assert.deepEqual(after.live, before.live, "a PATCH does not change live settings");
        }
      } finally {
        await dropAllTx();
      }
    }),
    runs(300),
  );
});

test("PATCH /settings with bodies around the size limit: 413 or accepted, never 5xx", async () => {
  const LIMIT = 1024 * 1024;
  /** {"kernel":{"sysctl":{...}}} of exactly `size` bytes: entries of ~1000 bytes (under the value limit). */
  const wide = (size: number) => {
    const prefix = '{"kernel":{"sysctl":{';
    const suffix = "}}}";
    const entries: string[] = [];
    let used = prefix.length + suffix.length;
    for (let i = 0; ; i++) {
      const head = `${i ? "," : ""}"k.${i}":"`;
      const room = size - used - head.length - 1;
      if (room <= 2000) {
        entries.push(head + "v".repeat(Math.max(0, room)) + '"');
        break;
      }
      entries.push(head + "v".repeat(1000) + '"');
      used += head.length + 1001;
    }
    return prefix + entries.join("") + suffix;
  };
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: LIMIT - 64, max: LIMIT + 64 }), fc.constantFrom("motd", "garbage", "nested", "wide"), async (size, kind) => {
      try {
        const pad = (prefix: string, suffix: string) => prefix + "x".repeat(Math.max(0, size - prefix.length - suffix.length)) + suffix;
        const body = kind === "motd" ? pad('{"motd":"', '"}') : kind === "garbage" ? pad("{", "") : kind === "wide" ? wide(size) : pad('{"kernel":{"sysctl":{"a.b":"', '"}}}');
        assert.equal(Buffer.byteLength(body), size);
        const { r } = await probe("PATCH", "/settings?tx=huge", body);
        if (Buffer.byteLength(body) > LIMIT) assert.equal(r.status, 413);
        else if (kind === "garbage") assert.equal(r.status, 400);
        // One value of ~1 MiB is over the limit of 64 KiB for one value.
        else if (kind !== "wide") {
          assert.equal(r.status, 413);
          assert.match(r.text, /over the limit of 64 KiB for one value/);
        } else assert.equal(r.status, 204, r.text);
      } finally {
        await dropAllTx();
      }
    }),
    runs(16),
  );
});

test("PATCH /settings/keypair with random key paths and values: no 5xx, 4xx changes nothing, accepted pairs commit whole", async () => {
  const validPair = fc.oneof(
    anyString.map((v) => `motd=${v}`),
    fc.integer({ min: 0, max: 2047 }).map((n) => `settings.updates.seed=${n}`),
    fc.boolean().map((b) => `updates.ignore-waves=${b}`),
    fc.constantFrom("none", "integrity", "confidentiality").map((v) => `settings.kernel.lockdown=${v}`),
    fc.tuple(fc.stringMatching(/^[a-z0-9_]{1,6}(\.[a-z0-9_-]{1,6}){1,3}$/), anyString).map(([k, v]) => `settings.kernel.sysctl."${k}"=${v}`),
    fc.array(hostnameS, { maxLength: 3 }).map((hs) => `ntp.time-servers=${JSON.stringify(hs)}`),
    hostnameS.map((n) => `network.hostname=${n}`),
    fc.tuple(fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/), fc.boolean()).map(([m, b]) => `kernel.modules.${m}.allowed=${b}`),
    fc.tuple(fc.stringMatching(NAME), fc.boolean()).map(([n, b]) => `settings.host-containers.${n}.enabled=${b}`),
  );
  const pair = fc.oneof(
    { weight: 6, arbitrary: validPair },
    { weight: 3, arbitrary: fc.tuple(keyArb, valueText).map(([k, v]) => `${k}=${v}`) },
    // Values read as JSON (lists, tables) nested far past the depth limit.
    { weight: 1, arbitrary: fc.tuple(fc.constantFrom("ntp.time-servers", "dns.name-servers", "kernel.sysctl", "boot.kernel-parameters", "motd"), deepBody).map(([k, v]) => `${k}=${v}`) },
    { weight: 1, arbitrary: anyString },
  );
  const payload = fc.oneof(
    { weight: 6, arbitrary: fc.array(pair, { minLength: 1, maxLength: 3 }).map((ps) => JSON.stringify({ request_payload: ps })) },
    { weight: 1, arbitrary: fc.jsonValue().map((v) => JSON.stringify({ request_payload: v })) },
    { weight: 1, arbitrary: bodyArb },
  );
  await fc.assert(
    fc.asyncProperty(txArb, payload.filter((b) => !KNOWN_BUGS.text(b)), async (tx, body) => {
      try {
        const { r, after } = await probe("PATCH", `/settings/keypair${txQuery(tx)}`, body);
        if (r.status === 204) {
          const name = tx === "" ? "default" : tx;
          const pending = after.txs[name] as { [k: string]: Value };
          assert.ok(isObj(pending), "an accepted keypair PATCH leaves a pending transaction");
          const c = await api("POST", `/tx/commit${txQuery(tx)}`);
          checkAnswer(c, `commit of ${JSON.stringify(pending)}`);
          assert.equal(c.status, 200, c.text);
          const now = await state();
          assert.deepEqual(now.live, normal(merge(after.live as { [k: string]: Value }, pending)), "live = old live deep-merged with the pending transaction");
        }
      } finally {
        await dropAllTx();
      }
    }),
    runs(300),
  );
});

/** Query strings whose bytes, once percent-decoded, are not UTF-8 (URLSearchParams would make them U+FFFD). */
const NOT_UTF8 = ["%ff", "%c3", "settings.motd%80", "%ed%a0%80", "%f4%90%80%80", '%22%e9%22'];

test("GET /settings?keys=|prefix= and GET /?prefix= with random keys: no 5xx, nothing changes, answers are parts of the whole", async () => {
  const query = fc.oneof(
    { weight: 4, arbitrary: fc.array(keyArb, { minLength: 1, maxLength: 4 }).map((ks) => pct(ks.join(","))) },
    { weight: 1, arbitrary: printable.filter((s) => !s.includes("#")) },
    { weight: 1, arbitrary: fc.constantFrom("", "%", "%zz", "%00", ",", ",,", "settings,os", "%2C") },
    { weight: 1, arbitrary: fc.constantFrom(...NOT_UTF8) },
  );
  await fc.assert(
    fc.asyncProperty(fc.constantFrom("/settings?keys=", "/settings?prefix=", "/?prefix=", "/os?prefix=", "/services?prefix=", "/settings?keys=motd&prefix="), query, async (where, q) => {
      const target = where + q;
      fc.pre(!KNOWN_BUGS.target(target));
      const { r, before, after } = await probe("GET", target, undefined);
      assert.deepEqual(after, before, "a GET changes nothing");
      if (NOT_UTF8.includes(q)) assert.equal(r.status, 400, `${target}: ${r.text}`);
      if (r.status === 200 && where.startsWith("/settings")) assertSubtree(JSON.parse(r.text) as Value, before.live, target);
      if (r.status === 200 && where === "/?prefix=") {
        const model = JSON.parse((await api("GET", "/")).text) as Value;
        assertSubtree(JSON.parse(r.text) as Value, model, target);
      }
    }),
    runs(300),
  );
});

test("commit, commit_and_apply and dry runs with random transaction names: no 5xx, 4xx changes nothing", async () => {
  const action = fc.constantFrom("/tx/commit", "/tx/commit_and_apply", "/tx/commit_and_apply?dry-run=true", "/tx/apply", "/tx", "/tx/list");
  await fc.assert(
    fc.asyncProperty(action, txArb, fc.boolean(), async (path, tx, seed) => {
      try {
        if (seed) await api("PATCH", `/settings${txQuery(tx)}`, '{"motd":"seeded"}');
        const q = txQuery(tx);
        const target = path.includes("?") ? `${path}${q.replace("?", "&")}` : `${path}${q}`;
        const method = path === "/tx" || path === "/tx/list" ? "GET" : "POST";
        const { r, before, after } = await probe(method, target, undefined);
        if (path.includes("dry-run") || method === "GET") assert.deepEqual(after, before, "a dry run or a GET changes nothing");
        const name = tx === "" ? "default" : tx;
        if ((path === "/tx/commit" || path === "/tx/commit_and_apply") && before.txs[name] === undefined) assert.ok(r.status === 400 || r.status === 422, `${target} with nothing pending → ${r.status}`);
      } finally {
        await dropAllTx();
      }
    }),
    runs(200),
  );
});

test("accepted PATCHes commit whole: live = old live deep-merged with every accepted patch, or 422 when none was", async () => {
  const patches = fc.array(fc.oneof({ weight: 5, arbitrary: validSettings.map(text) }, { weight: 1, arbitrary: nearlyValid.map(text) }, { weight: 1, arbitrary: bodyArb }), {
    minLength: 1,
    maxLength: 3,
  });
  const okTx = fc.oneof(fc.constantFrom("default", "p1", "a.b", "%x"), printable).filter((tx) => !KNOWN_BUGS.tx(tx));
  await fc.assert(
    fc.asyncProperty(okTx, patches.filter((ps) => !ps.some(KNOWN_BUGS.text)), fc.constantFrom("/tx/commit", "/tx/commit_and_apply"), async (tx, ps, commit) => {
      try {
        const start = await state();
        let pending: { [k: string]: Value } | undefined;
        for (const p of ps) {
          const r = await api("PATCH", `/settings?tx=${pct(tx)}`, p);
          checkAnswer(r, `PATCH ${p.slice(0, 300)}`);
          if (r.status === 204) pending = merge(pending ?? {}, JSON.parse(p) as { [k: string]: Value });
        }
        const c = await api("POST", `${commit}?tx=${pct(tx)}`);
        checkAnswer(c, `${commit} after ${JSON.stringify(ps).slice(0, 1000)}`);
        const end = await state();
        if (pending === undefined) {
          assert.equal(c.status, 422, c.text);
          assert.deepEqual(end, start);
          return;
        }
        assert.equal(c.status, 200, c.text);
        const changed = c.json();
        assert.ok(Array.isArray(changed) && changed.every((k) => typeof k === "string" && k.startsWith("settings.")), `changed keys: ${c.text}`);
        assert.deepEqual(end.live, normal(merge(start.live as { [k: string]: Value }, pending)), `live after ${commit} of ${JSON.stringify(ps)}`);
        assert.equal(end.txs[tx], undefined, "the committed transaction is gone");
      } finally {
        await dropAllTx();
      }
    }),
    runs(200),
  );
});

test("random request targets and methods: no 5xx, 4xx is JSON and changes nothing", async () => {
  const seg = fc.oneof(fc.constantFrom("", "settings", "tx", "commit", "keypair", "os", "metadata", "templates", "..", ".", "%2e", "%00", "?", "&", "=", "#"), printable);
  const target = fc.oneof(
    fc.array(seg, { minLength: 1, maxLength: 4 }).map((s) => "/" + s.join("/")),
    printable.map((s) => "/" + s),
    fc.constantFrom("/", "//", "///settings", "/settings/", "/settings?", "/settings?tx", "/tx?tx=", "/?", "/#x", "/settings?keys", "/metadata/templates?keys=", "*"),
  );
  const method = fc.constantFrom("GET", "POST", "PATCH", "DELETE", "PUT", "OPTIONS");
  await fc.assert(
    fc.asyncProperty(method, target, fc.option(bodyArb.filter((b) => !KNOWN_BUGS.text(b)), { nil: undefined }), async (m, t, body) => {
      fc.pre(!KNOWN_BUGS.target(t));
      try {
        await probe(m, t, body);
      } finally {
        await dropAllTx();
      }
    }),
    runs(300),
  );
});

// ---- server bugs found by the properties above (todo until fixed; CAISSON_PROPERTY_STRICT=1 runs them for real) ----

const todo = (why: string) => (STRICT ? {} : { todo: why });

test("regression: a setting named like an Object.prototype property is a 400, not a 500", todo("bug 1: child() in src/settings/model.ts looks names up as properties[seg], which finds Object.prototype members"), async () => {
  for (const body of ['{"__proto__":1}', '{"constructor":1}', '{"kernel":{"toString":"x"}}', '{"network":{"hasOwnProperty":"x"}}']) {
    const r = await api("PATCH", "/settings?tx=proto", body);
    assert.equal(r.status, 400, `PATCH ${body} → ${r.status} ${r.text}`);
  }
  const k = await api("PATCH", "/settings/keypair?tx=proto", JSON.stringify({ request_payload: ["constructor=1"] }));
  assert.equal(k.status, 400, `keypair constructor=1 → ${k.status} ${k.text}`);
  await dropAllTx();
});

test("regression: names that would reach a prototype (__proto__, constructor) are refused with a 400 and change nothing", async () => {
  try {
    assert.equal((await api("PATCH", "/settings?tx=pr", '{"kernel":{"modules":{"m1":{"allowed":false}}}}')).status, 204);
    assert.equal((await api("POST", "/tx/commit?tx=pr")).status, 200);
    const before = (await api("GET", "/settings")).text;
    for (const body of ['{"kernel":{"modules":{"__proto__":{"allowed":true}}}}', '{"boot":{"kernel-parameters":{"constructor":["2"]}}}', '{"__proto__":{"motd":"x"}}']) {
      const r = await api("PATCH", "/settings?tx=pr2", body);
      assert.equal(r.status, 400, `${body} → ${r.status} ${r.text}`);
      assert.match((JSON.parse(r.text) as { message: string }).message, /unknown setting/);
    }
    assert.equal((await api("GET", "/settings")).text, before);
    assert.deepEqual(JSON.parse((await api("GET", "/tx/list")).text), []);
  } finally {
    await dropAllTx();
  }
});

test("regression: a 128-character transaction name is refused with a 400 (names are at most 64 characters, so files fit NAME_MAX)", todo("bug 3: the percent-encoded pending file name can exceed 255 bytes → ENAMETOOLONG → 500"), async () => {
  try {
    const tx = '"'.repeat(128);
    const r = await api("PATCH", `/settings?tx=${pct(tx)}`, '{"motd":"long tx"}');
    assert.equal(r.status, 400, `PATCH with a 128-character tx name → ${r.status} ${r.text.slice(0, 200)}`);
    const r64 = await api("PATCH", `/settings?tx=${pct('"'.repeat(64))}`, '{"motd":"long tx"}');
    assert.equal(r64.status, 204, r64.text);
    assert.equal((await api("POST", `/tx/commit?tx=${pct('"'.repeat(64))}`)).status, 200);
  } finally {
    await dropAllTx();
  }
});

test("regression: a request target the URL parser rejects is a 400, not a 500", todo("bug 4: new URL(req.url, base) throws for targets like //[ and the error becomes a 500"), async () => {
  const r = await api("GET", "//[");
  checkAnswer(r, "GET //[");
});

test("regression: certificate data that is base64 but not UTF-8 is refused at PATCH, not committed and then failed at apply", todo("bug 5: the schema takes any base64; ca-bundle.hbs's base64_decode needs UTF-8 → 500 after the commit"), async () => {
  try {
    const r = await api("PATCH", "/settings?tx=pki", '{"pki":{"bad":{"data":"/w==","trusted":true}}}');
    assert.equal(r.status, 400, `PATCH of non-UTF-8 certificate data → ${r.status} ${r.text}`);
  } finally {
    await dropAllTx();
  }
});
