// The baseline of the in-guest memory benchmark: a bare node:http server on the same Node runtime,
// started only when the benchmark asks for it (caisson-bench-baseline.service, on a QEMU fw_cfg
// file). Deliberately nothing else: its PSS is what "a Node HTTP server" costs in this guest.
import { createServer } from "node:http";
import { rmSync } from "node:fs";

const SOCKET = "/run/caisson-bench-baseline.sock";
rmSync(SOCKET, { force: true });
createServer((_req, res) => res.end("{}")).listen(SOCKET);
