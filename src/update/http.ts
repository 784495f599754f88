// HTTP(S) GET as a stream, through settings.network.https-proxy unless no-proxy matches. Our own
// (node:http/https + CONNECT) rather than tuf-js' default fetcher: make-fetch-happen is only a
// transitive dependency and tuf-js does not pass it a proxy; and the big images must be streamed
// to the disk, which tuf-js' fetcher (download to a temp file first) cannot do.
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { connect as tlsConnect } from "node:tls";
import type { Socket } from "node:net";

export interface HttpOptions {
  proxy?: string;
  noProxy?: string[];
  /** Idle timeout: no bytes for this long fails the request. */
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

function tunnel(proxy: URL, target: URL, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const port = target.port || "443";
    const req = (proxy.protocol === "https:" ? https : http).request({
      host: proxy.hostname,
      port: proxy.port || (proxy.protocol === "https:" ? 443 : 80),
      method: "CONNECT",
      path: `${target.hostname}:${port}`,
      headers: { host: `${target.hostname}:${port}` },
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`proxy ${proxy.host}: no answer after ${timeoutMs} ms`)));
    req.once("connect", (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        return reject(new Error(`proxy ${proxy.host} refused CONNECT ${target.host}: HTTP ${res.statusCode}`));
      }
      resolve(socket);
    });
    req.once("error", reject);
    req.end();
  });
}

/** GET `url`; resolves with the response once the status is 200, else rejects. */
export async function httpGet(url: string, o: HttpOptions = {}): Promise<IncomingMessage> {
  const target = new URL(url);
  const timeoutMs = o.timeoutMs ?? 60_000;
  const proxy = o.proxy && !bypassesProxy(target.hostname, o.noProxy) ? new URL(/^[a-z]+:\/\//i.test(o.proxy) ? o.proxy : `http://${o.proxy}`) : undefined;
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    let req: http.ClientRequest;
    if (proxy && target.protocol === "http:") {
      // Plain HTTP through a proxy: the absolute URL as the request target.
      req = http.request({ host: proxy.hostname, port: proxy.port || 80, path: url, headers: { host: target.host } });
    } else if (proxy) {
      req = https.request(url, {
        createConnection: (_opts, cb) => {
          tunnel(proxy, target, timeoutMs).then(
            (s) => cb(null, tlsConnect({ socket: s, servername: target.hostname })),
            (e: Error) => cb(e, undefined as never),
          );
          return undefined as never;
        },
      } as https.RequestOptions);
    } else {
      req = (target.protocol === "https:" ? https : http).request(url);
    }
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${url}: no data for ${timeoutMs} ms`)));
    req.once("response", resolve);
    req.once("error", reject);
    req.end();
  });
  if (res.statusCode !== 200) {
    res.resume();
    throw new HttpStatusError(url, res.statusCode ?? 0);
  }
  return res;
}
