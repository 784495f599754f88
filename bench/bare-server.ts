// The API benchmark's baseline: a bare node:http server on a Unix socket doing the least work that
// answers the same requests with the same bytes and the same durability as the host daemon.
//
//   GET  /settings                      the live settings JSON (initially the daemon's exact bytes)
//   PATCH /settings?tx=T                keep the parsed body in memory (merged per tx); 204
//   POST /tx/commit_and_apply?tx=T      merge into live, durably write live.json as the datastore
//                                       does (temp file + fsync + rename + directory fsync, same
//                                       document shape, so the same size); 200 with the keys
//
// Usage: node dist/bench/bare-server.js --socket PATH --settings FILE --dir DIR --datastore-version V
// Prints "ready" on stdout once listening.
import { createServer } from "node:http";
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, existsSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const { values } = parseArgs({
  options: {
    socket: { type: "string" },
    settings: { type: "string" },
    dir: { type: "string" },
    "datastore-version": { type: "string" },
  },
});
const socket = values.socket!;
const dir = values.dir!;
const version = values["datastore-version"]!;

let liveJson: string | undefined = readFileSync(values.settings!, "utf8");
let live = JSON.parse(liveJson) as JsonObject;
const pending = new Map<string, JsonObject>();

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

function merge(base: JsonObject, patch: JsonObject): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? merge(b, v) : v;
  }
  return out;
}

function leafKeys(tree: JsonObject, prefix: string): string[] {
  return Object.entries(tree).flatMap(([k, v]) => (isObject(v) ? leafKeys(v, `${prefix}.${k}`) : [`${prefix}.${k}`]));
}

function durableWrite(path: string, data: string): void {
  const tmp = join(dir, `.live.json.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  const fd = openSync(tmp, "w", 0o644);
  const buf = Buffer.from(data);
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
  const dfd = openSync(dir, "r");
  fsyncSync(dfd);
  closeSync(dfd);
}

function send(res: import("node:http").ServerResponse, status: number, body?: string): void {
  if (body === undefined) res.writeHead(status).end();
  else res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) }).end(body);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    const tx = new URLSearchParams(q < 0 ? "" : url.slice(q + 1)).get("tx") || "default";
    if (path === "/settings" && req.method === "GET") return send(res, 200, (liveJson ??= JSON.stringify(live)));
    if (path === "/settings" && req.method === "PATCH") {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as JsonObject;
      pending.set(tx, merge(pending.get(tx) ?? {}, body));
      return send(res, 204);
    }
    if (path === "/tx/commit_and_apply" && req.method === "POST") {
      const p = pending.get(tx);
      if (!p) return send(res, 422, JSON.stringify({ message: `transaction '${tx}' has no pending settings to commit` }));
      const settings = merge(live, p);
      const doc = { "datastore-version": version, settings, "last-commit": { tx, id: randomBytes(12).toString("hex") } };
      durableWrite(join(dir, "live.json"), JSON.stringify(doc));
      live = settings;
      liveJson = undefined;
      pending.delete(tx);
      return send(res, 200, JSON.stringify(leafKeys(p, "settings").sort()));
    }
    send(res, 404, JSON.stringify({ message: `no such path: ${path}` }));
  });
});

if (existsSync(socket)) unlinkSync(socket);
server.listen(socket, () => process.stdout.write("ready\n"));
const stop = () => server.close(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
