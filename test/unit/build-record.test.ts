// build.json's one reader (src/image/build.ts, readBuildRecord): what the repository tool and the
// offline slot tools (test/helpers/offline.ts, bench/image.ts) take from a build's output directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBuildRecord } from "../../src/image/build.js";
import { fakeBuild } from "../helpers/fake-build.js";

test("readBuildRecord returns the record a build wrote, and names what is wrong with a bad one", () => {
  const dir = mkdtempSync(join(tmpdir(), "caisson-build-record-"));
  try {
    assert.throws(() => readBuildRecord(join(dir, "nowhere")), /nowhere\/build\.json not found/);
    const record = fakeBuild(dir, { version: "1.2.3" });
    assert.deepEqual(readBuildRecord(dir), record);
    const path = join(dir, "build.json");
    const good = readFileSync(path, "utf8");
    const edit = (f: (j: Record<string, unknown>) => void) => {
      const j = JSON.parse(good) as Record<string, unknown>;
      f(j);
      writeFileSync(path, JSON.stringify(j));
    };
    writeFileSync(path, "{");
    assert.throws(() => readBuildRecord(dir), /build\.json is not valid JSON/);
    edit((j) => delete j.roothash);
    assert.throws(() => readBuildRecord(dir), /"roothash" is missing/);
    edit((j) => (j["kernel-parameters"] = "quiet"));
    assert.throws(() => readBuildRecord(dir), /"kernel-parameters" is missing/);
    edit((j) => (j["boot-tries"] = 1.5));
    assert.throws(() => readBuildRecord(dir), /"boot-tries" is missing/);
    edit((j) => delete (j.files as Record<string, unknown>).verity);
    assert.throws(() => readBuildRecord(dir), /files\.verity is missing \(was the build interrupted\?\)/);
    writeFileSync(path, good);
    rmSync(join(dir, "initrd.img"));
    assert.throws(() => readBuildRecord(dir), /initrd\.img \(files\.initrd of .*\) does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
