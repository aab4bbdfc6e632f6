// Proves that the crash-recovery demo (deploy/demo/crash-demo.ts) still does what the README
// says: the node SIGKILLs itself after its 4th durable commit decision with 10 transfers in
// flight, restarts and recovers, and every check of every store holds (exit 0, ALL CHECKS HOLD).
// It runs the compiled node (test.sh builds dist/ before the suites).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { projectDir } from "../unit/deploy/deploy-files.js";

void test("the crash-recovery demo ends with every check holding", () => {
  const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const r = spawnSync("npx", ["tsx", join(projectDir, "deploy/demo/crash-demo.ts")], {
    cwd: projectDir,
    env,
    encoding: "utf8",
    timeout: 180_000,
  });
  const output = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, output.slice(-4000));
  assert.match(output, /ALL CHECKS HOLD/);
});
