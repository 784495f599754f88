// Public surface of the apiclient folder, for main.ts, `caisson apiclient` and other agents.
export { runApiclient, DEFAULT_SOCKET, type ApiclientDeps } from "./cli.js";
export { ApiClient, ApiResponseError, ConnectError, httpTransport, type ApiRequest, type ApiResponse, type HttpTarget, type Transport } from "./client.js";
export type { Io, Globals, Context, Subcommand } from "./context.js";
