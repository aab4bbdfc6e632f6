/**
 * Runs the compiled CLI (`node dist/coordinator/cli/main.js …`) as a child process, the way an
 * operator does, and collects its exit code and output. Each run is bounded in time and
 * output. The admin token reaches it only through the environment, as in real use.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
/** VERDICT_TEST_CLI runs another build, as in test/support/process-node.ts. */
const cliPath = process.env.VERDICT_TEST_CLI ?? join(root, "dist/coordinator/cli/main.js");
const runTimeoutMs = 30_000;
const outputCharsMax = 4 * 1024 * 1024;
const buildTimeoutMs = 180_000;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Builds dist/ when the compiled admin and log commands are missing (an older build). */
export function ensureCliBuilt(): void {
  const needed = ["admin/command.js", "log/dump.js"].map((f) => join(dirname(cliPath), f));
  if (needed.every((f) => existsSync(f))) return;
  // tsc emits even when another file fails to type-check; what matters is the output.
  spawnSync("npm", ["run", "-s", "build"], {
    cwd: root,
    stdio: "inherit",
    timeout: buildTimeoutMs,
  });
  for (const f of needed) if (!existsSync(f)) throw new Error(`build did not produce ${f}`);
}

/**
 * Runs `verdict <args>`. The environment is this process's without any VERDICT_ADMIN_TOKEN
 * or VERDICT_URL (so a developer's shell cannot leak in), plus `env`.
 */
export function runCli(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  delete childEnv.VERDICT_ADMIN_TOKEN;
  delete childEnv.VERDICT_URL;
  Object.assign(childEnv, env);
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: root,
      env: childEnv,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    const collect = (append: (s: string) => void) => (chunk: Buffer) => {
      append(chunk.toString("utf8"));
      if (stdout.length + stderr.length > outputCharsMax) child.kill("SIGKILL");
    };
    child.stdout.on(
      "data",
      collect((s) => (stdout += s)),
    );
    child.stderr.on(
      "data",
      collect((s) => (stderr += s)),
    );
    const timer = setTimeout(() => child.kill("SIGKILL"), runTimeoutMs);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== null) {
        reject(new Error(`verdict ${args.join(" ")} killed (${signal}); stderr: ${stderr}`));
      } else {
        resolveRun({ code, stdout, stderr });
      }
    });
  });
}

/** sha256 of every file under `dir` (recursively), by relative path: a directory's fingerprint. */
export async function hashTree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: string): Promise<void> => {
    for (const e of await readdir(join(dir, rel), { withFileTypes: true })) {
      const path = join(rel, e.name);
      if (e.isDirectory()) await walk(path);
      else
        out.set(
          path,
          createHash("sha256")
            .update(await readFile(join(dir, path)))
            .digest("hex"),
        );
    }
  };
  await walk("");
  return out;
}

/** Describes a result for assertion messages. */
export function shown(r: CliResult): string {
  return `exit ${r.code}\nstdout:\n${r.stdout.slice(0, 3000)}\nstderr:\n${r.stderr.slice(0, 3000)}`;
}
