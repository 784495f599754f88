// The settings model: one TypeBox schema per variant is the single source of truth for the
// settings' types, validation, defaults (per variant), generators, secrecy and the generated
// reference in docs/settings.md. Names and shapes follow Bottlerocket's so its user data carries over.
//
// Every setting is optional in the schema: a PATCH carries part of the tree, and defaults and
// generators fill the rest. Extra schema keywords we read ourselves:
//   default             value in every variant
//   x-variant-defaults  { <variant>: value } overriding `default` for one variant
//   x-generator         name of a setting generator run at boot when the key is absent
//   x-secret            value is redacted in logs and support dumps
import { Kind, Type, TypeRegistry, FormatRegistry, type Static, type TOptional, type TProperties, type TSchema, type TObject } from "@sinclair/typebox";
import { isIP } from "node:net";
import { X509Certificate } from "node:crypto";

export const VARIANTS = ["dev", "k8s"] as const;
export type Variant = (typeof VARIANTS)[number];

export function isVariant(v: string): v is Variant {
  return (VARIANTS as readonly string[]).includes(v);
}

/** Wave seeds are in [0, MAX_SEED), as Bottlerocket's (the update manifest's waves count in them). */
export const MAX_SEED = 2048;
/** The network API's port when settings.api.network.port is not set. */
export const DEFAULT_NETWORK_API_PORT = 8443;

// Formats are registered once; TypeBox checks them on string schemas with `format`. Each checks a
// value by its meaning (what reads it), not just its shape: every value a format accepts must
// render into every file that uses it without breaking that file's syntax.
FormatRegistry.Set("ip", (v) => isIP(v) !== 0);
const LABEL = "[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?";
const DOMAIN_RE = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
/** A DNS name by RFC 1123: labels of 1-63 letters, digits and inner hyphens, 253 characters in all. */
export const isDomain = (v: string) => v.length <= 253 && DOMAIN_RE.test(v);
// A Linux host name: a DNS name that also fits the kernel's 64-byte limit (HOST_NAME_MAX), which
// sethostname(2), hostname(1) and systemd-hostnamed enforce.
FormatRegistry.Set("hostname", (v) => v.length <= 64 && isDomain(v));
FormatRegistry.Set("domain", isDomain);
// A server: a DNS name or an IP address.
FormatRegistry.Set("host", (v) => isDomain(v) || isIP(v) !== 0);

/** The URL, if v is an absolute http(s) URL whose host is a DNS name or an IP address, else undefined. */
function httpUrl(v: string): URL | undefined {
  // URL.canParse drops tabs and newlines silently and lets quotes and backslashes through in a host:
  // the text itself must be plain printable ASCII with nothing the parser would repair.
  if (!/^https?:\/\/[\x21-\x5b\x5d-\x7e]+$/i.test(v) || !URL.canParse(v)) return undefined;
  const u = new URL(v);
  if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  return isIP(host) !== 0 || isDomain(host) ? u : undefined;
}
FormatRegistry.Set("url", (v) => httpUrl(v) !== undefined);
/**
 * A proxy as users write it: an http(s) URL, or host:port with no scheme, which Bottlerocket's
 * Url type accepts too ("without a scheme because it's common"); then it is http.
 */
export function withProxyScheme(v: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(v) ? v : `http://${v}`;
}
// A proxy: an http(s) URL naming a host, a port and maybe credentials; nothing after the host.
FormatRegistry.Set("proxy-url", (raw) => {
  const v = withProxyScheme(raw);
  const u = httpUrl(v);
  return u !== undefined && (u.pathname === "/" || u.pathname === "") && !/^https?:\/\/[^/]*\/./i.test(v) && !v.includes("?") && !v.includes("#");
});
// A NO_PROXY entry as Go's and curl's proxy code read it: "*", an IP address, a CIDR block, or a
// DNS name (a leading "." or "*." matches subdomains), optionally with a port.
FormatRegistry.Set("no-proxy", (v) => {
  if (v === "*" || isIP(v) !== 0) return true;
  const cidr = /^(.+)\/(\d{1,3})$/.exec(v);
  if (cidr) return isIP(cidr[1]!) !== 0 && Number(cidr[2]) <= (isIP(cidr[1]!) === 4 ? 32 : 128);
  const m = /^(\*?\.)?(.+?)(:\d{1,5})?$/.exec(v);
  return !!m && (isDomain(m[2]!) || isIP(m[2]!) === 4) && (!m[3] || Number(m[3].slice(1)) <= 65535);
});

// A registry as containerd names it in its configuration: host[:port] (an IPv6 address in
// brackets), or "*" for every registry. containerd's TOML parser (go-toml v1) cannot read a quoted
// key holding an escaped quote, so a name must never need one.
FormatRegistry.Set("registry", (v) => {
  if (v === "*") return true;
  const m = /^(\[([0-9A-Fa-f:.]+)\]|[^:[\]]+)(:\d{1,5})?$/.exec(v);
  if (!m || (m[3] && Number(m[3].slice(1)) > 65535)) return false;
  return m[2] !== undefined ? isIP(m[2]) === 6 : isDomain(m[1]!) || isIP(m[1]!) === 4;
});

const isBase64 = (v: string) => /^[A-Za-z0-9+/\r\n]*={0,2}$/.test(v) && v.replace(/\s/g, "").length % 4 === 0;
FormatRegistry.Set("base64", isBase64);

/**
 * The PEM blocks of a text, or undefined unless the text is only PEM blocks (whitespace between
 * them): junk around a block makes OpenSSL reject a whole bundle it is concatenated into.
 */
export function pemBlocks(text: string): { label: string; pem: string }[] | undefined {
  const re = /-----BEGIN ([A-Z0-9]+(?: [A-Z0-9]+)*)-----\r?\n((?:[A-Za-z0-9+/=]+\r?\n)*)-----END \1-----(?:\r?\n|$)/y;
  const out: { label: string; pem: string }[] = [];
  let i = 0;
  for (;;) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i === text.length) return out.length ? out : undefined;
    re.lastIndex = i;
    const m = re.exec(text);
    if (!m || !isBase64(m[2]!.replace(/\s/g, "")) || m[2]!.trim() === "") return undefined;
    out.push({ label: m[1]!, pem: m[0].replace(/\r/g, "").replace(/\n?$/, "\n") });
    i = re.lastIndex;
  }
}

const decodeUtf8 = (v: string): string | undefined => {
  if (!isBase64(v)) return undefined;
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(v, "base64"));
  } catch {
    return undefined;
  }
};

// Base64 of PEM text (only PEM blocks): what key settings hold.
FormatRegistry.Set("base64-pem", (v) => {
  const text = decodeUtf8(v);
  return text !== undefined && pemBlocks(text) !== undefined;
});

/** The certificates of a PEM text, re-encoded, or undefined unless it is only parseable CERTIFICATE blocks. */
export function pemCertificates(text: string): string[] | undefined {
  const blocks = pemBlocks(text);
  if (!blocks || blocks.some((b) => b.label !== "CERTIFICATE")) return undefined;
  try {
    return blocks.map((b) => new X509Certificate(b.pem).toString());
  } catch {
    return undefined;
  }
}
// Base64 of PEM certificates, each parsed, checked here so that a value that would break the trust
// store (or the API's TLS) is refused when it is set.
FormatRegistry.Set("base64-pem-certificates", (v) => {
  const text = decodeUtf8(v);
  return text !== undefined && pemCertificates(text) !== undefined;
});

const opt = <T extends TSchema>(s: T) => Type.Optional(s);
// Generic, so that Static<> of a schema built from them is its settings' type (Settings, below).
const obj = <P extends TProperties>(props: P, options: Record<string, unknown> = {}) =>
  Type.Object(
    Object.fromEntries(Object.entries(props).map(([k, v]) => [k, opt(v)])) as { [K in keyof P]: TOptional<P[K]> },
    { additionalProperties: false, ...options },
  );
const map = <V extends TSchema>(keyPattern: string, value: V, options: Record<string, unknown> = {}) =>
  Type.Record(Type.String({ pattern: keyPattern }), value, { additionalProperties: false, ...options });

// Strings that end up in configuration files must not carry newlines or control characters (a
// newline in a sysctl value or a proxy URL would inject a line into the file; no format can hold a
// NUL). C1 controls are refused too: they are terminal escapes, not text. Every string of every
// setting must also be well-formed Unicode (no lone UTF-16 surrogate): model.ts checks that for all.
export const SINGLE_LINE = "^[^\\x00-\\x1f\\x7f-\\x9f]*$";
// Text of several lines (the motd): tabs and newlines, no other control characters.
export const MULTI_LINE = "^[^\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]*$";
const line = (options: Record<string, unknown> = {}) => Type.String({ pattern: SINGLE_LINE, ...options });
const str = (description: string, options: Record<string, unknown> = {}) =>
  Type.String({ description, ...(options.pattern || options.format ? {} : { pattern: SINGLE_LINE }), ...options });
const bool = (description: string, options: Record<string, unknown> = {}) => Type.Boolean({ description, ...options });
const int = (description: string, options: Record<string, unknown> = {}) => Type.Integer({ description, ...options });
const list = <T extends TSchema>(item: T, description: string, options: Record<string, unknown> = {}) =>
  Type.Array(item, { description, ...options });

const NAME = "^[a-z0-9][a-z0-9_-]{0,62}$";
// chrony's `server` options (chrony.conf(5)): an unknown one, or a number where it wants none, makes
// chronyd refuse its whole configuration and not start.
const CHRONY_OPTION =
  "^((auto_offline|burst|copy|iburst|noselect|nts|offline|prefer|require|trust|xleave)" +
  "|((certset|filter|key|maxpoll|maxsources|minpoll|minsamples|maxsamples|minstratum|ntsport|polltarget|port|version) -?[0-9]{1,4})" +
  "|((asymmetry|maxdelay|maxdelaydevratio|maxdelayratio|mindelay|offset|presend) -?[0-9]{1,4}(\\.[0-9]{1,6})?))$";
// A sysctl value: no control characters, and no space at either end (systemd-sysctl strips it).
const SYSCTL_VALUE = "^([^\\x00-\\x20\\x7f-\\x9f]([^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\x9f])?)?$";
const ip = Type.String({ format: "ip" });

const network = obj(
  {
    hostname: str("Host name (RFC 1123 labels, at most 64 characters); generated from the primary address (reverse DNS, else ip-a-b-c-d) when absent.", {
      format: "hostname",
      "x-generator": "hostname",
    }),
    hosts: list(Type.Tuple([ip, Type.Array(Type.String({ format: "domain" }), { minItems: 1 })]), "Static /etc/hosts entries: [address, [names...]]; repeated addresses are merged."),
    "https-proxy": str("HTTPS proxy for containerd and the update agent: an http(s) URL with a host, a port and maybe credentials, e.g. http://proxy.example:3128 (host:port alone means http).", { format: "proxy-url" }),
    "no-proxy": list(Type.String({ format: "no-proxy" }), "Hosts that bypass the proxy (names, .domains, addresses, CIDR blocks; * for all); localhost is always added."),
  },
  { description: "Network identity and proxies." },
);

const dns = obj(
  {
    "name-servers": list(ip, "DNS servers; when absent, the DHCP lease's servers are used.", { maxItems: 3 }),
    "search-list": list(Type.String({ format: "domain" }), "DNS search domains.", { maxItems: 6 }),
  },
  { description: "Name resolution." },
);

const ntp = obj(
  {
    "time-servers": list(Type.String({ format: "host" }), "NTP servers (names or addresses).", { default: ["pool.ntp.org"] }),
    options: list(Type.String({ pattern: CHRONY_OPTION }), "chrony server options, e.g. iburst, minpoll 4.", { default: ["iburst"] }),
  },
  { description: "Time synchronisation (chrony)." },
);

const kernel = obj(
  {
    sysctl: map("^[a-z0-9_]+([./][a-z0-9_*-]+)+$", Type.String({ pattern: SYSCTL_VALUE }), {
      description: 'Kernel parameters written to a sysctl drop-in, e.g. kernel.sysctl."vm.max_map_count" = "262144".',
    }),
    lockdown: Type.Union([Type.Literal("none"), Type.Literal("integrity"), Type.Literal("confidentiality")], {
      description: "Kernel lockdown mode; it can only be raised at runtime.",
      default: "integrity",
      "x-variant-defaults": { dev: "none" },
    }),
    modules: map(
      "^[A-Za-z0-9_-]+$",
      obj({
        allowed: bool("false blocks the module from loading."),
        autoload: bool("true loads the module at boot."),
      }),
      { description: "Kernel modules by name." },
    ),
  },
  { description: "Kernel configuration." },
);

const boot = obj(
  {
    "kernel-parameters": map("^[A-Za-z0-9_.-]+$", Type.Array(line()), {
      description: "Extra kernel command-line parameters (name → values); take effect at the next boot.",
    }),
    "init-parameters": map("^[A-Za-z0-9_.-]+$", Type.Array(line()), {
      description: "Extra init (systemd) parameters; take effect at the next boot.",
    }),
    "reboot-to-reconcile": bool("Reboot at boot when the boot parameters differ from the running ones.", { default: false }),
  },
  { description: "Boot configuration." },
);

const hostContainer = obj({
  source: str("Image reference of the container.", { minLength: 1 }),
  enabled: bool("Run the container."),
  superpowered: bool("Run privileged, with the host's namespaces."),
  "user-data": str("Base64 data handed to the container.", { format: "base64", "x-secret": true }),
});

const bootstrapContainer = obj({
  source: str("Image reference of the container.", { minLength: 1 }),
  mode: Type.Union([Type.Literal("off"), Type.Literal("once"), Type.Literal("always")], { description: "off, once (first boot only) or always." }),
  essential: bool("Fail the boot when the container fails."),
  "user-data": str("Base64 data handed to the container.", { format: "base64", "x-secret": true }),
});

// An apiclient invocation as Bottlerocket's bootstrap commands hold one: ["apiclient", args...].
// (A custom kind: a JSON-schema tuple cannot say "first this, then any number of strings".)
const SINGLE_LINE_RE = new RegExp(SINGLE_LINE);
TypeRegistry.Set("ApiclientCommand", (_schema, v) =>
  Array.isArray(v) && v.length >= 2 && v.length <= 64 && v[0] === "apiclient" && v.every((a) => typeof a === "string" && a.length <= 4096 && SINGLE_LINE_RE.test(a)),
);
const apiclientCommand = Type.Unsafe<string[]>({ [Kind]: "ApiclientCommand", description: 'An apiclient invocation: ["apiclient", "set", "motd=hi"].' });

const bootstrapCommand = obj({
  commands: list(apiclientCommand, "apiclient invocations, run in order; the first that fails stops the rest.", { minItems: 1, maxItems: 32 }),
  mode: Type.Union([Type.Literal("off"), Type.Literal("once"), Type.Literal("always")], {
    description: "off, once (at the next start only: then set to off) or always (every start).",
  }),
  essential: bool("Fail the boot's health verdict when a command fails (a boot on trial then falls back)."),
});

const updates = obj(
  {
    "metadata-base-url": str("Base URL of the signed (TUF) update metadata.", { format: "url" }),
    "targets-base-url": str("Base URL of the update targets.", { format: "url" }),
    seed: int(`Wave seed in [0, ${MAX_SEED}); generated at first boot when absent.`, { minimum: 0, maximum: MAX_SEED - 1, "x-generator": "seed" }),
    "version-lock": str('"latest" or a version (1.2.3 or v1.2.3) to pin to.', {
      pattern: "^(latest|v?[0-9]+\\.[0-9]+\\.[0-9]+([-+][0-9A-Za-z.-]+)?)$",
      default: "latest",
    }),
    "ignore-waves": bool("Take updates as soon as they are published, ignoring waves.", { default: false }),
  },
  { description: "Update agent." },
);

const containerRegistry = obj(
  {
    mirrors: list(
      Type.Object({ registry: Type.String({ format: "registry" }), endpoint: Type.Array(Type.String({ format: "url" }), { minItems: 1 }) }, { additionalProperties: false }),
      "Registry mirrors: [{registry, endpoint: [urls]}].",
    ),
    credentials: list(
      Type.Object(
        {
          registry: Type.String({ format: "registry" }),
          username: Type.Optional(line()),
          password: Type.Optional(line({ "x-secret": true })),
          auth: Type.Optional(Type.String({ format: "base64", pattern: SINGLE_LINE, "x-secret": true })),
          identitytoken: Type.Optional(line({ "x-secret": true })),
        },
        { additionalProperties: false },
      ),
      "Registry credentials: [{registry, username, password | auth | identitytoken}].",
    ),
  },
  { description: "Container registries (also used for host and bootstrap container images)." },
);

const containerRuntime = obj(
  {
    "enable-unprivileged-icmp": bool("Allow unprivileged ICMP sockets in containers."),
    "enable-unprivileged-ports": bool("Allow unprivileged binds below port 1024 in containers."),
    "max-concurrent-downloads": int("Layers pulled at once.", { minimum: 1, default: 3 }),
    "max-container-log-line-size": int("Longest log line kept, in bytes; -1 for unlimited.", { minimum: -1, default: 16384 }),
  },
  { description: "containerd." },
);

const ociDefaults = obj(
  {
    capabilities: map("^[a-z][a-z-]*$", Type.Boolean(), { description: "Default Linux capabilities for containers, e.g. sys-admin = false." }),
    "resource-limits": map(
      "^[a-z][a-z-]*$",
      obj({
        "hard-limit": Type.Union([Type.Integer({ minimum: -1 }), Type.Literal("unlimited")]),
        "soft-limit": Type.Union([Type.Integer({ minimum: -1 }), Type.Literal("unlimited")]),
      }),
      { description: "Default rlimits for containers, e.g. max-open-files." },
    ),
  },
  { description: "Defaults of the OCI spec containers start with." },
);

const pki = map(
  NAME,
  obj({
    data: str("Base64 PEM certificate bundle: only CERTIFICATE blocks, each a parseable X.509 certificate.", { format: "base64-pem-certificates", minLength: 1 }),
    trusted: bool("Add the bundle to the trust store.", { default: false }),
  }),
  { description: "Certificate bundles by name." },
);

const kubernetes = obj(
  {
    "api-server": str("URL of the Kubernetes API server.", { format: "url" }),
    "cluster-certificate": str("Base64 CA certificate of the cluster.", { format: "base64-pem-certificates" }),
    "cluster-name": str("Cluster name.", { minLength: 1 }),
    "cluster-domain": str("Cluster DNS domain.", { format: "domain", default: "cluster.local" }),
    "cluster-dns-ip": Type.Union([ip, Type.Array(ip, { minItems: 1 })], { description: "Cluster DNS service address(es)." }),
    "bootstrap-token": str("Bootstrap token (abcdef.0123456789abcdef).", { pattern: "^[a-z0-9]{6}\\.[a-z0-9]{16}$", "x-secret": true }),
    "authentication-mode": Type.Union([Type.Literal("tls"), Type.Literal("aws")], { description: "How the kubelet authenticates.", default: "tls" }),
    "standalone-mode": bool("Run the kubelet without an API server.", { default: false }),
    "node-labels": map("^([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$", line({ maxLength: 63 }), { description: "Node labels." }),
    "node-taints": map("^([a-z0-9.-]+/)?[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9])?$", Type.Array(Type.String({ pattern: "^[^:]*:(NoSchedule|PreferNoSchedule|NoExecute)$" })), {
      description: "Node taints: key → [value:Effect].",
    }),
    "eviction-hard": map("^[a-z.]+$", line(), { description: "Hard eviction thresholds, e.g. memory.available = 100Mi." }),
    "eviction-soft": map("^[a-z.]+$", line(), { description: "Soft eviction thresholds." }),
    "system-reserved": map("^[a-z-]+$", line(), { description: "Resources reserved for the system, e.g. cpu = 100m." }),
    "kube-reserved": map("^[a-z-]+$", line(), { description: "Resources reserved for Kubernetes daemons." }),
    "max-pods": int("Most pods on the node.", { minimum: 1, default: 110 }),
    "pod-pids-limit": int("Most processes per pod.", { minimum: -1 }),
    "log-level": int("kubelet log verbosity.", { minimum: 0, maximum: 10, default: 2 }),
    "allowed-unsafe-sysctls": list(line(), "Unsafe sysctls pods may set."),
    "server-tls-bootstrap": bool("Request the kubelet's serving certificate from the cluster.", { default: true }),
    "server-certificate": str("Base64 serving certificate of the kubelet.", { format: "base64" }),
    "server-key": str("Base64 private key of the kubelet's serving certificate.", { format: "base64", "x-secret": true }),
    "container-log-max-size": str("Largest container log before rotation, e.g. 10Mi.", { pattern: "^[0-9]+(Ki|Mi|Gi)?$" }),
    "container-log-max-files": int("Rotated container logs kept.", { minimum: 2 }),
    "seccomp-default": bool("Use RuntimeDefault seccomp for all pods."),
    "static-pods": map(NAME, obj({ enabled: bool("Run the pod."), manifest: str("Base64 pod manifest.", { format: "base64" }) }), {
      description: "Static pods by name.",
    }),
  },
  { description: "Kubernetes (k8s variant)." },
);

const api = obj(
  {
    network: obj({
      enabled: bool("Serve the API on the network too, over mutual TLS (it is always on the Unix socket /run/api.sock).", {
        default: false,
        "x-variant-defaults": { dev: true },
      }),
      port: int("TCP port of the network API.", { minimum: 1, maximum: 65535, default: DEFAULT_NETWORK_API_PORT }),
      "server-certificate": str("Base64 PEM certificate (chain) the network API presents.", { format: "base64-pem-certificates" }),
      "server-key": str("Base64 PEM private key of the network API.", { format: "base64-pem", "x-secret": true }),
      "client-ca": str("Base64 PEM CA bundle; only clients with a certificate it signed are let in.", { format: "base64-pem-certificates" }),
    }),
  },
  { description: "The API itself." },
);

const commonSettings = {
  // The one multi-line setting: a message shown as is.
  motd: Type.String({ description: "Message of the day (/etc/motd): text; tabs and newlines but no other control characters.", pattern: MULTI_LINE, default: "Welcome to Caisson!" }),
  network,
  dns,
  ntp,
  kernel,
  boot,
  "host-containers": map(NAME, hostContainer, { description: "Host containers by name (admin, control, ...)." }),
  "bootstrap-containers": map(NAME, bootstrapContainer, { description: "Bootstrap containers by name, run before the host is configured." }),
  "bootstrap-commands": map(NAME, bootstrapCommand, { description: "apiclient commands by name, run in name order at each start before the health verdict (Bottlerocket's bootstrap commands)." }),
  updates,
  "container-registry": containerRegistry,
  "container-runtime": containerRuntime,
  "oci-defaults": ociDefaults,
  pki,
  api,
};

/** The live settings tree (under `settings`) as code reads it, derived from the schema (kubernetes: k8s only). */
export type Settings = Static<ReturnType<typeof obj<typeof commonSettings & { kubernetes: typeof kubernetes }>>>;

/** A live settings tree, typed: it was validated against its variant's schema before it became live. */
export const asSettings = (tree: object): Settings => tree as Settings;

function settingsSchema(variant: Variant): TObject {
  const common: Record<string, TSchema> = { ...commonSettings };
  if (variant === "k8s") common.kubernetes = kubernetes;
  return obj(common, { description: `Settings of the ${variant} variant.` });
}

const cache = new Map<Variant, TObject>();
export function schemaFor(variant: Variant): TObject {
  let s = cache.get(variant);
  if (!s) cache.set(variant, (s = settingsSchema(variant)));
  return s;
}
