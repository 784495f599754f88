// HTTP(S) GET as a stream, through settings.network.https-proxy unless no-proxy matches.
// Why our own GET rather than tuf-js' default fetcher (make-fetch-happen): the big images must be
// streamed straight to the disk, which tuf-js' fetcher (a whole temp file first) cannot do; and
// tuf-js takes its fetcher from us (ProxyFetcher in tuf.ts), since it passes its own no proxy
// settings. The proxying itself is TooTallNate's agents: https-proxy-agent (a CONNECT tunnel,
// TLS end to end) for https targets, http-proxy-agent (absolute-URI requests) for http ones.
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { HttpsProxyAgent } from "https-proxy-agent";
import { HttpProxyAgent } from "http-proxy-agent";
import type { JsonObject } from "../settings/keys.js";
import { asSettings, withProxyScheme } from "../settings/schema.js";

export interface HttpOptions {
  proxy?: string;
  noProxy?: string[];
  /** Idle timeout: no bytes for this long fails the request (and no answer from the proxy). */
  timeoutMs?: number;
}

export class HttpStatusError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
  ) {
    super(`GET ${url}: HTTP ${status}`);
  }
}

/** settings.network.https-proxy and no-proxy (the live settings tree), for every request the update agent makes. */
export function proxyOptions(settings: JsonObject): HttpOptions {
  const n = asSettings(settings).network ?? {};
  const proxy = n["https-proxy"];
  return { proxy: proxy === undefined ? undefined : withProxyScheme(proxy), noProxy: n["no-proxy"] };
}

/** no-proxy semantics of curl and Go: exact host, domain suffix (".example.com" or "example.com"), "*". */
export function bypassesProxy(host: string, noProxy: string[] = []): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "127.0.0.1" || h === "::1") return true;
  return noProxy.some((raw) => {
    const n = raw.trim().toLowerCase().replace(/:\d+$/, "");
    if (n === "*") return true;
    const bare = n.replace(/^\*?\./, "");
    return h === bare || h.endsWith(`.${bare}`);
  });
}

/** GET `url`; resolves with the response once the status is 200, else rejects. */
export async function httpGet(url: string, o: HttpOptions = {}): Promise<IncomingMessage> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  const timeoutMs = o.timeoutMs ?? 60_000;
  const proxy = o.proxy && !bypassesProxy(target.hostname, o.noProxy) ? new URL(/^[a-z]+:\/\//i.test(o.proxy) ? o.proxy : `http://${o.proxy}`) : undefined;
  // Set when the proxy answers CONNECT with anything but 200: https-proxy-agent then hands node the
  // proxy's own response, which must not pass for the target's (a 404 would read as "no such file").
  let refused: string | undefined;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const agent = proxy ? (secure ? new HttpsProxyAgent(proxy) : new HttpProxyAgent(proxy)) : undefined;
    const req = (secure ? https : http).request(url, { agent });
    let own: Error | undefined;
    const fail = (e: Error) => {
      own = e;
      req.destroy(e);
      // Destroyed before it has a socket, a request reports nothing until it gets one.
      reject(e);
    };
    // Until node has a socket (proxy connected, CONNECT answered) the idle timer is not armed yet.
    const deadline = proxy ? setTimeout(() => fail(new Error(`GET ${url} through proxy ${proxy.host}: no answer from the proxy in ${timeoutMs} ms`)), timeoutMs) : undefined;
    const settle = () => clearTimeout(deadline);
    req.once("socket", settle);
    req.once("close", settle);
    req.on("proxyConnect", (c: { statusCode: number; statusText?: string }) => {
      if (c.statusCode !== 200) refused = `proxy ${proxy!.host} refused CONNECT ${target.hostname}:${target.port || 443}: HTTP ${c.statusCode}${c.statusText ? ` ${c.statusText}` : ""}`;
    });
    req.setTimeout(timeoutMs, () => fail(new Error(`GET ${url}: no data for ${timeoutMs} ms`)));
    req.once("response", resolve);
    // `on`, not `once`: a request destroyed early can still report its late socket's error.
    req.on("error", (e) => {
      settle();
      if (refused) reject(new Error(refused));
      else if (proxy && e !== own) reject(new Error(`GET ${url} through proxy ${proxy.host}: ${e.message}`, { cause: e }));
      else reject(e);
    });
    req.end();
  });
  if (refused) {
    res.destroy();
    throw new Error(refused);
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw new HttpStatusError(url, res.statusCode ?? 0);
  }
  return res;
}
