// Proves that lint holds the module boundaries of eslint.config.js: a participant or a
// configuration module importing the API (coordinator/api/**) is an error, and the same
// module importing the neutral branch-work module is not. Each probe is a file written for
// the moment of the lint (typed linting needs it on disk, inside the project) and removed.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { ESLint } from "eslint";

const eslint = new ESLint({ cwd: process.cwd() });
const ban = "import-x/no-restricted-paths";

/** The rules `code` breaks as the file `dir/<probe>.ts`. */
async function ruleIds(dir: string, code: string): Promise<string[]> {
  const file = `${dir}/boundary-probe-${process.pid}.ts`;
  await writeFile(file, code);
  try {
    const [result] = await eslint.lintFiles([file]);
    assert.ok(result, "ESLint returned no result");
    return result.messages.map((m) => m.ruleId ?? `fatal: ${m.message}`);
  } finally {
    await rm(file, { force: true });
  }
}

const importing = (what: string, from: string) =>
  `import type { ${what} } from "${from}";\nexport type Probe = ${what};\n`;

describe("lint boundaries", () => {
  test("participants may not import the API", async () => {
    const code = importing("Schemas", "../../coordinator/api/contract/schemas.js");
    assert.deepEqual(await ruleIds("participants/redis", code), [ban]);
  });

  test("configuration may not import the API", async () => {
    const code = importing("Schemas", "../api/contract/schemas.js");
    assert.deepEqual(await ruleIds("coordinator/config", code), [ban]);
  });

  test("both may import the neutral branch-work module", async () => {
    const code = importing("BranchWork", "../../shared/branch-work.js");
    assert.deepEqual(await ruleIds("participants/redis", code), []);
    assert.deepEqual(await ruleIds("coordinator/config", code), []);
  });
});
