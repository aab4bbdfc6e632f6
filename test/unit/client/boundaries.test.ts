// Proves the SDK can ship alone: the import graph of client/index.ts — every static,
// type-only and dynamic import, followed module by module — stays inside client/ and the
// neutral shared/ and reaches no package but node: built-ins. A module of coordinator/ or
// participants/ (even a type) would be missing from the published package, so it fails here.
// (test/integration/client/package.test.ts checks the same of the packed files.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { relative, resolve } from "node:path";
import { importGraph, specifiersOf } from "./import-graph.js";
import { repoDir } from "./run-tsc.js";

test("client/index.ts reaches only client/ and shared/ modules and node: built-ins", async () => {
  const graph = await importGraph(resolve(repoDir, "client/index.ts"), (spec) =>
    spec.replace(/\.js$/, ".ts"),
  );
  const modules = graph.modules.map((m) => relative(repoDir, m));
  for (const module of ["client/client.ts", "client/postgres.ts", "shared/postgres/gid.ts"]) {
    assert.ok(modules.includes(module), `the walk reached ${module}`);
  }
  const outside = modules.filter((m) => !/^(client|shared)\//.test(m));
  assert.deepEqual(outside, [], "modules outside client/ and shared/");
  assert.deepEqual(
    graph.packages.filter((p) => !p.startsWith("node:")),
    [],
    "packages other than node: built-ins",
  );
});

test("the specifier scan sees every import form", () => {
  const source = [
    'import type { A } from "../coordinator/a.js";',
    "import {\n  b,\n  type C,\n} from '../participants/b.js';",
    'export * from "./c.js";',
    'import "./d.js";',
    'const e = await import("./e.js");',
  ].join("\n");
  assert.deepEqual(specifiersOf(source).sort(), [
    "../coordinator/a.js",
    "../participants/b.js",
    "./c.js",
    "./d.js",
    "./e.js",
  ]);
});
