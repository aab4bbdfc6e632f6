/**
 * The mixed crash-test world: pg-a, redis-main and kafka-events, the stores and workload of
 * mixed-bank.ts, in rounds of concurrent transfers (each on its own Redis slot), checked by
 * `checkMixedTruth` once recovery has settled (crash-scenario.ts runs the cluster, the
 * rounds and the settling).
 */
import {
  crashScenarioOf,
  type CrashScenario,
  type CrashWorld,
  type RoundOptions,
} from "./crash-scenario.js";
import {
  checkMixedTruth,
  createMixedWorld,
  makeMixedTransfer,
  mixedBranches,
  type Doom,
  type MixedSpec,
  type MixedSummary,
  type MixedWorld,
} from "./mixed-bank.js";

export const accounts = 40;

export interface MixedRoundCounts extends RoundOptions {
  readonly mixed: number;
  readonly onePhase: number;
  /** Every sixth transfer is doomed: in pg, in Redis, then a one-phase one in Redis. */
  readonly doomed: boolean;
}
/** 18 transactions in flight at once, three of them doomed. */
export const mixedRound: MixedRoundCounts = { mixed: 15, onePhase: 3, doomed: true };

export interface MixedTypes {
  readonly world: MixedWorld;
  readonly spec: MixedSpec;
  readonly counts: MixedRoundCounts;
  readonly summary: MixedSummary;
}
export type MixedCrashCluster = CrashScenario<MixedTypes>;

export const createMixedCrashCluster = crashScenarioOf<MixedTypes>(async () =>
  mixedCrashWorld(await createMixedWorld(accounts)),
);

function mixedCrashWorld(world: MixedWorld): CrashWorld<MixedTypes> {
  return {
    world,
    participants: world.participants,
    pools: world.bank.pools,
    defaultRound: mixedRound,
    roundTransfers: (prefix, counts, pick) =>
      Array.from({ length: counts.mixed + counts.onePhase }, (_, i): MixedSpec => {
        const kind = i < counts.mixed ? "mixed" : "redis-one-phase";
        let doom: Doom = "none";
        if (counts.doomed && i % 6 === 5) {
          doom = kind === "mixed" && Math.floor(i / 6) % 2 === 0 ? "pg" : "redis";
        }
        return makeMixedTransfer(`${prefix}-${i}`, kind, i, doom, accounts, pick);
      }),
    branches: (spec) => mixedBranches(world, spec),
    check: (outcomes, states, clusterId) => checkMixedTruth(world, outcomes, states, clusterId),
    describe: (summary) =>
      `; ${summary.events} events, ${summary.abortedRecords} aborted records dropped`,
    close: (clusterId) => world.close(clusterId),
  };
}
