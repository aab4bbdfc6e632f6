// Proves the engine's behaviour in named scenarios, step by step: each transcript in
// transcripts/ is re-run through the engine (transcript.ts) and its printed outputs must match
// the expected ones exactly. After an intended change, regenerate with REWRITE=1 and review
// the diff of the .txt files.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { replay } from "./transcript.js";

const dir = join(import.meta.dirname, "transcripts");
const rewrite = process.env.REWRITE === "1";

describe("engine transcripts", () => {
  const files = readdirSync(dir).filter((f) => f.endsWith(".txt"));
  test("there are transcripts to run", () => assert.ok(files.length >= 8, files.join(" ")));
  for (const file of files) {
    test(file, () => {
      const path = join(dir, file);
      const expected = readFileSync(path, "utf8");
      const actual = replay(expected);
      if (rewrite) writeFileSync(path, actual);
      else assert.equal(actual, expected);
    });
  }
});
