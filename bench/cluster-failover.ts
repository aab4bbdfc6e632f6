/**
 * Leader changes of the 3-node cluster as a client sees them (docs/bench-cluster.md): under
 * light load, how long from the change until a transfer commits again through the SDK, given
 * every node's URL.
 *
 *   crash     SIGKILL the leader; time from the signal to the first commit of a transfer
 *             begun after it. The killed node is started again (a standby) before the next.
 *   handover  POST /admin/v1/cluster/leadership to the leader; time from sending it to the
 *             first commit of a transfer begun after its answer (the old leader has resigned
 *             by then, so that commit went through the new one).
 *
 * The light load is a prober: a new transfer every `probeIntervalMs` (at most
 * `probesInFlightMax` at once), so a commit is attempted within that interval of any
 * moment, whatever earlier transfers are still waiting on the SDK's retries.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { Etcd3 } from "etcd3";
import { VerdictClient } from "../client/index.js";
import { connectEtcd, connectionDefaults } from "../coordinator/log/etcd/client.js";
import { EtcdLayout } from "../coordinator/log/etcd/layout.js";
import { etcdEndpoints, type Cluster, type ClusterNode } from "../test/support/cluster.js";
import { metricsText } from "./breakdown.js";
import { takeoverTimes } from "./cluster-metrics.js";
import type { TransfersRun } from "./money.js";
import type { Scenario } from "./scenarios.js";

const probeIntervalMs = 50;
const probesInFlightMax = 16;
/** Transfers one prober begins at most (with the interval: over 4 minutes of probing). */
const probesMax = 5_000;
const pollMs = 10;
/** Distinct error messages a prober keeps (with their counts) to explain a failed trial. */
const errorSamplesMax = 3;
/** For the cluster to elect and serve between trials, and for the first commit of a trial. */
const settleTimeoutMs = 60_000;
const handoverCallTimeoutMs = 30_000;

export type TrialKind = "crash" | "handover";

export interface Trial {
  readonly kind: TrialKind;
  readonly fromId: string;
  /** The leader after the change ("?" when none was found in time). */
  readonly toId: string;
  /** From the change to the first commit begun after it; NaN when none came in time. */
  readonly ms: number;
  /** Where that time went, in ms after the change (absent: no commit, or no metrics). */
  readonly steps?: TrialSteps;
}

/**
 * The new leader's takeover (its /metrics, runner.ts's TakeoverSteps) and the prober's first
 * commit, each in ms after the change: nobody leads as the new leader saw it (the old lease
 * expired, or the key was deleted), campaign won, log opened, serving (replayed), the first
 * committed transfer began, and committed.
 */
export interface TrialSteps {
  /** etcd deleted the election key (the lease expired, or the leader resigned), as watched. */
  readonly keyGoneMs: number;
  readonly seenFreeMs: number;
  readonly wonMs: number;
  readonly openedMs: number;
  readonly servingMs: number;
  readonly commitBeganMs: number;
  readonly committedMs: number;
}

export const stepNames: readonly (keyof TrialSteps)[] = [
  "keyGoneMs",
  "seenFreeMs",
  "wonMs",
  "openedMs",
  "servingMs",
  "commitBeganMs",
  "committedMs",
];

export interface TrialsOptions {
  readonly cluster: Cluster;
  readonly kind: TrialKind;
  readonly trials: number;
  /** A trial without a commit this long after the change counts as timed out. */
  readonly trialTimeoutMs: number;
  /** The transfer, through the given client; its id should start with "A" (money.ts). */
  readonly scenario: (client: VerdictClient) => Scenario;
  /** Aborted: no further trial begins. */
  readonly signal: AbortSignal;
  readonly say: (line: string) => void;
}

/** Runs the trials one after another; the probers' transfers are returned for the money checks. */
export async function leaderChangeTrials(
  o: TrialsOptions,
): Promise<{ trials: Trial[]; runs: TransfersRun[] }> {
  const trials: Trial[] = [];
  const runs: TransfersRun[] = [];
  const etcd = connectEtcd({ endpoints: etcdEndpoints, ...connectionDefaults });
  try {
    for (let i = 1; i <= o.trials && !o.signal.aborted; i++)
      await oneTrial(o, i, etcd, trials, runs);
  } finally {
    etcd.close();
  }
  return { trials, runs };
}

/** One trial; its outcome and its probes' transfers are added to `trials` and `runs`. */
async function oneTrial(
  o: TrialsOptions,
  i: number,
  etcd: Etcd3,
  trials: Trial[],
  runs: TransfersRun[],
): Promise<void> {
  const { node: leader } = await o.cluster.waitForLeader({ timeoutMs: settleTimeoutMs });
  const client = new VerdictClient({ baseUrls: o.cluster.urls(), token: o.cluster.clientToken });
  const scenario = o.scenario(client);
  const prober = new Prober(() => scenario.run(0));
  const keyGone = await watchKeyGone(etcd, o.cluster.clusterId);
  let ms = Number.NaN;
  let steps: TrialSteps | undefined;
  try {
    if ((await prober.firstCommitSince(performance.now(), settleTimeoutMs)) === undefined)
      throw new Error(
        `${o.kind} trial ${i}: no commit within ${settleTimeoutMs} ms before it; ` +
          `errors: ${prober.errorText()}`,
      );
    const changedMs = performance.now();
    const probeFromMs = await change(o, leader);
    const commit = await prober.firstCommitSince(probeFromMs, o.trialTimeoutMs);
    if (commit !== undefined) {
      ms = commit.endMs - changedMs;
      steps = await takeoverSteps(o, leader, changedMs, commit, keyGone.atMs);
    }
  } finally {
    await keyGone.cancel();
    await prober.stop();
    client.close();
    runs.push({ scenario, result: { errors: prober.errors } });
  }
  if (o.kind === "crash") await leader.start();
  const toId = await o.cluster
    .waitForLeader({ timeoutMs: settleTimeoutMs })
    .then((l) => l.node.id)
    .catch(() => "?");
  trials.push({ kind: o.kind, fromId: leader.id, toId, ms, ...(steps && { steps }) });
  o.say(
    `  ${o.kind} ${i}/${o.trials}: ${leader.id} → ${toId}, first commit after ` +
      `${Number.isNaN(ms) ? `none (timed out; errors: ${prober.errorText()})` : `${Math.round(ms)} ms`} ` +
      `(probes: ${prober.ok} committed, ${prober.errors} failed` +
      (prober.errors > 0 ? `: ${prober.errorText()})` : ")") +
      (steps === undefined ? "" : `; ${stepsText(steps)}`),
  );
}

/** The new leader's takeover steps and the first commit, in ms after `changedMs`. */
async function takeoverSteps(
  o: TrialsOptions,
  from: ClusterNode,
  changedMs: number,
  commit: Commit,
  keyGoneAtMs: number,
): Promise<TrialSteps | undefined> {
  try {
    const { node } = await o.cluster.waitForLeader({ not: from.id, timeoutMs: settleTimeoutMs });
    const times = takeoverTimes(await metricsText(node.url));
    if (times === undefined) return undefined;
    const changedAtMs = performance.timeOrigin + changedMs;
    return {
      keyGoneMs: keyGoneAtMs - changedMs,
      seenFreeMs: times.seenFreeAtMs - changedAtMs,
      wonMs: times.wonAtMs - changedAtMs,
      openedMs: times.openedAtMs - changedAtMs,
      servingMs: times.servingAtMs - changedAtMs,
      commitBeganMs: commit.beganMs - changedMs,
      committedMs: commit.endMs - changedMs,
    };
  } catch {
    return undefined; // no leader to ask: the trial line says so
  }
}

/** When (performance.now) etcd deleted the election key first after this call; NaN: not yet. */
async function watchKeyGone(
  etcd: Etcd3,
  clusterId: string,
): Promise<{ readonly atMs: number; cancel(): Promise<void> }> {
  const at = { atMs: Number.NaN };
  const watcher = await etcd.watch().key(new EtcdLayout(clusterId).leader).create();
  watcher.on("delete", () => {
    if (Number.isNaN(at.atMs)) at.atMs = performance.now();
  });
  return {
    get atMs() {
      return at.atMs;
    },
    cancel: () => watcher.cancel(),
  };
}

export function stepsText(s: TrialSteps): string {
  return stepNames.map((k) => `${k.replace(/Ms$/, "")} ${Math.round(s[k])}`).join(", ");
}

/** Makes the change; answers from when transfers count (they must begin at or after it). */
async function change(o: TrialsOptions, leader: ClusterNode): Promise<number> {
  if (o.kind === "crash") {
    const killedMs = performance.now();
    await leader.kill("SIGKILL");
    return killedMs;
  }
  const res = await fetch(`${leader.url}/admin/v1/cluster/leadership`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${o.cluster.adminToken}`,
      "content-type": "application/json",
    },
    body: "{}",
    signal: AbortSignal.timeout(handoverCallTimeoutMs),
  });
  if (!res.ok) throw new Error(`handover: HTTP ${res.status} ${await res.text()}`);
  return performance.now();
}

interface Commit {
  /** performance.now when the transfer began and when it committed. */
  readonly beganMs: number;
  readonly endMs: number;
}

/** Light load: one new transfer per interval, bounded in flight and in count. */
class Prober {
  ok = 0;
  errors = 0;
  private launched = 0;
  private readonly inFlight = new Set<Promise<void>>();
  /** Begin and end (performance.now) of committed transfers, in the order they committed. */
  private readonly commits: Commit[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly errorCounts = new Map<string, number>();

  constructor(private readonly run: () => Promise<void>) {
    this.timer = setInterval(() => this.launch(), probeIntervalMs);
    this.launch();
  }

  /** The first transfer begun at or after `sinceMs` that committed; undefined if none in time. */
  async firstCommitSince(sinceMs: number, timeoutMs: number): Promise<Commit | undefined> {
    const deadlineMs = performance.now() + timeoutMs;
    while (performance.now() < deadlineMs) {
      const first = this.commits.find((c) => c.beganMs >= sinceMs);
      if (first !== undefined) return first;
      await sleep(pollMs);
    }
    return undefined;
  }

  /** The first distinct errors, with how often each was seen. */
  errorText(): string {
    return [...this.errorCounts].map(([message, n]) => `${n}× ${message}`).join("; ") || "none";
  }

  /** Begins no more; waits for those in flight (each bounded by the SDK's own limits). */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await Promise.all(this.inFlight);
  }

  private launch(): void {
    if (this.inFlight.size >= probesInFlightMax || this.launched >= probesMax) return;
    this.launched++;
    const beganMs = performance.now();
    const probe: Promise<void> = this.run()
      .then(
        () => {
          this.ok++;
          this.commits.push({ beganMs, endMs: performance.now() });
        },
        (err: unknown) => {
          this.errors++;
          const message = err instanceof Error ? err.message : String(err);
          const seen = this.errorCounts.get(message);
          if (seen !== undefined) this.errorCounts.set(message, seen + 1);
          else if (this.errorCounts.size < errorSamplesMax) this.errorCounts.set(message, 1);
        },
      )
      .finally(() => this.inFlight.delete(probe));
    this.inFlight.add(probe);
  }
}
