// Certificates for a launched host's network API (mutual TLS): one CA per instance signs the
// host's server certificate and the workstation's client certificate. Made with the openssl CLI on
// the workstation (Node has no certificate-making API); private keys stay in files of mode 0600.
import { mkdirSync, readFileSync, writeFileSync, chmodSync, existsSync } from "node:fs";
import { join } from "node:path";
import { run } from "../image/run.js";

export interface InstanceTls {
  dir: string;
  ca: string;
  clientCert: string;
  clientKey: string;
  serverCert: string;
  serverKey: string;
}

/** Where an instance's certificates and keys live. */
export function instanceTlsPaths(dir: string): InstanceTls {
  const p = (f: string) => join(dir, f);
  return { dir, ca: p("ca.pem"), clientCert: p("client.pem"), clientKey: p("client-key.pem"), serverCert: p("server.pem"), serverKey: p("server-key.pem") };
}

export async function makeInstanceTls(dir: string, name: string): Promise<InstanceTls> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const p = (f: string) => join(dir, f);
  const t = instanceTlsPaths(dir);
  if (existsSync(t.clientKey)) return t;
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await run("openssl", ["req", "-x509", ...ec, "-keyout", p("ca-key.pem"), "-out", t.ca, "-days", "3650", "-subj", `/CN=caisson launch CA for ${name}`]);
  for (const [who, cn, ext] of [
    ["server", name, `subjectAltName=DNS:${name},DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`],
    ["client", "caisson-admin", "extendedKeyUsage=clientAuth\n"],
  ] as const) {
    const key = who === "server" ? t.serverKey : t.clientKey;
    const cert = who === "server" ? t.serverCert : t.clientCert;
    await run("openssl", ["req", "-new", ...ec, "-keyout", key, "-out", p(`${who}.csr`), "-subj", `/CN=${cn}`]);
    writeFileSync(p(`${who}.ext`), ext);
    await run("openssl", ["x509", "-req", "-in", p(`${who}.csr`), "-CA", t.ca, "-CAkey", p("ca-key.pem"), "-CAcreateserial", "-out", cert, "-days", "825", "-extfile", p(`${who}.ext`)]);
  }
  for (const f of [t.serverKey, t.clientKey, p("ca-key.pem")]) chmodSync(f, 0o600);
  return t;
}

/** The user data that hands the host its network API certificates (TOML, [settings.api.network]). */
export function launchUserData(t: InstanceTls, port: number): string {
  const b64 = (f: string) => readFileSync(f).toString("base64");
  return [
    "# Written by caisson launch: the network API's certificates (mutual TLS).",
    "[settings.api.network]",
    "enabled = true",
    `port = ${port}`,
    `server-certificate = "${b64(t.serverCert)}"`,
    `server-key = "${b64(t.serverKey)}"`,
    `client-ca = "${b64(t.ca)}"`,
    "",
  ].join("\n");
}
