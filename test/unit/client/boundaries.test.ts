// Proves the SDK can ship alone: the import graph of client/index.ts — every static,
// type-only and dynamic import, followed module by module — stays inside client/ and the
// neutral shared/ and reaches no package but node: built-ins. A module of coordinator/ or
// participants/ (even a type) would be missing from the published package, so it fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../../../", import.meta.url));
const entry = resolve(repo, "client/index.ts");
/** A project has far fewer modules; the walk stops rather than run away on a bug. */
const modulesMax = 200;

/** Every module specifier in `source`: import/export … from, bare import, import(). */
function specifiersOf(source: string): string[] {
  const forms = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gms,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return forms.flatMap((form) => [...source.matchAll(form)].map((m) => m[1] ?? ""));
}

/** The modules reachable from `start`, and the bare (package) specifiers they use. */
async function importGraph(start: string): Promise<{ modules: string[]; packages: string[] }> {
  const seen = new Set([start]);
  const packages = new Set<string>();
  const queue = [start];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    assert.ok(seen.size <= modulesMax, `more than ${modulesMax} modules`);
    for (const spec of specifiersOf(await readFile(file, "utf8"))) {
      if (!spec.startsWith(".")) {
        packages.add(spec);
        continue;
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
      if (!seen.has(target)) {
        seen.add(target);
        queue.push(target);
      }
    }
  }
  return { modules: [...seen].map((m) => relative(repo, m)), packages: [...packages] };
}

test("client/index.ts reaches only client/ and shared/ modules and node: built-ins", async () => {
  const { modules, packages } = await importGraph(entry);
  for (const module of ["client/client.ts", "client/postgres.ts", "shared/postgres/gid.ts"]) {
    assert.ok(modules.includes(module), `the walk reached ${module}`);
  }
  const outside = modules.filter((m) => !/^(client|shared)\//.test(m));
  assert.deepEqual(outside, [], "modules outside client/ and shared/");
  assert.deepEqual(
    packages.filter((p) => !p.startsWith("node:")),
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
