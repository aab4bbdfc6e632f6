// Proves the SDK stays light: its modules import only node: built-ins, pg types,
// the participant's service-branch helper, each other, and — type-only — the API
// contract; nothing from coordinator/ reaches the SDK at run time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const clientDir = fileURLToPath(new URL("../../../client/", import.meta.url));

test("client/ imports coordinator/ only as types, and no other package than pg types", async () => {
  const files = (await readdir(clientDir)).filter((f) => f.endsWith(".ts"));
  assert.ok(files.includes("index.ts"));
  for (const file of files) {
    const source = await readFile(clientDir + file, "utf8");
    const imports = [...source.matchAll(/^(import|export)(\s+type)?[^;]*?from\s+"([^"]+)";/gms)];
    assert.ok(imports.length > 0, `${file} has imports`);
    for (const [statement, , typeOnly, from = ""] of imports) {
      if (from.includes("/coordinator/")) {
        assert.ok(typeOnly, `${file}: runtime import from coordinator/: ${statement}`);
        assert.ok(from.startsWith("../coordinator/api/contract/"), `${file}: ${from}`);
      } else if (!from.startsWith("./") && !from.startsWith("node:")) {
        const allowed =
          (from === "pg" && typeOnly !== undefined) ||
          from === "../participants/postgres/service-branch.js";
        assert.ok(allowed, `${file}: unexpected import ${from}`);
      }
    }
  }
});
