/**
 * The mixed load of the cluster fault tests and the checks after each fault. Clients run the
 * soak's four-branch transfers (test/chaos/soak-workload.ts) through RecordingClients that
 * know all node URLs; a reader asks the state of transactions in flight. After the fault, the
 * cluster is healed, recovery settles, and the truth is read from every participant
 * (test/chaos/soak-check.ts), the client history is checked per transaction (Porcupine), and
 * etcd's own history is checked (etcd-ledger.ts).
 */
import { setTimeout as sleep } from "node:timers/promises";
import { awaitSettled, type FinalState } from "../crash/bank.js";
import { runTransfer, countTold, type Told } from "../crash/transfer.js";
import { checkSoakTruth, type SoakFound } from "../chaos/soak-check.js";
import { nextSoakSpec, soakBranches, type SoakOutcome } from "../chaos/soak-workload.js";
import { seededRandom } from "../unit/log/seeded-random.js";
import { readLedger, type LedgerTerm } from "./etcd-ledger.js";
import type { FaultCluster } from "./fault-cluster.js";
import { History, RecordingClient } from "./history.js";
import { checkLinearizable } from "./linearizability.js";

/** A transaction's own deadline: long enough to ride out a failover's lease. */
const transferTimeoutMs = 8_000;
const readerPauseMs = 30;
const failedPauseMs = 200;
const historyOpsMax = 2_000_000;

export interface LoadOptions {
  readonly seed: number;
  readonly clients: number;
  readonly doomedPercent: number;
  readonly transfersPerClientMax: number;
}

export const ciLoad: Omit<LoadOptions, "seed"> = {
  clients: 6,
  doomedPercent: 10,
  transfersPerClientMax: 100_000,
};

export class Load {
  readonly history = new History(historyOpsMax);
  readonly outcomes: SoakOutcome[] = [];
  private stopped = false;
  private readonly running: Promise<void>[] = [];

  constructor(
    private readonly fc: FaultCluster,
    private readonly o: LoadOptions,
  ) {}

  client(id: number, token = this.fc.nodes.clientToken): RecordingClient {
    return new RecordingClient(
      {
        baseUrls: this.fc.urls,
        token,
        timeoutMs: 4_000,
        retry: { attemptsMax: 4, backoffMsInitial: 50, backoffMsMax: 400 },
        outcomeChecksMax: 4,
        outcomeTimeoutMs: 10_000,
      },
      this.history,
      id,
    );
  }

  /** Client ids in use: transfer clients, then the reader. */
  get readers(): number {
    return this.o.clients + 1;
  }

  start(): void {
    for (let c = 0; c < this.o.clients; c++) this.running.push(this.transfers(c));
    this.running.push(this.reader(this.o.clients));
  }

  /** Transfers committed (or told committing) so far. */
  committed(): number {
    const told = countTold(this.outcomes);
    return told.committed + told.committing;
  }

  /** Waits until `n` more transfers were told committed (bounded). */
  async awaitCommits(n: number, timeoutMs: number): Promise<boolean> {
    const target = this.committed() + n;
    const deadline = Date.now() + timeoutMs;
    while (this.committed() < target) {
      if (Date.now() > deadline) return false;
      await sleep(50);
    }
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.running);
  }

  private async transfers(c: number): Promise<void> {
    const random = seededRandom(this.o.seed + 1 + c);
    const sdk = this.client(c);
    for (let k = 0; k < this.o.transfersPerClientMax && !this.stopped; k++) {
      const spec = nextSoakSpec(
        `c${c}-${k}`,
        c,
        this.fc.world.bank.accounts,
        this.o.doomedPercent,
        random,
      );
      const branches = soakBranches(this.fc.world, spec);
      const outcome = await runTransfer(sdk, spec, branches, transferTimeoutMs);
      this.outcomes.push(outcome);
      // No answer (a failover under way): do not spin through transfers that cannot start.
      if (outcome.error !== undefined) await sleep(failedPauseMs);
    }
  }

  /** Status reads of recent transactions, concurrent with their commits. */
  private async reader(id: number): Promise<void> {
    const random = seededRandom(this.o.seed);
    const sdk = this.client(id);
    while (!this.stopped) {
      const recent = this.history.recentXids;
      const xid = recent[random.int(0, Math.max(0, recent.length - 1))];
      if (xid !== undefined) await sdk.status(xid).catch(() => undefined);
      await sleep(readerPauseMs);
    }
  }
}

export interface Verdict {
  readonly violations: string[];
  readonly told: Readonly<Record<Told, number>>;
  readonly found: SoakFound;
  readonly terms: readonly LedgerTerm[];
  readonly historyOps: number;
  readonly transactions: number;
  readonly settledMs: number | undefined;
}

/**
 * Heals the cluster, waits for recovery to settle, and checks everything: the participants'
 * truth against what clients were told, linearizability per transaction, etcd's ledger.
 */
export async function checkAfterFault(
  fc: FaultCluster,
  load: Load,
  settleTimeoutMs: number,
  /** Where an HTML page of each non-linearizable transaction goes. */
  visualizeDir: string,
): Promise<Verdict> {
  await fc.healAll();
  const violations: string[] = [];
  const xids = load.outcomes.flatMap((o) => (o.xid === undefined ? [] : [o.xid]));
  let states: ReadonlyMap<string, FinalState> | undefined;
  let settledMs: number | undefined;
  try {
    await fc.awaitLeader(settleTimeoutMs);
    // Its reads are observations too: they join the history that is checked.
    const admin = load.client(load.readers, fc.nodes.adminToken);
    const settled = await awaitSettled(
      admin,
      fc.nodes.clusterId,
      xids,
      settleTimeoutMs,
      fc.world.bank.pools,
    );
    states = settled.states;
    settledMs = settled.ms;
  } catch (err) {
    violations.push(`did not settle: ${err instanceof Error ? err.message : String(err)}`);
  }
  const truth = await checkSoakTruth(fc.world, load.outcomes, states, fc.nodes.clusterId);
  violations.push(...truth.violations);
  const lin = checkLinearizable(load.history.ops, visualizeDir);
  for (const f of lin.failures) violations.push(`not linearizable: xid ${f.xid} (${f.result})`);
  const ledger = await readLedger(fc.etcdAdmin, fc.nodes.clusterId);
  violations.push(...ledger.violations.map((v) => `etcd: ${v}`));
  return {
    violations,
    told: countTold(load.outcomes),
    found: truth.found,
    terms: ledger.terms,
    historyOps: load.history.ops.length,
    transactions: lin.transactions,
    settledMs,
  };
}

/** One line of figures for a test's diagnostics. */
export function describeVerdict(v: Verdict): string {
  const t = v.told;
  return (
    `transfers ${Object.values(t).reduce((a, b) => a + b, 0)}: committed ${t.committed + t.committing}, ` +
    `aborted ${t.aborted}, unknown ${t.unknown}, not sent ${t["not-sent"]}; found committed ` +
    `${v.found.committed}; terms ${v.terms.map((x) => `${x.term}:${x.nodeId}/${x.batches}`).join(" ")}; ` +
    `${v.historyOps} calls over ${v.transactions} transactions; settled ${v.settledMs ?? "-"} ms; ` +
    `violations ${v.violations.length}`
  );
}
