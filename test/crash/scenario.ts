/**
 * The PostgreSQL-only crash-test world: the bank of bank.ts in both databases, in rounds of
 * concurrent two-phase and one-phase transfers, checked by `checkTruth` once recovery has
 * settled (crash-scenario.ts runs the cluster, the rounds and the settling).
 */
import {
  bankBranches,
  checkTruth,
  createBank,
  makeTransfers,
  type Bank,
  type Summary,
  type TransferSpec,
} from "./bank.js";
import {
  crashScenarioOf,
  type CrashScenario,
  type CrashWorld,
  type RoundOptions,
} from "./crash-scenario.js";

const accounts = 40;

export interface RoundCounts extends RoundOptions {
  readonly twoPhase: number;
  readonly onePhase: number;
  /** Every fifth transfer touches a missing account and votes no. */
  readonly doomed: boolean;
}
/** ~25 transactions in flight at once, some doomed (the abort and rollback paths). */
export const defaultRound: RoundCounts = { twoPhase: 20, onePhase: 5, doomed: true };

export interface BankTypes {
  readonly world: Bank;
  readonly spec: TransferSpec;
  readonly counts: RoundCounts;
  readonly summary: Summary;
}
export type CrashCluster = CrashScenario<BankTypes>;

export const createCrashCluster = crashScenarioOf<BankTypes>(async () =>
  bankWorld(await createBank(accounts)),
);

function bankWorld(bank: Bank): CrashWorld<BankTypes> {
  return {
    world: bank,
    participants: [],
    pools: bank.pools,
    defaultRound,
    roundTransfers: (prefix, counts, pick) => makeTransfers(prefix, bank, counts, pick),
    branches: (spec) => bankBranches(bank, spec),
    check: (outcomes, states, clusterId) => checkTruth(bank, outcomes, states, clusterId),
    describe: () => "",
    close: (clusterId) => bank.drop(clusterId),
  };
}
