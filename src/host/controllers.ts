// The host daemon's controllers, in one list (src/controller/README.md has the contract). Each
// owns one output; the runner wakes it when a commit touches its inputs.
//
// | controller            | inputs        | owns                                              | failure  |
// |-----------------------|---------------|---------------------------------------------------|----------|
// | configuration-files   | (on request)  | /etc files of the service catalog, their restarts | fatal    |
// | network-api           | settings.api  | the mTLS API listener                             | degrades |
//
// Next: the host-container supervisor, bootstrap containers, the kubelet's configuration.
import type { RequestListener } from "node:http";
import type { Controller } from "../controller/runner.js";
import type { ConfigFilesController } from "../applier/controller.js";
import { NetworkApiController } from "../api/network.js";
import type { ServerLimits } from "../api/limits.js";
import { primaryAddress } from "../settings/generators.js";

export function hostControllers(d: {
  configFiles: ConfigFilesController;
  log: (msg: string) => void;
  network?: { limits: ServerLimits; bind: string; handler: () => RequestListener };
}): Controller[] {
  return [
    d.configFiles,
    ...(d.network ? [new NetworkApiController({ handler: d.network.handler, limits: d.network.limits, log: d.log, host: d.network.bind, address: d.network.bind === "0.0.0.0" ? primaryAddress : () => d.network!.bind })] : []),
  ];
}
