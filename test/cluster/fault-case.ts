/**
 * One fault case: a fresh FaultCluster (private etcd, fresh world, three nodes), the mixed
 * load running, the fault, progress after it, then the checks (cluster-load.ts). Evidence of
 * a failed case (violations, every node's log, the etcd members' logs) is kept under
 * .local/cluster-faults/.
 */
import { cp, mkdir, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { checkAfterFault, ciLoad, describeVerdict, Load, type Verdict } from "./cluster-load.js";
import { FaultCluster, type FaultClusterOptions } from "./fault-cluster.js";

export const evidenceRoot = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "../../.local/cluster-faults",
);
/** Commits the load must reach before the fault, and again after it. */
const commitsBefore = 10;
const commitsAfter = 10;
const progressTimeoutMs = 30_000;
const settleTimeoutMs = 60_000;

export interface CaseResult {
  readonly verdict: Verdict;
  readonly evidenceDir: string | undefined;
  readonly line: string;
}

export async function runFaultCase(
  name: string,
  seed: number,
  /** The fault; what it returns are violations it saw (e.g. no progress). */
  fault: (fc: FaultCluster, load: Load) => Promise<string[] | void>,
  options: FaultClusterOptions & {
    /** The case's own expectations of the verdict (e.g. no failover): violations if not met. */
    readonly expect?: (v: Verdict) => string[];
  } = {},
): Promise<CaseResult> {
  const fc = await FaultCluster.create(options);
  const stamp = new Date().toISOString().replaceAll(":", "");
  const caseDir = join(
    evidenceRoot,
    `${name.replaceAll(/[^a-z0-9-]+/gi, "-")}-seed-${seed}-${stamp}`,
  );
  try {
    await fc.startAll();
    await fc.awaitLeader(20_000);
    const load = new Load(fc, { seed, ...ciLoad });
    const early: string[] = [];
    load.start();
    try {
      if (!(await load.awaitCommits(commitsBefore, progressTimeoutMs))) {
        early.push(`no ${commitsBefore} commits before the fault`);
      }
      early.push(...((await fault(fc, load)) ?? []));
      if (!(await load.awaitCommits(commitsAfter, progressTimeoutMs))) {
        early.push(`no ${commitsAfter} commits within ${progressTimeoutMs} ms after the fault`);
      }
    } finally {
      await load.stop();
    }
    const checked = await checkAfterFault(
      fc,
      load,
      settleTimeoutMs,
      join(caseDir, "linearizability"),
    );
    const verdict = {
      ...checked,
      violations: [...early, ...checked.violations, ...(options.expect?.(checked) ?? [])],
    };
    const evidenceDir =
      verdict.violations.length > 0 ? await saveEvidence(caseDir, fc, verdict) : undefined;
    return { verdict, evidenceDir, line: `${name} (seed ${seed}): ${describeVerdict(verdict)}` };
  } finally {
    await fc.destroy();
  }
}

async function saveEvidence(dir: string, fc: FaultCluster, v: Verdict): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "violations.txt"), `${v.violations.join("\n")}\n`);
  for (const n of fc.nodes.nodes) await writeFile(join(dir, `${n.id}.log`), n.readLog());
  await cp(fc.etcd.logDir, join(dir, "etcd"), { recursive: true }).catch(() => undefined);
  return dir;
}
