// The shipped wave policies, kept as Bottlerocket-format TOML files in src/repo/waves/ rather
// than as TypeScript constants: they are the same files an operator copies and edits for
// `--waves FILE`, so the named policies and custom ones go through one parser. They live beside
// the repository tool (not under image/) because they never go into an image.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../fsutil/package-root.js";
import { parseWavePolicy, type WavePolicy } from "../update/waves.js";

export const WAVE_POLICY_NAMES = ["default", "accelerated", "ohno", "slow-roll"] as const;
export type WavePolicyName = (typeof WAVE_POLICY_NAMES)[number];

const wavePolicyPath = (name: WavePolicyName) => join(packageRoot(), "src", "repo", "waves", `${name}.toml`);

export function namedWavePolicy(name: WavePolicyName): WavePolicy {
  if (!WAVE_POLICY_NAMES.includes(name)) throw new Error(`unknown wave policy "${String(name)}" (known: ${WAVE_POLICY_NAMES.join(", ")})`);
  return parseWavePolicy(readFileSync(wavePolicyPath(name), "utf8"));
}
