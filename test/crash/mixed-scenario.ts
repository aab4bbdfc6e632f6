/**
 * One mixed crash-test cluster: a real coordinator process with pg-a, redis-main and
 * kafka-events, the world they write (mixed-bank.ts), load in rounds of concurrent
 * transfers, and the final check of all three stores once recovery has settled.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import { seededRandom } from "../unit/log/seeded-random.js";
import {
  createProcessCluster,
  type ProcessCluster,
  type ProcessClusterOptions,
  type ProcessNode,
} from "../support/process-node.js";
import { awaitSettled, clientFor, violationReport } from "./bank.js";
import {
  checkMixedTruth,
  createMixedWorld,
  makeMixedTransfer,
  runMixedTransfer,
  type Doom,
  type MixedOutcome,
  type MixedSpec,
  type MixedSummary,
  type MixedWorld,
} from "./mixed-bank.js";
import { settleTimeoutMs, transferTimeoutMs } from "./scenario.js";

export const accounts = 40;

export interface MixedRoundCounts {
  readonly mixed: number;
  readonly onePhase: number;
  /** Every sixth transfer is doomed: in pg, in Redis, then a one-phase one in Redis. */
  readonly doomed: boolean;
  /** One transfer at a time, so that the N-th phase-2 call is a known branch's. */
  readonly sequential?: boolean;
}
/** 18 transactions in flight at once, three of them doomed. */
export const mixedRound: MixedRoundCounts = { mixed: 15, onePhase: 3, doomed: true };

export interface MixedCrashCluster {
  readonly cluster: ProcessCluster;
  readonly world: MixedWorld;
  readonly outcomes: MixedOutcome[];
  /** Runs one round of transfers concurrently against `node`, each on its own Redis slot. */
  round(node: ProcessNode, counts?: MixedRoundCounts): Promise<MixedOutcome[]>;
  /** Waits until recovery settled, then checks the stores; returns what it saw. */
  settleAndCheck(
    node: ProcessNode,
    t: TestContext,
  ): Promise<{ settledMs: number; summary: MixedSummary }>;
  close(): Promise<void>;
}

export async function createMixedCrashCluster(
  seed: number,
  opts: ProcessClusterOptions = {},
): Promise<MixedCrashCluster> {
  const world = await createMixedWorld(accounts);
  let cluster: ProcessCluster;
  try {
    cluster = await createProcessCluster({
      ...opts,
      extraParticipants: [...(opts.extraParticipants ?? []), ...world.participants],
    });
  } catch (err) {
    await world.close(undefined);
    throw err;
  }
  const random = seededRandom(seed);
  const pick = (max: number) => random.int(1, max);
  const outcomes: MixedOutcome[] = [];
  let rounds = 0;
  let clusterId: string | undefined;
  return {
    cluster,
    world,
    outcomes,
    async round(node, counts = mixedRound) {
      const client = clientFor(node.url, cluster.clientToken);
      const prefix = `r${rounds++}`;
      const specs = Array.from({ length: counts.mixed + counts.onePhase }, (_, i): MixedSpec => {
        const kind = i < counts.mixed ? "mixed" : "redis-one-phase";
        let doom: Doom = "none";
        if (counts.doomed && i % 6 === 5) {
          doom = kind === "mixed" && Math.floor(i / 6) % 2 === 0 ? "pg" : "redis";
        }
        return makeMixedTransfer(`${prefix}-${i}`, kind, i, doom, accounts, pick);
      });
      const run = (s: MixedSpec) => runMixedTransfer(client, world, s, transferTimeoutMs);
      const done: MixedOutcome[] = [];
      if (counts.sequential) for (const s of specs) done.push(await run(s));
      else done.push(...(await Promise.all(specs.map(run))));
      outcomes.push(...done);
      return done;
    },
    async settleAndCheck(node, t) {
      clusterId = await cluster.clusterId();
      const client = clientFor(node.url, cluster.adminToken);
      const xids = outcomes.flatMap((o) => (o.xid === undefined ? [] : [o.xid]));
      const settled = await awaitSettled(
        client,
        clusterId,
        xids,
        settleTimeoutMs,
        world.bank.pools,
      );
      const { violations, summary } = await checkMixedTruth(
        world,
        outcomes,
        settled.states,
        clusterId,
      );
      t.diagnostic(
        `settled in ${settled.ms} ms; told ${JSON.stringify(summary.told)}; ` +
          `committed ${summary.committed}, not committed ${summary.notCommitted}; ` +
          `${summary.events} events, ${summary.abortedRecords} aborted records dropped`,
      );
      assert.deepEqual(violations, [], violationReport(violations));
      return { settledMs: settled.ms, summary };
    },
    async close() {
      clusterId ??= await cluster.clusterId().catch(() => undefined);
      // Prepared branches left by a failed test hold locks that would block the drops.
      await cluster.kill();
      try {
        await world.close(clusterId);
      } finally {
        await cluster.destroy();
      }
    },
  };
}
