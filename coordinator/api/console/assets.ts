/**
 * The web console's static files (console/ at the repository root: index.html, app.js,
 * app.css), read once when the server is built and served from memory. They are found from
 * this module's own place, in the sources (coordinator/api/console) or the build
 * (dist/coordinator/api/console): no working-directory assumption.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export interface ConsoleAsset {
  readonly body: Buffer;
  readonly contentType: string;
}

/** The console's files by the name they are served under (`/console/<name>`). */
const assetTypes = {
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
} as const;

/** The runbook the heuristic cases link to, served as text for the console's runbook page. */
const runbookType = "text/plain; charset=utf-8";

const candidateRoots = ["../../../", "../../../../"];

function repoRoot(): string | undefined {
  return candidateRoots
    .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
    .find((root) => existsSync(`${root}console/index.html`));
}

/**
 * The console's files, or undefined when they are not installed beside the code (an image
 * that copied only the build): the node then serves no console, and says so at /console.
 */
export function loadConsoleAssets(): ReadonlyMap<string, ConsoleAsset> | undefined {
  const root = repoRoot();
  if (root === undefined) return undefined;
  const assets = new Map<string, ConsoleAsset>();
  for (const [name, contentType] of Object.entries(assetTypes)) {
    assets.set(name, { body: readFileSync(`${root}console/${name}`), contentType });
  }
  if (existsSync(`${root}docs/runbook.md`)) {
    assets.set("runbook.md", {
      body: readFileSync(`${root}docs/runbook.md`),
      contentType: runbookType,
    });
  }
  return assets;
}
