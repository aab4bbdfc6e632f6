/**
 * The repository's root (the directory holding package.json), found from this file whether it
 * runs from the sources (test/support/) or compiled (dist/test/support/): benches run from
 * dist/ spawn the same CLI as the tests do.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = findRepoRoot();

/** At most three levels above this file's directory. */
function findRepoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let level = 0; level < 3; level++) {
    dir = dirname(dir);
    if (existsSync(join(dir, "package.json"))) return dir;
  }
  throw new Error("cannot find the repository root (package.json) above test/support/");
}
