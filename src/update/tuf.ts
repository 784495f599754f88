// The TUF client: tuf-js' Updater verifies the metadata chain (root rotation, thresholds, expiry,
// rollback and freeze protection, snapshot consistency) and the small targets; the big images are
// streamed straight from the targets server into their destination, capped at the signed length
// and hashed on the fly, because tuf-js would first copy them whole into a temp file.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { Updater, BaseFetcher } from "tuf-js";
// Not re-exported by tuf-js' index, but the Updater recognises only this class: a 404 on
// <N+1>.root.json means "no newer root" only when it arrives as a DownloadHTTPError.
import { DownloadHTTPError } from "tuf-js/dist/error.js";
import type { TargetFile } from "@tufjs/models";
import type { JsonObject } from "../settings/keys.js";
import { asSettings } from "../settings/schema.js";
import { httpGet, HttpStatusError, proxyOptions, type HttpOptions } from "./http.js";
import { parseManifest, updatePaths, type Manifest } from "./manifest.js";
import type { Expected, Source } from "./write.js";

export interface TufOptions {
  root: string;
  metadataBaseUrl: string;
  targetsBaseUrl: string;
  http?: HttpOptions;
}

/** tuf-js' fetcher over our HTTP client (proxy support). */
class ProxyFetcher extends BaseFetcher {
  constructor(private readonly http: HttpOptions) {
    super();
  }
  override async fetch(url: string): Promise<NodeJS.ReadableStream> {
    try {
      return await httpGet(url, this.http);
    } catch (e) {
      if (e instanceof HttpStatusError) throw new DownloadHTTPError(e.message, e.status);
      throw e;
    }
  }
}

export interface TargetInfo extends Expected {
  name: string;
  /** Where the target is downloaded from (hash-prefixed under consistent snapshots). */
  url: string;
}

/** What the update agent needs of a TUF repository (TufClient; a fake in unit tests). */
export interface TufSource {
  /** tuf-js' local metadata directory (root.json and the chain the agent caches for the migrator). */
  readonly metadataDir: string;
  readonly metadataBaseUrl: string;
  refresh(): Promise<void>;
  target(name: string): Promise<TargetInfo>;
  download(name: string, path: string): Promise<void>;
  manifest(tmpPath: string): Promise<{ manifest: Manifest; bytes: Buffer }>;
  stream(t: TargetInfo): Source;
}

export class TufClient implements TufSource {
  private readonly updater: Updater;
  readonly metadataDir: string;
  /** The URL the metadata are fetched from (the agent caches the N.root.json chain from it too). */
  readonly metadataBaseUrl: string;
  private refreshed = false;

  constructor(private readonly o: TufOptions) {
    this.metadataDir = join(o.root, updatePaths.metadata);
    this.metadataBaseUrl = o.metadataBaseUrl;
    mkdirSync(this.metadataDir, { recursive: true });
    const local = join(this.metadataDir, "root.json");
    if (!existsSync(local)) {
      // Trust on first use of the shipped anchor; later roots come only through signed rotation.
      const anchor = join(o.root, updatePaths.trustedRoot);
      if (!existsSync(anchor)) throw new Error(`no trusted root: ${anchor} is missing (this image was built without --update-root, so it takes no updates)`);
      copyFileSync(anchor, local);
    }
    this.updater = new Updater({
      metadataDir: this.metadataDir,
      metadataBaseUrl: o.metadataBaseUrl,
      targetBaseUrl: o.targetsBaseUrl,
      fetcher: new ProxyFetcher(o.http ?? {}),
      config: { userAgent: "caisson-update-agent" },
    });
  }

  /** Verify the whole metadata chain (throws with tuf-js' reason). */
  async refresh(): Promise<void> {
    try {
      await this.updater.refresh();
    } catch (e) {
      throw new Error(`update metadata from ${this.o.metadataBaseUrl} failed verification: ${(e as Error).message}`);
    }
    this.refreshed = true;
  }

  private async info(name: string): Promise<TargetFile> {
    if (!this.refreshed) await this.refresh();
    const t = await this.updater.getTargetInfo(name);
    if (!t) throw new Error(`target ${name} is not in the signed targets metadata`);
    return t;
  }

  async target(name: string): Promise<TargetInfo> {
    const t = await this.info(name);
    const sha256 = t.hashes.sha256;
    if (!sha256) throw new Error(`target ${name} has no sha256 in the signed metadata`);
    // Consistent snapshots name targets <hash>.<name>, as tuf-js' downloadTarget does (first hash).
    const consistent = (JSON.parse(readFileSync(join(this.metadataDir, "root.json"), "utf8")) as { signed?: { consistent_snapshot?: boolean } }).signed?.consistent_snapshot;
    const file = consistent ? `${Object.values(t.hashes)[0]}.${name}` : name;
    return { name, length: t.length, sha256, url: `${this.o.targetsBaseUrl.replace(/\/+$/, "")}/${file.split("/").map(encodeURIComponent).join("/")}` };
  }

  /** A small target, fully verified by tuf-js, written to `path`. */
  async download(name: string, path: string): Promise<void> {
    await this.updater.downloadTarget(await this.info(name), path);
  }

  async manifest(tmpPath: string): Promise<{ manifest: Manifest; bytes: Buffer }> {
    await this.download("manifest.json", tmpPath);
    const bytes = readFileSync(tmpPath);
    return { manifest: parseManifest(bytes.toString("utf8")), bytes };
  }

  /**
   * The target as a Source: the HTTP body, cut off past the signed length, its sha256 checked at
   * the end (a mismatch rejects after the last chunk, so the writer must verify before use).
   */
  stream(t: TargetInfo): Source {
    return async (sink) => {
      const res = await httpGet(t.url, this.o.http);
      const hash = createHash("sha256");
      let n = 0;
      try {
        for await (const chunk of res as AsyncIterable<Buffer>) {
          n += chunk.length;
          if (n > t.length) throw new Error(`target ${t.name}: the server sent more than the ${t.length} bytes the signed metadata allow`);
          hash.update(chunk);
          await sink(chunk);
        }
      } catch (e) {
        if ((e as Error).message.startsWith(`target ${t.name}`)) throw e;
        throw new Error(`target ${t.name}: download failed after ${n} of ${t.length} bytes: ${(e as Error).message}`);
      } finally {
        res.destroy();
      }
      if (n !== t.length) throw new Error(`target ${t.name}: download cut short at ${n} of ${t.length} bytes`);
      const got = hash.digest("hex");
      if (got !== t.sha256) throw new Error(`target ${t.name}: sha256 ${got} does not match the signed ${t.sha256}`);
    };
  }
}

/** The production client for the live settings: settings.updates.{metadata,targets}-base-url, through the proxy. */
export function tufClientFor(root: string, settings: JsonObject): TufClient {
  const u = asSettings(settings).updates ?? {};
  const meta = u["metadata-base-url"];
  const targets = u["targets-base-url"];
  if (typeof meta !== "string" || !meta) throw new Error("settings.updates.metadata-base-url is not set");
  if (typeof targets !== "string" || !targets) throw new Error("settings.updates.targets-base-url is not set");
  return new TufClient({ root, metadataBaseUrl: meta, targetsBaseUrl: targets, http: proxyOptions(settings) });
}
