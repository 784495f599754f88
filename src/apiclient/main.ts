#!/usr/bin/env node
// The `apiclient` binary.
import { runApiclient } from "./index.js";

process.exitCode = await runApiclient(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });
