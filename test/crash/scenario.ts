/**
 * One crash-test cluster: a real coordinator process on its own data directory and schema,
 * a bank in both databases, load in rounds of concurrent transfers, and the final check of
 * the databases once recovery has settled.
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
import {
  awaitSettled,
  checkTruth,
  clientFor,
  createBank,
  makeTransfers,
  runTransfer,
  violationReport,
  type Bank,
  type Outcome,
  type Summary,
} from "./bank.js";

export const transferTimeoutMs = 3_000;
/** Recovery must settle within this: deadline aborts need `transferTimeoutMs` at least. */
export const settleTimeoutMs = 30_000;
const accounts = 40;

export interface RoundCounts {
  readonly twoPhase: number;
  readonly onePhase: number;
  /** Every fifth transfer touches a missing account and votes no. */
  readonly doomed: boolean;
}
/** ~25 transactions in flight at once, some doomed (the abort and rollback paths). */
export const defaultRound: RoundCounts = { twoPhase: 20, onePhase: 5, doomed: true };

export interface CrashCluster {
  readonly cluster: ProcessCluster;
  readonly bank: Bank;
  readonly outcomes: Outcome[];
  /** Runs one round of transfers concurrently against `node`. */
  round(node: ProcessNode, counts?: RoundCounts): Promise<Outcome[]>;
  /** Waits until recovery settled, then checks the databases; returns what it saw. */
  settleAndCheck(
    node: ProcessNode,
    t: TestContext,
  ): Promise<{ settledMs: number; summary: Summary }>;
  close(): Promise<void>;
}

export async function createCrashCluster(
  seed: number,
  opts: ProcessClusterOptions = {},
): Promise<CrashCluster> {
  const cluster = await createProcessCluster(opts);
  let bank: Bank;
  try {
    bank = await createBank(accounts);
  } catch (err) {
    await cluster.destroy();
    throw err;
  }
  const random = seededRandom(seed);
  const outcomes: Outcome[] = [];
  let rounds = 0;
  let clusterId: string | undefined;
  return {
    cluster,
    bank,
    outcomes,
    async round(node, counts = defaultRound) {
      const client = clientFor(node.url, cluster.clientToken);
      const specs = makeTransfers(`r${rounds++}`, bank, counts, (max) => random.int(1, max));
      const done = await Promise.all(
        specs.map((s) => runTransfer(client, bank, s, transferTimeoutMs)),
      );
      outcomes.push(...done);
      return done;
    },
    async settleAndCheck(node, t) {
      clusterId = await cluster.clusterId();
      const client = clientFor(node.url, cluster.adminToken);
      const xids = outcomes.flatMap((o) => (o.xid === undefined ? [] : [o.xid]));
      const settled = await awaitSettled(client, clusterId, xids, settleTimeoutMs, bank.pools);
      const { violations, summary } = await checkTruth(bank, outcomes, settled.states, clusterId);
      t.diagnostic(
        `settled in ${settled.ms} ms; told ${JSON.stringify(summary.told)}; ` +
          `committed ${summary.committed}, not committed ${summary.notCommitted}`,
      );
      assert.deepEqual(violations, [], violationReport(violations));
      return { settledMs: settled.ms, summary };
    },
    async close() {
      clusterId ??= await cluster.clusterId().catch(() => undefined);
      // Prepared branches left by a failed test hold locks that would block the drops.
      await cluster.kill();
      try {
        await bank.drop(clusterId);
      } finally {
        await cluster.destroy();
      }
    },
  };
}
