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
import { Type, FormatRegistry, type TSchema, type TObject } from "@sinclair/typebox";
import { isIP } from "node:net";

export const VARIANTS = ["dev", "k8s"] as const;
export type Variant = (typeof VARIANTS)[number];

export function isVariant(v: string): v is Variant {
  return (VARIANTS as readonly string[]).includes(v);
}

// Formats are registered once; TypeBox checks them on string schemas with `format`.
FormatRegistry.Set("ip", (v) => isIP(v) !== 0);
FormatRegistry.Set("hostname", (v) => /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(v));
// URL.canParse drops tabs and newlines silently; a URL setting must not carry them into a file.
FormatRegistry.Set("url", (v) => URL.canParse(v) && /^[a-z][a-z0-9+.-]*:\/\/[^\s]*$/i.test(v));
const isBase64 = (v: string) => /^[A-Za-z0-9+/\r\n]*={0,2}$/.test(v) && v.replace(/\s/g, "").length % 4 === 0;
FormatRegistry.Set("base64", isBase64);
// Base64 of PEM text: what certificate settings hold, checked here so that a value that would
// break rendering of the trust store later is refused when it is set.
FormatRegistry.Set("base64-pem", (v) => {
  if (!isBase64(v)) return false;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(v, "base64"));
    return /-----BEGIN [A-Z0-9 ]+-----/.test(text);
  } catch {
    return false;
  }
});

const opt = <T extends TSchema>(s: T) => Type.Optional(s);
const obj = (props: Record<string, TSchema>, options: Record<string, unknown> = {}) =>
  Type.Object(
    Object.fromEntries(Object.entries(props).map(([k, v]) => [k, opt(v)])),
    { additionalProperties: false, ...options },
  );
const map = (keyPattern: string, value: TSchema, options: Record<string, unknown> = {}) =>
  Type.Record(Type.String({ pattern: keyPattern }), value, { additionalProperties: false, ...options });

// Strings that end up in configuration files must not carry newlines or control characters (a
// newline in a sysctl value or a proxy URL would inject a line into the file).
export const SINGLE_LINE = "^[^\\x00-\\x1f\\x7f]*$";
const line = (options: Record<string, unknown> = {}) => Type.String({ pattern: SINGLE_LINE, ...options });
const str = (description: string, options: Record<string, unknown> = {}) =>
  Type.String({ description, ...(options.pattern || options.format ? {} : { pattern: SINGLE_LINE }), ...options });
const bool = (description: string, options: Record<string, unknown> = {}) => Type.Boolean({ description, ...options });
const int = (description: string, options: Record<string, unknown> = {}) => Type.Integer({ description, ...options });
const list = (item: TSchema, description: string, options: Record<string, unknown> = {}) =>
  Type.Array(item, { description, ...options });

const NAME = "^[a-z0-9][a-z0-9_-]{0,62}$";
const ip = Type.String({ format: "ip" });

const network = obj(
  {
    hostname: str("Host name; generated from the primary address (reverse DNS, else ip-a-b-c-d) when absent.", {
      format: "hostname",
      "x-generator": "hostname",
    }),
    hosts: list(Type.Tuple([ip, Type.Array(Type.String({ format: "hostname" }), { minItems: 1 })]), "Static /etc/hosts entries: [address, [names...]]; repeated addresses are merged."),
    "https-proxy": str("HTTPS proxy for containerd and the update agent, e.g. http://proxy.example:3128.", { minLength: 1 }),
    "no-proxy": list(line({ minLength: 1 }), "Hosts that bypass the proxy; localhost is always added."),
  },
  { description: "Network identity and proxies." },
);

const dns = obj(
  {
    "name-servers": list(ip, "DNS servers; when absent, the DHCP lease's servers are used.", { maxItems: 3 }),
    "search-list": list(Type.String({ format: "hostname" }), "DNS search domains.", { maxItems: 6 }),
  },
  { description: "Name resolution." },
);

const ntp = obj(
  {
    "time-servers": list(Type.String({ format: "hostname" }), "NTP servers.", { default: ["pool.ntp.org"] }),
    options: list(Type.String({ pattern: "^[a-z][a-z0-9-]*( [0-9]+)?$" }), "chrony server options, e.g. iburst, minpoll 4.", { default: ["iburst"] }),
  },
  { description: "Time synchronisation (chrony)." },
);

const kernel = obj(
  {
    sysctl: map("^[a-z0-9_]+([./][a-z0-9_*-]+)+$", line(), {
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

const updates = obj(
  {
    "metadata-base-url": str("Base URL of the signed (TUF) update metadata.", { format: "url" }),
    "targets-base-url": str("Base URL of the update targets.", { format: "url" }),
    seed: int("Wave seed in [0, 2048); generated at first boot when absent.", { minimum: 0, maximum: 2047, "x-generator": "seed" }),
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
      Type.Object({ registry: line({ minLength: 1 }), endpoint: Type.Array(Type.String({ format: "url" }), { minItems: 1 }) }, { additionalProperties: false }),
      "Registry mirrors: [{registry, endpoint: [urls]}].",
    ),
    credentials: list(
      Type.Object(
        {
          registry: line({ minLength: 1 }),
          username: Type.Optional(line()),
          password: Type.Optional(Type.String({ "x-secret": true })),
          auth: Type.Optional(Type.String({ "x-secret": true })),
          identitytoken: Type.Optional(Type.String({ "x-secret": true })),
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
    data: str("Base64 PEM certificate bundle.", { format: "base64-pem", minLength: 1 }),
    trusted: bool("Add the bundle to the trust store.", { default: false }),
  }),
  { description: "Certificate bundles by name." },
);

const kubernetes = obj(
  {
    "api-server": str("URL of the Kubernetes API server.", { format: "url" }),
    "cluster-certificate": str("Base64 CA certificate of the cluster.", { format: "base64-pem" }),
    "cluster-name": str("Cluster name.", { minLength: 1 }),
    "cluster-domain": str("Cluster DNS domain.", { format: "hostname", default: "cluster.local" }),
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
      port: int("TCP port of the network API.", { minimum: 1, maximum: 65535, default: 8443 }),
      "server-certificate": str("Base64 PEM certificate (chain) the network API presents.", { format: "base64-pem" }),
      "server-key": str("Base64 PEM private key of the network API.", { format: "base64-pem", "x-secret": true }),
      "client-ca": str("Base64 PEM CA bundle; only clients with a certificate it signed are let in.", { format: "base64-pem" }),
    }),
  },
  { description: "The API itself." },
);

function settingsSchema(variant: Variant): TObject {
  const common: Record<string, TSchema> = {
    // The one multi-line setting: a message shown as is.
    motd: Type.String({ description: "Message of the day (/etc/motd).", default: "Welcome to Caisson!" }),
    network,
    dns,
    ntp,
    kernel,
    boot,
    "host-containers": map(NAME, hostContainer, { description: "Host containers by name (admin, control, ...)." }),
    "bootstrap-containers": map(NAME, bootstrapContainer, { description: "Bootstrap containers by name, run before the host is configured." }),
    updates,
    "container-registry": containerRegistry,
    "container-runtime": containerRuntime,
    "oci-defaults": ociDefaults,
    pki,
    api,
  };
  if (variant === "k8s") common.kubernetes = kubernetes;
  return obj(common, { description: `Settings of the ${variant} variant.` });
}

const cache = new Map<Variant, TObject>();
export function schemaFor(variant: Variant): TObject {
  let s = cache.get(variant);
  if (!s) cache.set(variant, (s = settingsSchema(variant)));
  return s;
}
