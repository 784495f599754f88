// Signing keys: ed25519 pairs from node:crypto, stored one JSON file per key under DIR/keys
// (0600 in a 0700 directory, never under DIR/repository, which is what gets published), wrapped
// as @tufjs/models Keys and signer callbacks for Metadata.sign.
import { createHash, createPrivateKey, generateKeyPairSync, sign } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Key, Signature } from "@tufjs/models";

export interface StoredKey {
  keyid: string;
  /** The role the key was made for (informative; root.json is what grants it). */
  role: string;
  /** Raw ed25519 public key, hex, as TUF's ed25519 keyval carries it. */
  public: string;
  /** PKCS#8 PEM. */
  private: string;
  created: string;
}

/**
 * The TUF key id: sha256 of the canonical JSON of the public key. For this fixed shape (ASCII
 * strings, keys listed in sorted order) canonical JSON is exactly JSON.stringify's output.
 */
function keyId(publicHex: string): string {
  const canonical = JSON.stringify({ keytype: "ed25519", keyval: { public: publicHex }, scheme: "ed25519" });
  return createHash("sha256").update(canonical).digest("hex");
}

export function generateKey(role: string, now: Date): StoredKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  // An ed25519 SPKI DER ends with the 32 raw key bytes.
  const pub = publicKey.export({ format: "der", type: "spki" }).subarray(-32).toString("hex");
  return {
    keyid: keyId(pub),
    role,
    public: pub,
    private: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    created: now.toISOString(),
  };
}

export const tufKey = (k: StoredKey) =>
  new Key({ keyID: k.keyid, keyType: "ed25519", scheme: "ed25519", keyVal: { public: k.public } });

/** A signer for Metadata.sign: it hands us the canonical bytes of `signed`. */
export function signer(k: StoredKey): (data: Buffer) => Signature {
  const priv = createPrivateKey(k.private);
  return (data) => new Signature({ keyID: k.keyid, sig: sign(null, data, priv).toString("hex") });
}

const keysDir = (dir: string) => join(dir, "keys");

export function saveKey(dir: string, k: StoredKey): void {
  const d = keysDir(dir);
  mkdirSync(d, { recursive: true, mode: 0o700 });
  chmodSync(d, 0o700);
  const path = join(d, `${k.keyid}.json`);
  writeFileSync(path, JSON.stringify(k, null, 2) + "\n", { mode: 0o600, flag: "wx" });
}

export function loadKey(dir: string, keyid: string): StoredKey {
  const path = join(keysDir(dir), `${keyid}.json`);
  if (!existsSync(path)) throw new Error(`private key ${keyid} not found in ${keysDir(dir)} (needed to sign)`);
  return JSON.parse(readFileSync(path, "utf8")) as StoredKey;
}

/** Move a key out of service (kept, for the record and for disaster recovery). */
export function retireKey(dir: string, keyid: string): void {
  const retired = join(keysDir(dir), "retired");
  mkdirSync(retired, { recursive: true, mode: 0o700 });
  renameSync(join(keysDir(dir), `${keyid}.json`), join(retired, `${keyid}.json`));
}
