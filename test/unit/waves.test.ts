import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_SEED, parseDuration, parseWavePolicy, updateReady, wavesFromPolicy } from "../../src/update/waves.js";
import { namedWavePolicy, WAVE_POLICY_NAMES } from "../../src/repo/policies.js";

const T0 = new Date("2000-01-01T00:00:00Z");
const at = (ms: number) => new Date(T0.getTime() + ms);
const iso = (ms: number) => at(ms).toISOString();

test("durations: Bottlerocket-style offsets", () => {
  assert.equal(parseDuration("1 hour"), 3600);
  assert.equal(parseDuration("4 hours"), 4 * 3600);
  assert.equal(parseDuration("2 days"), 2 * 86400);
  assert.equal(parseDuration("30 minutes"), 1800);
  assert.equal(parseDuration("1d 12h"), 36 * 3600);
  assert.equal(parseDuration("soon"), undefined);
  assert.equal(parseDuration("3 fortnights"), undefined);
  assert.equal(parseDuration(""), undefined);
});

test("default policy converts to Bottlerocket's seeds and times", () => {
  const w = wavesFromPolicy(namedWavePolicy("default"), T0);
  const h = 3600_000;
  assert.deepEqual(w, {
    "0": iso(1 * h).replace(".000", ""),
    "20": iso(4 * h).replace(".000", ""),
    "102": iso(24 * h).replace(".000", ""),
    "307": iso(48 * h).replace(".000", ""),
    "819": iso(96 * h).replace(".000", ""),
    "1228": iso(120 * h).replace(".000", ""),
    "1843": iso(144 * h).replace(".000", ""),
  });
});

test("every shipped policy parses and converts to ascending waves", () => {
  for (const name of WAVE_POLICY_NAMES) {
    const w = wavesFromPolicy(namedWavePolicy(name), T0);
    const keys = Object.keys(w).map(Number);
    assert.equal(keys[0], 0, name);
    const times = keys.map((k) => Date.parse(w[String(k)]!));
    for (let i = 1; i < keys.length; i++) {
      assert.ok(keys[i]! > keys[i - 1]!, `${name}: seeds ascend`);
      assert.ok(times[i]! > times[i - 1]!, `${name}: times ascend`);
    }
    assert.ok(keys.every((k) => k < MAX_SEED));
  }
  assert.deepEqual(Object.keys(wavesFromPolicy(namedWavePolicy("ohno"), T0)), ["0", "102", "512", "1024", "1843"]);
});

test("absolute RFC 3339 start times are accepted", () => {
  const p = parseWavePolicy(`[[waves]]\nstart_after = "2000-01-02T00:00:00Z"\nfleet_percentage = 50\n[[waves]]\nstart_after = 2000-01-03T00:00:00Z\nfleet_percentage = 100\n`);
  assert.deepEqual(wavesFromPolicy(p, T0), { "0": "2000-01-02T00:00:00Z", "1024": "2000-01-03T00:00:00Z" });
});

test("policy errors name the wave", () => {
  assert.throws(() => parseWavePolicy("waves = 3"), /no \[\[waves\]\]/);
  assert.throws(() => parseWavePolicy("[[waves"), /not valid TOML/);
  assert.throws(() => parseWavePolicy(`[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 0\n`), /wave 1 .*1\.\.100/);
  assert.throws(() => parseWavePolicy(`[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 101\n`), /wave 1 .*1\.\.100/);
  assert.throws(() => parseWavePolicy(`[[waves]]\nstart_after = "whenever"\nfleet_percentage = 10\n`), /wave 1: start_after "whenever"/);
  assert.throws(() => parseWavePolicy(`[[waves]]\nstart_after = "1 hour"\n`), /wave 1 .*fleet_percentage is missing/);
  assert.throws(
    () => parseWavePolicy(`[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 50\n[[waves]]\nstart_after = "2 hours"\nfleet_percentage = 20\n`),
    /wave 2 .*not above/,
  );
  assert.throws(() => parseWavePolicy(`[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 5\nfleet = 1\n`), /wave 1: unknown key/);
  // Ascending in seed but not in time: caught when converted.
  const p = parseWavePolicy(`[[waves]]\nstart_after = "2 hours"\nfleet_percentage = 5\n[[waves]]\nstart_after = "1 hour"\nfleet_percentage = 50\n`);
  assert.throws(() => wavesFromPolicy(p, T0), /wave 2: start_after "1 hour" is not after/);
});

test("updateReady: no waves → ready", () => {
  assert.equal(updateReady({}, 100, T0), true);
});

test("updateReady: Initial wave (seed 0 with key 0) is ready at once, even before it starts", () => {
  assert.equal(updateReady({ "0": iso(1000), "1024": iso(2000) }, 0, T0), true);
});

test("updateReady: Last wave waits for its start", () => {
  const waves = { "0": iso(-3 * 3600_000), "256": iso(-2 * 3600_000), "512": iso(-1 * 3600_000) };
  assert.equal(updateReady(waves, 1024, T0), true); // Bottlerocket's test_update_ready_final_wave
  const later = { "0": iso(0), "512": iso(1000) };
  assert.equal(updateReady(later, 1024, at(999)), false);
  assert.equal(updateReady(later, 1024, at(1000)), true);
});

test("updateReady: single wave 0..2048 over 2048 ms maps seed n to n ms (Bottlerocket's test)", () => {
  const waves = { "0": iso(0), [String(MAX_SEED)]: iso(MAX_SEED) };
  for (let seed = 100; seed < 500; seed += 100) {
    assert.equal(updateReady(waves, seed, at(seed - 1)), false, `seed ${seed} at ${seed - 1} ms`);
    assert.equal(updateReady(waves, seed, at(seed)), true, `seed ${seed} at ${seed} ms`);
  }
});

// Bottlerocket's add_test_waves: 0 → t, 50 → t+200, 100 → t+1024, 1024 → t+4096 (ms).
const testWaves = { "0": iso(0), "50": iso(200), "100": iso(1024), "1024": iso(4096) };

test("updateReady: General wave position multiplies by the ABSOLUTE seed (Bottlerocket quirk)", () => {
  const seed = 60; // second wave: start 50 @200 ms, end 100 @1024 ms
  for (let ms = 0; ms < 200; ms += 10) assert.equal(updateReady(testWaves, seed, at(ms)), false, `${ms} ms: before its wave`);
  // time per seed = (1024-200)/(100-50) = 16.48 ms; target = 200 + 16.48 * 60 = 1188.8 ms,
  // past the wave's end (1024 ms): with the quirk the host waits for the end of its wave.
  assert.equal(updateReady(testWaves, seed, at(1023)), false);
  assert.equal(updateReady(testWaves, seed, at(1024)), true);
  // Third wave (seeds 100..1024 over 1024..4096 ms, 3.3247 ms per seed): seed 148 → 1024 + 492.05 ms.
  const target = 1024 + ((4096 - 1024) / (1024 - 100)) * 148;
  assert.equal(updateReady(testWaves, 148, at(Math.floor(target) - 1)), false);
  assert.equal(updateReady(testWaves, 148, at(Math.ceil(target))), true);
  // Relative seed (148 - 100 = 48) would have made it ready by 1024 + 160 ms: the quirk says no.
  assert.equal(updateReady(testWaves, 148, at(1024 + 200)), false);
  assert.equal(updateReady(testWaves, 148, at(4096)), true);
});

test("updateReady: boundary seeds belong to the wave that ends at them", () => {
  // seed 50 is the end key of wave 0..50: General(start 0 @0, end 50 @200); 4 ms per seed; target 200.
  assert.equal(updateReady(testWaves, 50, at(199)), false);
  assert.equal(updateReady(testWaves, 50, at(200)), true);
  // seed 1 in the first wave: ready at 4 ms.
  assert.equal(updateReady(testWaves, 1, at(3)), false);
  assert.equal(updateReady(testWaves, 1, at(4)), true);
});
