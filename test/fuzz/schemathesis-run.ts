/**
 * Runs Schemathesis (installed by scripts/fuzz-setup.sh) against a node's /openapi.json and
 * reads back what it did: its exit status, its console report, and from the HAR file it
 * writes, how many requests it sent and the statuses they were answered with.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Check settings (schemathesis.toml beside this file: which statuses reject invalid data). */
const configFile = fileURLToPath(new URL("./schemathesis.toml", import.meta.url));

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const setupTimeoutMs = 300_000;
/** The run's own `--max-time` plus room to finish the phase in progress and write reports. */
const overrunMs = 60_000;

/** Path of the `st` executable, after installing it if needed (idempotent). */
export function installSchemathesis(): string {
  const r = spawnSync(join(root, "scripts/fuzz-setup.sh"), {
    encoding: "utf8",
    timeout: setupTimeoutMs,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const st = r.stdout.trim();
  if (r.status !== 0 || st === "") throw new Error(`fuzz-setup.sh failed (status ${r.status})`);
  return st;
}

export interface FuzzRun {
  readonly url: string;
  readonly token: string;
  readonly mode: "positive" | "negative" | "all";
  readonly phases: readonly ("examples" | "coverage" | "fuzzing" | "stateful")[];
  readonly maxExamples: number;
  readonly maxTimeS: number;
  readonly seed: number;
}

export interface FuzzResult {
  readonly exitCode: number | null;
  /** Schemathesis's console report (failures, with a curl line to reproduce each). */
  readonly output: string;
  /** Requests sent, by the status class they were answered with (`2xx`, `4xx`, `5xx`…). */
  readonly requestsByClass: Readonly<Record<string, number>>;
  readonly requests: number;
  /**
   * xids of the transactions its accepted (2xx) calls named: in a begin's answer or a call's
   * path. Even `--mode negative` sends some valid requests (e.g. an optional field left out).
   */
  readonly acceptedXids: ReadonlySet<string>;
}

export async function runSchemathesis(st: string, run: FuzzRun): Promise<FuzzResult> {
  const dir = await mkdtemp(join(tmpdir(), "verdict-fuzz-"));
  try {
    const args = [
      // Global options go before the command.
      `--config-file=${configFile}`,
      "run",
      `${run.url}/openapi.json`,
      "--checks=all",
      `--header=Authorization: Bearer ${run.token}`,
      `--mode=${run.mode}`,
      // The console's event stream never ends by itself: each case would hold the request
      // timeout (a transaction's stream ends with its transaction, and unknown xids answer 404).
      "--exclude-path=/admin/v1/events",
      // Nothing can be made invalid for these two (their only input is an optional free-text
      // header), so negative mode cannot generate for them; the other runs cover them.
      ...(run.mode === "negative"
        ? ["--exclude-path=/admin/v1/cluster", "--exclude-path=/admin/v1/participants"]
        : []),
      `--phases=${run.phases.join(",")}`,
      `--max-examples=${run.maxExamples}`,
      `--max-time=${run.maxTimeS}`,
      `--seed=${run.seed}`,
      // One worker: Python 3.11's compile() is not thread-safe, and Hypothesis under two
      // workers sometimes fails with "AST constructor recursion depth mismatch".
      "--workers=1",
      "--request-timeout=15",
      "--generation-database=none",
      "--no-color",
      "--report=har",
      `--report-dir=${dir}`,
    ];
    // Long runs spend longer loading and writing their report after --max-time: a fifth more.
    const boundMs = run.maxTimeS * 1000 + Math.max(overrunMs, run.maxTimeS * 200);
    const { exitCode, output } = await spawnBounded(st, args, dir, boundMs);
    const entries = await harEntries(dir);
    const requestsByClass = statusClasses(entries);
    return {
      exitCode,
      output,
      requestsByClass,
      requests: entries.length,
      acceptedXids: acceptedXids(entries),
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function spawnBounded(
  cmd: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<{ exitCode: number | null; output: string }> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
      output += chunk.toString("utf8");
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", fail);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      done({ exitCode: code, output: signal ? `${output}\n(killed: ${signal})` : output });
    });
  });
}

interface HarEntry {
  readonly request: { readonly url: string };
  readonly response: { readonly status: number; readonly content?: { readonly text?: string } };
}

async function harEntries(dir: string): Promise<readonly HarEntry[]> {
  const harFile = (await readdir(dir)).find((f) => f.startsWith("har-"));
  if (!harFile) return [];
  const har = JSON.parse(await readFile(join(dir, harFile), "utf8")) as {
    log: { entries: HarEntry[] };
  };
  return har.log.entries;
}

function statusClasses(entries: readonly HarEntry[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of entries) {
    const cls = e.response.status === 0 ? "none" : `${Math.floor(e.response.status / 100)}xx`;
    counts[cls] = (counts[cls] ?? 0) + 1;
  }
  return counts;
}

function acceptedXids(entries: readonly HarEntry[]): Set<string> {
  const xids = new Set<string>();
  for (const e of entries) {
    if (e.response.status < 200 || e.response.status > 299) continue;
    const inPath = /\/transactions\/([^/?]+)/.exec(new URL(e.request.url).pathname)?.[1];
    if (inPath) xids.add(decodeURIComponent(inPath));
    try {
      const body = JSON.parse(e.response.content?.text ?? "null") as { xid?: unknown } | null;
      if (typeof body?.xid === "string") xids.add(body.xid);
    } catch {
      // Not JSON (a probe's text answer): names no transaction.
    }
  }
  return xids;
}
