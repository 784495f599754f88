// Update waves, both sides: the repository tool turns an operator's wave policy (Bottlerocket's
// TOML format) into the manifest's `waves` map (starting seed → start time), and the agent asks
// `updateReady` whether its seed's turn has come. Same math as Bottlerocket's update_metadata crate
// (its wave functions), so a policy written for Bottlerocket means the same thing here.
import { parse as parseToml } from "smol-toml";
import { MAX_SEED } from "./manifest.js";

export { MAX_SEED };

export interface Wave {
  /** A relative offset from the release's start ("1 hour", "2 days", "30 minutes") or an RFC 3339 time. */
  start_after: string;
  /** Cumulative share of the fleet updated once this wave is over, 1..100. */
  fleet_percentage: number;
}

export interface WavePolicy {
  waves: Wave[];
}

const UNITS: Record<string, number> = {
  s: 1, sec: 1, secs: 1, second: 1, seconds: 1,
  m: 60, min: 60, mins: 60, minute: 60, minutes: 60,
  h: 3600, hr: 3600, hrs: 3600, hour: 3600, hours: 3600,
  d: 86400, day: 86400, days: 86400,
  w: 604800, week: 604800, weeks: 604800,
};

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

/** Seconds in a relative offset like "1 hour", "2 days 4h", "30m"; undefined if not one. */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (s === "") return undefined;
  const re = /(\d+)\s*([a-zA-Z]+)\s*/gy;
  let total = 0;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(s)) !== null) {
    const unit = UNITS[m[2]!.toLowerCase()];
    if (unit === undefined) return undefined;
    total += Number(m[1]) * unit;
    at = re.lastIndex;
  }
  return at === s.length ? total : undefined;
}

function waveStart(w: Wave, startAt: Date, index: number): Date {
  if (RFC3339.test(w.start_after.trim())) return new Date(w.start_after.trim());
  const secs = parseDuration(w.start_after);
  if (secs === undefined) {
    throw new Error(`wave ${index + 1}: start_after "${w.start_after}" is neither a duration ("1 hour", "2 days") nor an RFC 3339 time`);
  }
  return new Date(startAt.getTime() + secs * 1000);
}

/** RFC 3339 UTC with whole seconds (what Bottlerocket's manifests carry and TUF tools expect). */
export const rfc3339 = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/**
 * The manifest's waves for a release starting at `startAt`: the first wave gets seed 0, each next
 * wave the seed where the previous wave's cumulative percentage ends (Bottlerocket's set_waves).
 * The last wave's percentage (normally 100) therefore never becomes a key: the last wave is open.
 */
export function wavesFromPolicy(policy: WavePolicy, startAt: Date): Record<string, string> {
  validatePolicy(policy);
  const waves: Record<string, string> = {};
  let seed = 0;
  let prev: { seed: number; time: number } | undefined;
  policy.waves.forEach((w, i) => {
    const start = waveStart(w, startAt, i);
    if (prev && !(seed > prev.seed)) {
      throw new Error(`wave ${i + 1}: fleet_percentage must grow from one wave to the next (seed ${seed} after ${prev.seed})`);
    }
    if (prev && !(start.getTime() > prev.time)) {
      throw new Error(`wave ${i + 1}: start_after "${w.start_after}" is not after the previous wave's start`);
    }
    waves[String(seed)] = rfc3339(start);
    prev = { seed, time: start.getTime() };
    // Bottlerocket computes this in f32: `(fleet_percentage as f32 / 100.0 * MAX_SEED as f32) as u32`.
    // Math.fround reproduces the single-precision rounding so edge percentages give the same seeds.
    seed = Math.trunc(Math.fround(Math.fround(w.fleet_percentage / 100) * MAX_SEED));
  });
  return waves;
}

function validatePolicy(policy: WavePolicy): void {
  if (!policy || !Array.isArray(policy.waves)) throw new Error("wave policy: expected a list of [[waves]]");
  policy.waves.forEach((w, i) => {
    if (typeof w.start_after !== "string") throw new Error(`wave ${i + 1}: start_after must be a string ("1 hour" or an RFC 3339 time)`);
    if (!Number.isInteger(w.fleet_percentage) || w.fleet_percentage < 1 || w.fleet_percentage > 100) {
      throw new Error(`wave ${i + 1} (start_after "${w.start_after}"): fleet_percentage must be an integer in 1..100, got ${String(w.fleet_percentage)}`);
    }
    const prev = policy.waves[i - 1];
    if (prev && w.fleet_percentage <= prev.fleet_percentage) {
      throw new Error(`wave ${i + 1} (start_after "${w.start_after}"): fleet_percentage ${w.fleet_percentage} is not above the previous wave's ${prev.fleet_percentage} (percentages are cumulative)`);
    }
  });
}

/** A Bottlerocket-style wave policy: `[[waves]] start_after = "1 hour"  fleet_percentage = 1`. */
export function parseWavePolicy(tomlText: string): WavePolicy {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(tomlText) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`wave policy is not valid TOML: ${(e as Error).message}`);
  }
  const raw = doc.waves;
  if (!Array.isArray(raw) || raw.length === 0) throw new Error("wave policy: no [[waves]] tables");
  const waves = raw.map((w: unknown, i): Wave => {
    if (typeof w !== "object" || w === null) throw new Error(`wave ${i + 1}: not a table`);
    const t = w as Record<string, unknown>;
    const unknownKeys = Object.keys(t).filter((k) => k !== "start_after" && k !== "fleet_percentage");
    if (unknownKeys.length) throw new Error(`wave ${i + 1}: unknown key(s) ${unknownKeys.join(", ")}`);
    // smol-toml gives TOML datetimes as Date objects: accept them as absolute start times.
    const start = t.start_after instanceof Date ? rfc3339(t.start_after) : t.start_after;
    if (typeof start !== "string") throw new Error(`wave ${i + 1}: start_after is missing or not a string`);
    const pct = typeof t.fleet_percentage === "bigint" ? Number(t.fleet_percentage) : t.fleet_percentage;
    if (typeof pct !== "number") throw new Error(`wave ${i + 1} (start_after "${start}"): fleet_percentage is missing or not a number`);
    if (RFC3339.test(start.trim()) ? Number.isNaN(Date.parse(start)) : parseDuration(start) === undefined) {
      throw new Error(`wave ${i + 1}: start_after "${start}" is neither a duration ("1 hour", "2 days") nor an RFC 3339 time`);
    }
    return { start_after: start, fleet_percentage: pct };
  });
  const policy = { waves };
  validatePolicy(policy);
  return policy;
}

/**
 * Is an update with these waves ready for a host with this seed at `now`? Bottlerocket's
 * Update::update_ready, case by case:
 * - no waves: ready;
 * - Initial (no key below the seed; only happens for seed 0 with a key 0): ready at once;
 * - General (keys start < seed <= end): not before the start, always after the end, and in between
 *   at start + (end - start) / (end_seed - start_seed) * seed;
 * - Last (no key at or above the seed): ready once the last wave has started.
 */
export function updateReady(waves: Record<string, string>, seed: number, now: Date): boolean {
  const keys = Object.keys(waves)
    .map((k) => ({ seed: Number(k), time: Date.parse(waves[k]!) }))
    .filter((w) => Number.isInteger(w.seed) && w.seed >= 0 && w.seed <= MAX_SEED && !Number.isNaN(w.time))
    .sort((a, b) => a.seed - b.seed);
  if (keys.length === 0) return true;
  const start = keys.filter((w) => w.seed < seed).at(-1);
  const end = keys.find((w) => w.seed >= seed);
  const t = now.getTime();
  if (!start) return true; // Initial: has_started is always true and there is no position to wait for.
  if (!end) return t >= start.time; // Last: passed (and started) once its start time is reached.
  if (t >= end.time) return true; // General, passed
  if (t < start.time) return false; // General, not started
  const seeds = end.seed - start.seed;
  if (seeds === 0) return true; // unreachable with start < seed <= end, kept as Bottlerocket has it
  // Bottlerocket: `target = start_time + time_per_seed * seed` with the host's ABSOLUTE seed, not
  // `seed - start_seed`. So a host late in a wave whose seed is large relative to the wave's width
  // gets a target past the wave's end and simply waits for the end (the "passed" case above). We
  // keep the quirk so a Caisson host and a Bottlerocket host with the same seed and manifest agree.
  // chrono's Duration is nanosecond-precise; BigInt keeps the product exact.
  const perSeedNs = (BigInt(end.time - start.time) * 1_000_000n) / BigInt(seeds);
  const elapsedNs = BigInt(t - start.time) * 1_000_000n;
  return elapsedNs >= perSeedNs * BigInt(seed);
}
