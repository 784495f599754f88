// Handlebars helpers available to templates: a subset of Bottlerocket's schnauzer helpers, same
// names and arguments. Absent values (undefined/null) render empty or the default, so a missing
// setting never breaks a file; values of the wrong shape throw an error naming the helper, since
// rendering them would write a broken file. Errors never quote the value: it may be a secret.
import type Handlebars from "handlebars";
import { isIP } from "node:net";
import { pemCertificates, withProxyScheme } from "../settings/schema.js";

type Options = Handlebars.HelperOptions;

export class HelperError extends Error {}

const absent = (v: unknown): v is null | undefined => v === undefined || v === null;
const kind = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "a list" : typeof v === "object" ? "a table" : typeof v);

/** Split Handlebars' trailing options argument off and check the argument count. */
function args(name: string, raw: unknown[], count: number): { a: unknown[]; options: Options } {
  const options = raw[raw.length - 1] as Options;
  const a = raw.slice(0, -1);
  if (a.length !== count) throw new HelperError(`${name}: expected ${count} argument(s), got ${a.length}`);
  return { a, options };
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/**
 * A TOML basic string (JSON escapes are TOML escapes, except DEL, which TOML wants escaped). A lone
 * surrogate has no TOML form (JSON.stringify would write \udXXX, which TOML forbids): refused.
 */
export function tomlString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new HelperError("toml: a string is not well-formed Unicode (lone UTF-16 surrogate)");
  return JSON.stringify(s).replace(/\x7f/g, "\\u007f");
}

/**
 * The inside of a double-quoted value of a systemd EnvironmentFile= (systemd.exec(5)): backslash
 * before each of " \ ` $, the characters systemd unescapes there. A line break cannot be held (a
 * backslash-newline is a continuation), nor any other control character: refused.
 */
export function envEscape(v: unknown, helper = "env_escape"): string {
  if (absent(v)) return "";
  if (typeof v !== "string") throw new HelperError(`${helper}: expected a string, got ${kind(v)}`);
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (/[\x00-\x1f\x7f]/.test(v) || LONE_SURROGATE.test(v)) throw new HelperError(`${helper}: value holds a control character or is not well-formed Unicode`);
  return v.replace(/["\\`$]/g, "\\$&");
}

/**
 * A proxy URL as written for its readers: scheme, credentials and host:port only, as the WHATWG
 * parser normalises them (so quotes, backslashes and spaces in credentials are percent-encoded),
 * with $ and ' in the credentials encoded too, so that no reader of an environment file (systemd,
 * environment.d, a shell) can expand or unquote them. Proxy clients decode the credentials.
 */
export function proxyUrl(raw: unknown): string {
  if (absent(raw)) return "";
  const v = typeof raw === "string" ? withProxyScheme(raw) : raw;
  if (typeof v !== "string" || !URL.canParse(v)) throw new HelperError("proxy_url: expected an absolute URL");
  const u = new URL(v);
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new HelperError("proxy_url: expected an http or https URL");
  const enc = (s: string) => s.replace(/\$/g, "%24").replace(/'/g, "%27");
  const cred = u.username || u.password ? `${enc(u.username)}${u.password ? ":" + enc(u.password) : ""}@` : "";
  return `${u.protocol}//${cred}${u.host}`;
}

/** A word of a line-oriented file (chrony, sysctl keys, module names, the hostname): printable ASCII, no spaces. */
export function token(v: unknown, helper = "token"): string {
  if (absent(v)) return "";
  if (typeof v !== "string" || !/^[\x21-\x7e]+$/.test(v) || /^[#;!]/.test(v)) throw new HelperError(`${helper}: expected one word of printable ASCII`);
  return v;
}

/** One line of text with no control characters and no space at either end (sysctl values). */
export function singleLine(v: unknown, helper = "single_line"): string {
  if (absent(v)) return "";
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (typeof v !== "string" || /[\x00-\x1f\x7f-\x9f]/.test(v) || LONE_SURROGATE.test(v) || /^ | $/.test(v)) {
    throw new HelperError(`${helper}: expected one line of text without control characters or surrounding spaces`);
  }
  return v;
}

/** Text (the motd): tabs and newlines, no other control character, well-formed Unicode. */
export function text(v: unknown, helper = "text"): string {
  if (absent(v)) return "";
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  if (typeof v !== "string" || /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(v) || LONE_SURROGATE.test(v)) {
    throw new HelperError(`${helper}: expected text without control characters other than tab and newline`);
  }
  return v;
}

/** Any JSON value as a TOML value (inline arrays and tables); absent renders empty. */
export function tomlEncode(v: unknown): string {
  if (absent(v)) return "";
  if (typeof v === "string") return tomlString(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return `[${v.map(tomlEncode).join(", ")}]`;
  if (typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => !absent(x));
    const key = (k: string) => (/^[A-Za-z0-9_-]+$/.test(k) ? k : tomlString(k));
    return entries.length ? `{ ${entries.map(([k, x]) => `${key(k)} = ${tomlEncode(x)}`).join(", ")} }` : "{}";
  }
  throw new HelperError(`toml_encode: cannot encode ${kind(v)}`);
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Strict base64 → UTF-8 text (Buffer.from alone silently skips bad characters). */
export function base64Decode(v: unknown): string {
  if (absent(v)) return "";
  if (typeof v !== "string") throw new HelperError(`base64_decode: expected a base64 string, got ${kind(v)}`);
  const compact = v.replace(/\s/g, "");
  if (!BASE64.test(compact) || compact.length % 4 !== 0) throw new HelperError(`base64_decode: value is not valid base64 (${v.length} characters)`);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(compact, "base64"));
  } catch {
    throw new HelperError("base64_decode: decoded value is not valid UTF-8 text");
  }
}

function canonicalIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1); // compresses 0:0:...:1 to ::1
  } catch {
    return ip;
  }
}

/** settings.network.hosts ([address, [names]] pairs) merged by address, in first-seen order. */
export function mergeHosts(v: unknown, helper: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (absent(v)) return out;
  if (!Array.isArray(v)) throw new HelperError(`${helper}: expected a list of [address, [names...]], got ${kind(v)}`);
  for (const entry of v) {
    if (!Array.isArray(entry) || typeof entry[0] !== "string" || !Array.isArray(entry[1]) || !entry[1].every((n) => typeof n === "string")) {
      throw new HelperError(`${helper}: each hosts entry must be [address, [names...]]`);
    }
    const ip = canonicalIp(token(entry[0], helper));
    const names = out.get(ip) ?? [];
    for (const n of entry[1] as string[]) if (!names.includes(token(n, helper))) names.push(n);
    out.set(ip, names);
  }
  return out;
}

/**
 * Base64 PEM certificates as a bundle for OpenSSL: only the certificates, each parsed (node:crypto)
 * and re-encoded, each ending in a newline. Anything else (junk around a block, another block,
 * an unparseable certificate) is refused: concatenated into the trust store, it would make OpenSSL
 * reject the whole bundle.
 */
export function pemCertificateBundle(v: unknown): string {
  if (absent(v)) return "";
  const certs = pemCertificates(base64Decode(v).replace(/^\uFEFF/, ""));
  if (!certs) throw new HelperError("pem_certificates: value is not only PEM CERTIFICATE blocks that parse as X.509 certificates");
  return certs.map((c) => c.replace(/\n*$/, "\n")).join("");
}

const LOOPBACK = { ipv4: "127.0.0.1", ipv6: "::1" } as const;

export function registerHelpers(hb: typeof Handlebars): void {
  // `{{join_array ", " list}}` → "a", "b" (quoted, as schnauzer; for TOML arrays).
  hb.registerHelper("join_array", (...raw: unknown[]) => {
    const [sep, list] = args("join_array", raw, 2).a;
    if (absent(list)) return "";
    if (typeof sep !== "string" || !Array.isArray(list)) throw new HelperError(`join_array: expected a separator and a list, got ${kind(list)}`);
    return list
      .map((x) => {
        if (typeof x !== "string") throw new HelperError(`join_array: list items must be strings, got ${kind(x)}`);
        return tomlString(x);
      })
      .join(sep);
  });

  // `{{default "x" value}}`: the value when set, else the default. Scalars only, as schnauzer.
  hb.registerHelper("default", (...raw: unknown[]) => {
    const [def, value] = args("default", raw, 2).a;
    if (absent(def) || typeof def === "object") throw new HelperError("default: the default must be a non-null scalar");
    if (absent(value)) return def;
    if (typeof value === "object") throw new HelperError(`default: expected a scalar value, got ${kind(value)}`);
    return value;
  });

  hb.registerHelper("base64_decode", (...raw: unknown[]) => base64Decode(args("base64_decode", raw, 1).a[0]));
  hb.registerHelper("toml_encode", (...raw: unknown[]) => tomlEncode(args("toml_encode", raw, 1).a[0]));
  hb.registerHelper("env_escape", (...raw: unknown[]) => envEscape(args("env_escape", raw, 1).a[0]));
  hb.registerHelper("proxy_url", (...raw: unknown[]) => proxyUrl(args("proxy_url", raw, 1).a[0]));
  hb.registerHelper("token", (...raw: unknown[]) => token(args("token", raw, 1).a[0]));
  hb.registerHelper("single_line", (...raw: unknown[]) => singleLine(args("single_line", raw, 1).a[0]));
  hb.registerHelper("text", (...raw: unknown[]) => text(args("text", raw, 1).a[0]));
  hb.registerHelper("pem_certificates", (...raw: unknown[]) => pemCertificateBundle(args("pem_certificates", raw, 1).a[0]));

  // Text with exactly one final newline (empty stays empty): concatenated PEM bundles stay parseable.
  hb.registerHelper("ensure_newline", (...raw: unknown[]) => {
    const v = args("ensure_newline", raw, 1).a[0];
    if (absent(v) || v === "") return "";
    if (typeof v !== "string") throw new HelperError(`ensure_newline: expected a string, got ${kind(v)}`);
    return v.replace(/\n*$/, "\n");
  });

  // `{{host url}}`: the host name of a URL (for no_proxy lists).
  hb.registerHelper("host", (...raw: unknown[]) => {
    const v = args("host", raw, 1).a[0];
    if (absent(v)) return "";
    if (typeof v !== "string" || !URL.canParse(v)) throw new HelperError("host: expected an absolute URL");
    return new URL(v).hostname;
  });

  // /etc/hosts lines for non-loopback addresses, repeated addresses merged; each line ends in "\n".
  hb.registerHelper("etc_hosts_entries", (...raw: unknown[]) => {
    const hosts = mergeHosts(args("etc_hosts_entries", raw, 1).a[0], "etc_hosts_entries");
    let out = "";
    for (const [ip, names] of hosts) if (ip !== LOOPBACK.ipv4 && ip !== LOOPBACK.ipv6) out += `${ip} ${names.join(" ")}\n`;
    return out;
  });

  // Aliases for a localhost line: the hostname unless a hosts entry already names it (schnauzer
  // also tries DNS; we stay offline and deterministic), then the hosts entries' loopback names.
  hb.registerHelper("localhost_aliases", (...raw: unknown[]) => {
    const [version, hostname, hostsValue] = args("localhost_aliases", raw, 3).a;
    if (version !== "ipv4" && version !== "ipv6") throw new HelperError('localhost_aliases: first argument must be "ipv4" or "ipv6"');
    if (!absent(hostname) && typeof hostname !== "string") throw new HelperError(`localhost_aliases: hostname must be a string, got ${kind(hostname)}`);
    const hosts = mergeHosts(hostsValue, "localhost_aliases");
    const out: string[] = [];
    if (hostname && ![...hosts.values()].some((names) => names.includes(hostname))) out.push(hostname);
    out.push(...(hosts.get(LOOPBACK[version]) ?? []));
    return out.join(" ");
  });

  hb.registerHelper("eq", (...raw: unknown[]) => {
    const [a, b] = args("eq", raw, 2).a;
    return a === b;
  });

  // `{{#if_not_null x}}`: as #if, but false, 0 and "" count as set.
  hb.registerHelper("if_not_null", function (this: unknown, ...raw: unknown[]) {
    const { a, options } = args("if_not_null", raw, 1);
    return absent(a[0]) ? options.inverse(this) : options.fn(this);
  });

  // Type tests, usable as subexpressions `(is_array x)` or blocks `{{#is_array x}}…{{else}}…{{/is_array}}`.
  const predicates: Record<string, (v: unknown) => boolean> = {
    is_null: absent,
    is_bool: (v) => typeof v === "boolean",
    is_number: (v) => typeof v === "number",
    is_string: (v) => typeof v === "string",
    is_array: Array.isArray,
    is_object: (v) => typeof v === "object" && v !== null && !Array.isArray(v),
  };
  for (const [name, test] of Object.entries(predicates)) {
    hb.registerHelper(name, function (this: unknown, ...raw: unknown[]) {
      const { a, options } = args(name, raw, 1);
      const r = test(a[0]);
      if (typeof options.fn !== "function") return r;
      return r ? options.fn(this) : options.inverse(this);
    });
  }
}
