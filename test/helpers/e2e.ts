// Shared pieces of the QEMU end-to-end tests: API calls with assertions, the boot status shape,
// waiting for a health verdict, for a new boot, or for a given slot.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ApiClient } from "../../src/apiclient/client.js";
import type { Instance } from "../../src/launch/instances.js";
import type { BootStatus as WireBootStatus } from "../../src/protocol/types.js";
import type { Path } from "../../src/protocol/routes.js";

export const BOOT_TIMEOUT = 480_000;
export const log = (l: string) => process.stderr.write(`# ${l}\n`);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function json(c: ApiClient, method: string, uri: string, body?: string): Promise<unknown> {
  const r = await c.request(method, uri, body);
  assert.ok(r.status < 300, `${method} ${uri} → ${r.status} ${r.body}`);
  return r.body ? (JSON.parse(r.body) as unknown) : undefined;
}

/** GET /boot-status on the image, once the daemon has reported the boot and the health verdict. */
export type BootStatus = WireBootStatus & Required<Pick<WireBootStatus, "boot" | "health">>;

const BOOT_STATUS: Path = "/boot-status";

/** Boot status once the health verdict is in. */
export async function settled(c: ApiClient): Promise<BootStatus> {
  for (let i = 0; i < 120; i++) {
    const s = (await json(c, "GET", BOOT_STATUS)) as BootStatus;
    if (s.health && s.health.state !== "checking") return s;
    await sleep(1000);
  }
  throw new Error("health verdict never came");
}

export function consoleOf(i: Instance): string {
  return readFileSync(join(i.dir, "console.log"), "latin1");
}

/** Wait until the host answers from a boot other than the one that started at `startedAt`, and `accept`s it. */
export async function nextBoot(c: ApiClient, startedAt: string, accept: (s: BootStatus) => boolean = () => true): Promise<BootStatus> {
  const t0 = Date.now();
  while (Date.now() - t0 < BOOT_TIMEOUT) {
    await sleep(3000);
    try {
      const s = await settled(c);
      if (s["started-at"] !== startedAt && accept(s)) return s;
    } catch {
      /* rebooting */
    }
  }
  throw new Error(`the host did not come back within ${BOOT_TIMEOUT / 1000} s`);
}

/** Wait until the host answers from `slot` (the API may first answer from the slot on trial). */
export async function onSlot(c: ApiClient, slot: string): Promise<BootStatus> {
  return nextBoot(c, "", (s) => s.boot.slot === slot);
}
