/**
 * The faults the cluster tests make, each one done and undone (the node restarted, the link
 * healed, the etcd member back) so that the next can follow: the single cases of
 * faults.test.ts call them one at a time, the nemesis (`runNemesis`) draws them at random
 * from a seed for as long as it is asked, under the mixed load, and checks everything at the
 * end (docs/cluster-faults.md).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { failpointNames, type FailpointName } from "../../coordinator/failpoints/failpoints.js";
import { seededRandom, type SeededRandom } from "../unit/log/seeded-random.js";
import type { Load } from "./cluster-load.js";
import { runFaultCase, type CaseResult } from "./fault-case.js";
import type { FaultCluster } from "./fault-cluster.js";

export const failoverTimeoutMs = 20_000;
/** Commits the load must make after each nemesis fault. */
const commitsBetween = 3;
const progressTimeoutMs = 30_000;

export type FaultKind =
  | "kill-leader"
  | "kill-node"
  | "pause-leader"
  | "cut-leader"
  | "kill-etcd-leader"
  | "kill-two-etcd"
  | "wipe-leader"
  | "handover"
  | "failpoint";

export const faultKinds: readonly FaultKind[] = [
  "kill-leader",
  "kill-node",
  "pause-leader",
  "cut-leader",
  "kill-etcd-leader",
  "kill-two-etcd",
  "wipe-leader",
  "handover",
  "failpoint",
];

/** Waits for a leader of a later term than `term`, other than `not` if given. */
function awaitNextTerm(fc: FaultCluster, term: number, not?: string) {
  return fc.awaitLeader(failoverTimeoutMs, (l) => l.term > term && l.nodeId !== not);
}

export const faults: Record<FaultKind, (fc: FaultCluster, random: SeededRandom) => Promise<void>> =
  {
    async "kill-leader"(fc) {
      const { node, term } = await fc.leaderNode();
      await node.signal("SIGKILL");
      await awaitNextTerm(fc, term);
      await node.start();
    },
    async "kill-node"(fc, random) {
      const node = fc.nodes.nodes[random.int(0, fc.nodes.nodes.length - 1)];
      await node?.signal("SIGKILL");
      await node?.start();
    },
    /** Paused past its lease, then resumed: it must find itself deposed and stay quiet. */
    async "pause-leader"(fc) {
      const { node, term } = await fc.leaderNode();
      await node.signal("SIGSTOP");
      await awaitNextTerm(fc, term, node.id);
      await sleep(fc.leaseTtlMs);
      await node.signal("SIGCONT");
    },
    async "cut-leader"(fc) {
      const { node, term } = await fc.leaderNode();
      node.cutFromEtcd();
      await awaitNextTerm(fc, term, node.id);
      node.healEtcd();
    },
    async "kill-etcd-leader"(fc) {
      const member = await fc.etcd.leader();
      await fc.etcd.signal(member, "SIGKILL");
      await sleep(2_000);
      await fc.etcd.restart(member);
    },
    async "kill-two-etcd"(fc) {
      const first = await fc.etcd.leader();
      const second = first === 1 ? 2 : 1;
      await fc.etcd.signal(first, "SIGKILL");
      await fc.etcd.signal(second, "SIGKILL");
      await sleep(fc.leaseTtlMs);
      await fc.etcd.restart(first);
      await fc.etcd.restart(second);
    },
    async "wipe-leader"(fc) {
      const { node, term } = await fc.leaderNode();
      await node.signal("SIGKILL");
      await node.wipe();
      await awaitNextTerm(fc, term);
      await node.start();
    },
    /** A graceful handover (POST /admin/v1/cluster/leadership) to whichever node wins. */
    async handover(fc) {
      const { node, term } = await fc.leaderNode();
      const res = await fetch(`${node.url}/admin/v1/cluster/leadership`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${fc.nodes.adminToken}`,
          "content-type": "application/json",
        },
        body: "{}",
        signal: AbortSignal.timeout(15_000),
      });
      if (res.status >= 300) throw new Error(`handover: ${res.status} ${await res.text()}`);
      await awaitNextTerm(fc, term);
    },
    /** The standbys restart armed with random failpoints, then the leader dies: one of them leads. */
    async failpoint(fc, random) {
      await armStandbys(fc, () => {
        const name = failpointNames[random.int(0, failpointNames.length - 1)] ?? "before-prepare";
        return `${name}=crash@${random.int(1, 3)}`;
      });
      await faults["kill-leader"](fc, random);
    },
  };

/** Restarts every standby with the failpoints `spec()` gives it (the leader keeps running). */
export async function armStandbys(fc: FaultCluster, spec: () => string): Promise<void> {
  const { node: leader } = await fc.leaderNode();
  for (const n of fc.nodes.nodes) {
    if (n === leader) continue;
    await n.signal("SIGKILL");
    await n.start(spec());
  }
}

/** The failpoints that fired (crashed a node) in the cluster's node logs, by name. */
export function firedFailpoints(fc: FaultCluster): Map<FailpointName, number> {
  const fired = new Map<FailpointName, number>();
  for (const n of fc.nodes.nodes) {
    for (const m of n.readLog().matchAll(/^failpoint ([a-z-]+): crash$/gm)) {
      const name = m[1] as FailpointName;
      fired.set(name, (fired.get(name) ?? 0) + 1);
    }
  }
  return fired;
}

export interface NemesisOptions {
  readonly seed: number;
  /** Faults are drawn until this much time has passed (the last one still finishes). */
  readonly durationMs: number;
  readonly kinds: readonly FaultKind[];
  readonly say: (line: string) => void;
}

export interface NemesisResult extends CaseResult {
  readonly faults: Readonly<Record<string, number>>;
  readonly failpointsFired: Readonly<Record<string, number>>;
}

export async function runNemesis(o: NemesisOptions): Promise<NemesisResult> {
  const done: Record<string, number> = {};
  let fired: Record<string, number> = {};
  const result = await runFaultCase("nemesis", o.seed, async (fc, load) => {
    const random = seededRandom(o.seed);
    const stalls: string[] = [];
    const deadline = Date.now() + o.durationMs;
    for (let i = 1; Date.now() < deadline; i++) {
      const kind = o.kinds[random.int(0, o.kinds.length - 1)] ?? "kill-leader";
      await faults[kind](fc, random);
      done[kind] = (done[kind] ?? 0) + 1;
      await fc.healAll();
      const progressed = await progress(fc, load);
      if (!progressed) stalls.push(`no progress after fault ${i} (${kind})`);
      o.say(`fault ${i}: ${kind}; ${load.committed()} commits${progressed ? "" : " (STALLED)"}`);
    }
    fired = Object.fromEntries(firedFailpoints(fc));
    return stalls;
  });
  return { ...result, faults: done, failpointsFired: fired };
}

async function progress(fc: FaultCluster, load: Load): Promise<boolean> {
  try {
    await fc.awaitLeader(failoverTimeoutMs);
  } catch {
    return false;
  }
  return load.awaitCommits(commitsBetween, progressTimeoutMs);
}
