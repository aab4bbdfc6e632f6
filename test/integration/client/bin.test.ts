/**
 * Proves the CLI is an npm `bin`: the root package.json maps `verdict` to a file of the
 * compiled build that starts with a `#!/usr/bin/env node` line, and running that file with
 * `--help` prints the usage and exits 0. Needs `npm run build` first.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoDir } from "../../unit/client/run-tsc.js";

const run = promisify(execFile);

test("bin verdict → the compiled CLI with a node shebang; --help prints the usage", async () => {
  const manifest = JSON.parse(await readFile(join(repoDir, "package.json"), "utf8")) as {
    bin?: Record<string, string>;
  };
  const target = manifest.bin?.verdict;
  assert.equal(target, "dist/coordinator/cli/main.js");
  const file = join(repoDir, target);
  const source = await readFile(file, "utf8").catch(() =>
    assert.fail(`${file}: run npm run build`),
  );
  assert.equal(source.split("\n", 1)[0], "#!/usr/bin/env node");
  const { stdout } = await run(process.execPath, [file, "--help"], { timeout: 30_000 });
  assert.match(stdout, /^usage: verdict <command>/);
  assert.match(stdout, /start --config FILE/);
});
