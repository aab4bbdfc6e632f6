// Proves that test.sh never skips a suite silently: in a sandbox (a copy of test.sh with the
// installer, the services script, npm and npx stubbed out, so nothing is installed, started or
// built), a named suite with no test file, the default list when one of its suites has none,
// and an unknown suite name each fail the run, naming the suite, before anything runs; a suite
// with a file runs it and passes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { projectDir } from "./deploy-files.js";

let sandbox: string;
const stub = "#!/usr/bin/env bash\nexit 0\n";

async function writeStub(path: string): Promise<void> {
  await writeFile(path, stub);
  await chmod(path, 0o755);
}

before(async () => {
  sandbox = await mkdtemp(join(tmpdir(), "verdict-test-sh-"));
  await copyFile(join(projectDir, "test.sh"), join(sandbox, "test.sh"));
  for (const dir of ["scripts", "deploy/local", "bin", ".local", "test/unit"]) {
    await mkdir(join(sandbox, dir), { recursive: true });
  }
  await writeStub(join(sandbox, "scripts/setup-node.sh"));
  await writeStub(join(sandbox, "deploy/local/local.sh"));
  await writeStub(join(sandbox, "bin/npx"));
  await writeStub(join(sandbox, "bin/npm"));
  await writeFile(join(sandbox, ".local/services.env"), "");
  await symlink(join(projectDir, "node_modules"), join(sandbox, "node_modules"));
  await writeFile(
    join(sandbox, "test/unit/one.test.ts"),
    'import { test } from "node:test";\ntest("one", () => {});\n',
  );
});

after(async () => {
  await rm(sandbox, { recursive: true, force: true });
});

function run(...suites: string[]) {
  // Without the runner's own context, or the inner runner would not run its files.
  const { NODE_TEST_CONTEXT: _context, ...env } = process.env;
  const r = spawnSync("bash", ["test.sh", ...suites], {
    cwd: sandbox,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...env, PATH: `${join(sandbox, "bin")}:${env.PATH ?? ""}` },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

describe("test.sh and suites without files", () => {
  test("a suite with a file runs it", () => {
    const r = run("unit");
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /tests: 1 passed, 0 failed/);
  });

  test("a named suite with no file fails the run, naming it", () => {
    const r = run("unit", "outage");
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /suite 'outage' has no test files/);
    assert.doesNotMatch(r.output, /== unit/, "nothing runs");
  });

  test("the default list fails when one of its suites has no file", () => {
    const r = run();
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /suite 'chaos' has no test files/);
  });

  test("an unknown suite name fails the run", () => {
    const r = run("sim");
    assert.notEqual(r.status, 0, r.output);
    assert.match(r.output, /unknown suite 'sim'/);
  });
});
