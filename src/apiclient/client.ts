// Low-level client for the host API. The transport is a function so the CLI can talk over the Unix
// socket, over mutual TLS to a launched host (host/port + an https.Agent, src/launch), and to a fake in unit tests.
import http from "node:http";
import https from "node:https";

export interface ApiRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

export interface ApiResponse {
  status: number;
  body: string;
}

export type Transport = (req: ApiRequest) => Promise<ApiResponse>;

/** node:http request options (socketPath, or host/port); `tls: true` sends them through node:https. */
export type HttpTarget = http.RequestOptions & https.RequestOptions & { tls?: boolean; timeoutMs?: number };

export function httpTransport(target: HttpTarget): Transport {
  const { tls, timeoutMs, ...base } = target;
  const send = tls ? https.request : http.request;
  return (req) =>
    new Promise<ApiResponse>((resolve, reject) => {
      const r = send({ ...base, method: req.method, path: req.path, headers: { ...base.headers, ...req.headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      });
      r.on("error", reject);
      if (timeoutMs !== undefined) r.setTimeout(timeoutMs, () => r.destroy(new Error(`no response after ${timeoutMs} ms`)));
      r.end(req.body);
    });
}

/**
 * An error response of the API, as the client sees it (the server's error is src/api/errors.ts'
 * ApiError): JSON bodies carry message/key/expected, anything else is kept as text.
 */
export class ApiResponseError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly key?: string,
    readonly expected?: string,
  ) {
    super(message);
  }

  static from(res: ApiResponse): ApiResponseError {
    try {
      const j = JSON.parse(res.body) as { message?: unknown; key?: unknown; expected?: unknown };
      if (typeof j.message === "string") {
        return new ApiResponseError(res.status, j.message, typeof j.key === "string" ? j.key : undefined, typeof j.expected === "string" ? j.expected : undefined);
      }
    } catch {
      // not JSON: fall through to the raw text
    }
    return new ApiResponseError(res.status, res.body.trim() || http.STATUS_CODES[res.status] || `HTTP ${res.status}`);
  }

  /** One line for stderr: the API's message, plus key/expected when the message lacks them. */
  describe(): string {
    let s = this.message;
    if (this.key && !s.includes(this.key)) s += ` (key: ${this.key})`;
    if (this.expected && !s.includes(this.expected)) s += ` (expected: ${this.expected})`;
    return `${s} [HTTP ${this.status}]`;
  }
}

/** The client could not reach the API at all (socket missing, refused, TLS failure...). */
export class ConnectError extends Error {}

export class ApiClient {
  private readonly transport: Transport;

  constructor(
    target: HttpTarget | Transport,
    private readonly trace?: (line: string) => void,
  ) {
    this.transport = typeof target === "function" ? target : httpTransport(target);
  }

  /** One request; `body` objects are sent as JSON. Never throws on HTTP status, only on transport failure. */
  async request(method: string, uri: string, body?: unknown): Promise<ApiResponse> {
    const text = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const headers: Record<string, string> = {};
    if (text !== undefined) {
      headers["content-type"] = "application/json";
      headers["content-length"] = String(Buffer.byteLength(text));
    }
    this.trace?.(`> ${method} ${uri}`);
    let res: ApiResponse;
    try {
      res = await this.transport({ method, path: uri, headers, body: text });
    } catch (e) {
      throw new ConnectError(`cannot reach the API: ${(e as Error).message}`);
    }
    this.trace?.(`< ${res.status} ${http.STATUS_CODES[res.status] ?? ""}`.trimEnd());
    return res;
  }

  /** Like request, but non-2xx becomes an ApiResponseError and the body is parsed as JSON when present. */
  async call(method: string, uri: string, body?: unknown): Promise<unknown> {
    const res = await this.request(method, uri, body);
    if (res.status < 200 || res.status > 299) throw ApiResponseError.from(res);
    if (res.body.trim() === "") return undefined;
    try {
      return JSON.parse(res.body) as unknown;
    } catch {
      return res.body;
    }
  }
}
