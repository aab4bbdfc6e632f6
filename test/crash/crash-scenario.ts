/**
 * The crash tests' scaffolding, generic over the world they load: a real coordinator process
 * on its own data directory and schema, a world (stores and a workload: bank.ts,
 * mixed-bank.ts) created for it, load in seeded rounds of transfers, and the final check of
 * the stores once recovery has settled. scenario.ts and mixed-scenario.ts only say how their
 * world makes a round, runs a transfer, checks the truth and cleans up.
 */
import assert from "node:assert/strict";
import type { TestContext } from "node:test";
import type { EnlistRequest, VerdictClient } from "../../client/index.js";
import { seededRandom } from "../unit/log/seeded-random.js";
import {
  createProcessCluster,
  type ProcessCluster,
  type ProcessClusterOptions,
  type ProcessNode,
} from "../support/process-node.js";
import { awaitSettled, violationReport, type Bank, type FinalState, type Summary } from "./bank.js";
import { clientFor, runTransfer, type TransferOutcome } from "./transfer.js";

export const transferTimeoutMs = 3_000;
/** Recovery must settle within this: deadline aborts need `transferTimeoutMs` at least. */
export const settleTimeoutMs = 30_000;

/** Draws an integer in [1, maxInclusive] from the scenario's seeded random. */
export type Pick = (maxInclusive: number) => number;

export interface RoundOptions {
  /** One transfer at a time, so that the N-th phase-2 call is a known branch's. */
  readonly sequential?: boolean;
}

/** The types one world works with. */
export interface WorldTypes {
  /** What the tests see of the world (`CrashScenario.world`). */
  readonly world: unknown;
  readonly spec: { readonly id: string };
  readonly counts: RoundOptions;
  readonly summary: Summary;
}

export type OutcomeOf<T extends WorldTypes> = TransferOutcome<T["spec"]>;

/** How a crash scenario drives and checks one world. */
export interface CrashWorld<T extends WorldTypes> {
  readonly world: T["world"];
  /** Participants beyond pg-a and pg-b (`ProcessClusterOptions.extraParticipants`). */
  readonly participants: readonly Record<string, unknown>[];
  /** Searched for the cluster's prepared branches until recovery has settled. */
  readonly pools: Bank["pools"];
  readonly defaultRound: T["counts"];
  /** The transfers of one round, ids prefixed with `prefix`; `pick` chooses accounts, amounts. */
  roundTransfers(prefix: string, counts: T["counts"], pick: Pick): T["spec"][];
  /** The branches `runTransfer` enlists for `spec`. */
  branches(spec: T["spec"]): EnlistRequest[];
  /** Reads the stores; returns the violations (none when all holds) and what it saw. */
  check(
    outcomes: readonly OutcomeOf<T>[],
    states: ReadonlyMap<string, FinalState>,
    clusterId: string,
  ): Promise<{ violations: string[]; summary: T["summary"] }>;
  /** What the settle diagnostic adds after the counts of `summary` ("" for nothing). */
  describe(summary: T["summary"]): string;
  /** Rolls back what `clusterId` left prepared, drops what the world created. */
  close(clusterId: string | undefined): Promise<void>;
}

export interface CrashScenario<T extends WorldTypes> {
  readonly cluster: ProcessCluster;
  readonly world: T["world"];
  readonly outcomes: OutcomeOf<T>[];
  /** Runs one round of transfers against `node`, concurrently unless `counts.sequential`. */
  round(node: ProcessNode, counts?: T["counts"]): Promise<OutcomeOf<T>[]>;
  /** Runs one transfer through `client` (not recorded in `outcomes`). */
  transfer(client: VerdictClient, spec: T["spec"]): Promise<OutcomeOf<T>>;
  /** Waits until recovery settled, then checks the stores; returns what it saw. */
  settleAndCheck(
    node: ProcessNode,
    t: TestContext,
  ): Promise<{ settledMs: number; summary: T["summary"] }>;
  close(): Promise<void>;
}

/**
 * The constructor of one kind of scenario: it creates the world, then a cluster whose
 * participants include the world's; `seed` seeds the rounds' transfers.
 */
export function crashScenarioOf<T extends WorldTypes>(
  createWorld: () => Promise<CrashWorld<T>>,
): (seed: number, opts?: ProcessClusterOptions) => Promise<CrashScenario<T>> {
  return (seed, opts = {}) => createCrashScenario(seed, opts, createWorld);
}

async function createCrashScenario<T extends WorldTypes>(
  seed: number,
  opts: ProcessClusterOptions,
  createWorld: () => Promise<CrashWorld<T>>,
): Promise<CrashScenario<T>> {
  const w = await createWorld();
  let cluster: ProcessCluster;
  try {
    cluster = await createProcessCluster({
      ...opts,
      extraParticipants: [...(opts.extraParticipants ?? []), ...w.participants],
    });
  } catch (err) {
    await w.close(undefined);
    throw err;
  }
  const random = seededRandom(seed);
  const pick: Pick = (max) => random.int(1, max);
  const outcomes: OutcomeOf<T>[] = [];
  let rounds = 0;
  let clusterId: string | undefined;
  const transfer = (client: VerdictClient, spec: T["spec"]) =>
    runTransfer(client, spec, w.branches(spec), transferTimeoutMs);
  return {
    cluster,
    world: w.world,
    outcomes,
    transfer,
    async round(node, counts = w.defaultRound) {
      const client = clientFor(node.url, cluster.clientToken);
      const specs = w.roundTransfers(`r${rounds++}`, counts, pick);
      const done: OutcomeOf<T>[] = [];
      if (counts.sequential) for (const s of specs) done.push(await transfer(client, s));
      else done.push(...(await Promise.all(specs.map((s) => transfer(client, s)))));
      outcomes.push(...done);
      return done;
    },
    async settleAndCheck(node, t) {
      clusterId = await cluster.clusterId();
      const client = clientFor(node.url, cluster.adminToken);
      const xids = outcomes.flatMap((o) => (o.xid === undefined ? [] : [o.xid]));
      const settled = await awaitSettled(client, clusterId, xids, settleTimeoutMs, w.pools);
      const { violations, summary } = await w.check(outcomes, settled.states, clusterId);
      t.diagnostic(
        `settled in ${settled.ms} ms; told ${JSON.stringify(summary.told)}; ` +
          `committed ${summary.committed}, not committed ${summary.notCommitted}` +
          w.describe(summary),
      );
      assert.deepEqual(violations, [], violationReport(violations));
      return { settledMs: settled.ms, summary };
    },
    async close() {
      clusterId ??= await cluster.clusterId().catch(() => undefined);
      // Prepared branches left by a failed test hold locks that would block the drops.
      await cluster.kill();
      try {
        await w.close(clusterId);
      } finally {
        await cluster.destroy();
      }
    },
  };
}
