// Setting generators (Bottlerocket's sundog): values computed on the host for keys that are absent
// after defaults and user data, at every start, so keys added by a newer version get generated too.
import { randomInt } from "node:crypto";
import { networkInterfaces } from "node:os";
import { reverse } from "node:dns/promises";
import { FormatRegistry } from "@sinclair/typebox";
import type { Json } from "./keys.js";
import { MAX_SEED } from "./schema.js"; // (importing it also registers the formats)

export type Generator = () => Promise<Json | undefined>;

/** The first non-internal IPv4 address, which stands for the host on the network. */
export function primaryAddress(): string | undefined {
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

export const generators: Record<string, Generator> = {
  // Wave seed: uniform in [0, MAX_SEED), as Bottlerocket's `bork seed`.
  seed: () => Promise.resolve(randomInt(0, MAX_SEED)),
  // Host name: the primary address's reverse DNS name, else ip-a-b-c-d (as netdog), else "localhost".
  hostname: async () => {
    const addr = primaryAddress();
    // No address yet: skip; the generator runs again at the next start (a value is kept forever).
    if (!addr) return undefined;
    try {
      const names = await Promise.race([
        reverse(addr),
        new Promise<string[]>((r) => setTimeout(() => r([]), 2000).unref()),
      ]);
      const name = names[0]?.replace(/\.$/, "");
      if (name && FormatRegistry.Get("hostname")?.(name)) return name;
    } catch {
      /* no PTR record: fall through */
    }
    return `ip-${addr.replace(/\./g, "-")}`;
  },
};
