/** The import graph of a module, for the SDK's boundary and package tests. */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";

/** A package has far fewer modules; the walk stops rather than run away on a bug. */
const modulesMax = 200;

/** Every module specifier in `source`: import/export … from, bare import, import(). */
export function specifiersOf(source: string): string[] {
  const forms = [
    /^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']/gms,
    /^\s*import\s*["']([^"']+)["']/gm,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  return forms.flatMap((form) => [...source.matchAll(form)].map((m) => m[1] ?? ""));
}

export interface ImportGraph {
  /** Absolute paths of the modules reached, `start` first. */
  readonly modules: string[];
  /** Bare specifiers (packages, node: built-ins) used by any of them. */
  readonly packages: string[];
}

/**
 * Follows every relative import from `start`. `fileOf` maps a specifier as written
 * (`./x.js`) to the file that holds it (`./x.ts` in sources, `./x.d.ts` for declarations).
 */
export async function importGraph(
  start: string,
  fileOf: (specifier: string) => string,
): Promise<ImportGraph> {
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
      const target = resolve(dirname(file), fileOf(spec));
      if (!seen.has(target)) {
        seen.add(target);
        queue.push(target);
      }
    }
  }
  return { modules: [...seen], packages: [...packages] };
}
