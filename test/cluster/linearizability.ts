/**
 * Checks a History per transaction with Porcupine (scripts/linearizability/: each xid is an
 * object moving active → preparing → committed | aborted, never back). The checker binary is
 * built once per machine by scripts/linearizability.sh and cached under ~/.cache/verdict/.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { HistoryOp } from "./history.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const buildTimeoutMs = 300_000;
/** Porcupine's bound per transaction; a transaction's history is a handful of calls. */
const perTransactionTimeout = "10s";
const checkTimeoutMs = 120_000;
const historyBytesMax = 512 * 1024 * 1024;

export interface LinearizabilityResult {
  readonly ok: boolean;
  readonly transactions: number;
  /** xids that are not linearizable (or whose check timed out), with the result word. */
  readonly failures: readonly { xid: string; result: string; visualization?: string }[];
}

let checkerPath: string | undefined;

/** The checker binary (built on first use). */
export function linearizabilityChecker(): string {
  checkerPath ??= execFileSync(join(root, "scripts/linearizability.sh"), {
    encoding: "utf8",
    timeout: buildTimeoutMs,
  }).trim();
  return checkerPath;
}

/** Checks `ops`; with `visualizeDir`, each failing transaction gets an HTML page there. */
export function checkLinearizable(
  ops: readonly HistoryOp[],
  visualizeDir?: string,
): LinearizabilityResult {
  const args = visualizeDir === undefined ? [] : ["-visualize", visualizeDir];
  const run = spawnSync(linearizabilityChecker(), ["-timeout", perTransactionTimeout, ...args], {
    input: JSON.stringify({ operations: ops }),
    encoding: "utf8",
    timeout: checkTimeoutMs,
    maxBuffer: historyBytesMax,
  });
  if (run.status !== 0 && run.status !== 1) {
    throw new Error(`the linearizability checker failed (${run.status}): ${run.stderr}`);
  }
  const out = JSON.parse(run.stdout) as {
    ok: boolean;
    transactions: { xid: string; result: string; visualization?: string }[];
  };
  return {
    ok: out.ok,
    transactions: out.transactions.length,
    failures: out.transactions.filter((t) => t.result !== "Ok"),
  };
}
