/** Runs the repository's tsc on one tsconfig; for the SDK's type-level tests. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const repoDir = fileURLToPath(new URL("../../../", import.meta.url));
const tsc = fileURLToPath(new URL("../../../node_modules/typescript/bin/tsc", import.meta.url));

/** tsc's diagnostics for `project` (a tsconfig path): "" when it type-checks. */
export async function tscErrors(project: string): Promise<string> {
  try {
    await run(process.execPath, [tsc, "-p", project], { timeout: 120_000 });
    return "";
  } catch (err) {
    const stdout = (err as { stdout?: unknown }).stdout;
    return typeof stdout === "string" && stdout !== "" ? stdout : (err as Error).message;
  }
}
