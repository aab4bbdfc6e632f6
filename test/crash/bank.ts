/**
 * The crash tests' workload and their reading of the truth.
 *
 * Workload: transfers between account tables in verdict_a and verdict_b. A two-phase transfer
 * debits an account on pg-a and credits one on pg-b; a one-phase transfer moves money between
 * two accounts of pg-a. Every branch also inserts its legs `(transfer id, account, delta)`
 * into a `legs` table inside the same branch, so the databases themselves say which transfers
 * committed. "Doomed" transfers touch a missing account with `expectRows: 1`, so they vote no
 * (the abort and rollback paths).
 *
 * Truth: read directly from PostgreSQL after recovery, and compared with what each client was
 * told and with the transaction's final state in the coordinator.
 */
import pg from "pg";
import {
  TransactionAbortedError,
  VerdictError,
  pgStatements,
  sql,
  type EnlistRequest,
  type VerdictClient,
} from "../../client/index.js";
import { services } from "../support/services.js";
import { countTold, type Told, type TransferOutcome } from "./transfer.js";

export type Db = "pg-a" | "pg-b";
const urls: Record<Db, string> = { "pg-a": services.pgUrlA, "pg-b": services.pgUrlB };
const dbs: readonly Db[] = ["pg-a", "pg-b"];

/** An account that does not exist: a statement on it affects 0 rows and the branch votes no. */
const missingAccount = 999_999;
const initialBalance = 1_000_000;
const pollMs = 100;
const violationsShownMax = 25;

export interface TransferSpec {
  readonly id: string;
  readonly kind: "two-phase" | "one-phase";
  readonly from: number;
  readonly to: number;
  readonly amount: number;
  readonly doomed: boolean;
}

export type Outcome = TransferOutcome<TransferSpec>;

export interface Bank {
  readonly accounts: number;
  readonly acct: string;
  readonly legs: string;
  /** Rolls back any prepared branch of `clusterId` left behind, then drops the tables. */
  drop(clusterId: string | undefined): Promise<void>;
  readonly pools: Readonly<Record<Db, pg.Pool>>;
}

export async function createBank(accounts: number): Promise<Bank> {
  const run = Math.random().toString(16).slice(2, 10);
  const acct = `crash_acct_${run}`;
  const legs = `crash_legs_${run}`;
  const pools = {
    // A lock held by a stray prepared branch fails the drop instead of hanging it.
    "pg-a": new pg.Pool({ connectionString: urls["pg-a"], max: 2, lock_timeout: 5_000 }),
    "pg-b": new pg.Pool({ connectionString: urls["pg-b"], max: 2, lock_timeout: 5_000 }),
  };
  for (const db of dbs) {
    await pools[db].query(`create table ${acct} (id int primary key, balance bigint not null)`);
    await pools[db].query(
      `create table ${legs} (id text not null, acct int not null, delta int not null,
                             primary key (id, acct))`,
    );
    await pools[db].query(`insert into ${acct} select g, $1 from generate_series(1, $2::int) g`, [
      initialBalance,
      accounts,
    ]);
  }
  return {
    accounts,
    acct,
    legs,
    pools,
    async drop(clusterId) {
      for (const db of dbs) {
        if (clusterId !== undefined) {
          const { rows } = await pools[db].query<{ gid: string }>(
            `select gid from pg_prepared_xacts
             where database = current_database() and starts_with(gid, $1)`,
            [`${clusterId}:`],
          );
          for (const r of rows) {
            await pools[db].query(`rollback prepared '${r.gid.replaceAll("'", "''")}'`);
          }
        }
        await pools[db].query(`drop table if exists ${acct}, ${legs}`);
        await pools[db].end();
      }
    },
  };
}

/** The branches of one transfer, in the shapes the SDK sends (for `runTransfer`). */
export function bankBranches(bank: Bank, s: TransferSpec): EnlistRequest[] {
  const debit = `update ${bank.acct} set balance = balance - $1 where id = $2`;
  const credit = `update ${bank.acct} set balance = balance + $1 where id = $2`;
  const leg = `insert into ${bank.legs} (id, acct, delta) values ($1, $2, $3)`;
  const one = { expectRows: 1 };
  const target = s.doomed ? missingAccount : s.to;
  if (s.kind === "one-phase") {
    return [
      pgStatements("pg-a", [
        sql(debit, [s.amount, s.from], one),
        sql(credit, [s.amount, target], one),
        sql(leg, [s.id, s.from, -s.amount], one),
        sql(leg, [s.id, s.to, s.amount], one),
      ]),
    ];
  }
  return [
    pgStatements("pg-a", [
      sql(debit, [s.amount, s.from], one),
      sql(leg, [s.id, s.from, -s.amount], one),
    ]),
    pgStatements("pg-b", [
      sql(credit, [s.amount, target], one),
      sql(leg, [s.id, s.to, s.amount], one),
    ]),
  ];
}

/** Transfers between accounts `pick` chooses; with `doomed`, every fifth one is doomed. */
export function makeTransfers(
  prefix: string,
  bank: Bank,
  counts: { readonly twoPhase: number; readonly onePhase: number; readonly doomed: boolean },
  pick: (maxInclusive: number) => number,
): TransferSpec[] {
  return Array.from({ length: counts.twoPhase + counts.onePhase }, (_, i) =>
    makeTransfer(
      `${prefix}-${i}`,
      bank,
      i < counts.twoPhase ? "two-phase" : "one-phase",
      counts.doomed && i % 5 === 4,
      pick,
    ),
  );
}

export function makeTransfer(
  id: string,
  bank: Bank,
  kind: TransferSpec["kind"],
  doomed: boolean,
  pick: (maxInclusive: number) => number,
): TransferSpec {
  const from = pick(bank.accounts);
  let to = pick(bank.accounts);
  if (kind === "one-phase" && to === from) to = (from % bank.accounts) + 1;
  return { id, kind, from, to, amount: pick(100), doomed };
}

/** Final state of a transaction in the coordinator; `unknown-to-log` is a 404 (presumed abort). */
export type FinalState = "committed" | "aborted" | "unknown-to-log";

export interface Settled {
  readonly ms: number;
  readonly states: ReadonlyMap<string, FinalState>;
}

/**
 * Polls until no prepared transaction of the cluster is left and every xid is final in the
 * coordinator (or unknown to it); bounded by `timeoutMs`. Throws, listing what is still open.
 */
export async function awaitSettled(
  client: VerdictClient,
  clusterId: string,
  xids: readonly string[],
  timeoutMs: number,
  pools: Bank["pools"],
): Promise<Settled> {
  const started = Date.now();
  let open: string[] = [];
  // A final state never changes: each round asks only about the xids still open.
  const states = new Map<string, FinalState>();
  for (let i = 0; i < Math.ceil(timeoutMs / pollMs) + 1; i++) {
    open = (await preparedGids(pools, clusterId)).map((g) => `prepared ${g}`);
    for (const xid of xids) {
      if (states.has(xid)) continue;
      const state = await finalState(client, xid);
      if (typeof state === "string" && state !== "pending") states.set(xid, state);
      else open.push(`${xid}: ${typeof state === "string" ? state : state.state}`);
    }
    if (open.length === 0) return { ms: Date.now() - started, states };
    if (Date.now() - started > timeoutMs) break;
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(
    `recovery did not settle within ${timeoutMs} ms; still open (${open.length}): ` +
      open.slice(0, violationsShownMax).join(", "),
  );
}

async function finalState(
  client: VerdictClient,
  xid: string,
): Promise<FinalState | "pending" | { state: string }> {
  try {
    const view = await client.status(xid);
    if (view.state === "committed" || view.state === "aborted") return view.state;
    return { state: view.state };
  } catch (err) {
    if (err instanceof VerdictError && err.code === "transaction-not-found")
      return "unknown-to-log";
    // A cluster's answer for a transaction lost with the leader that began it (leader-changed).
    if (err instanceof TransactionAbortedError) return "aborted";
    return "pending";
  }
}

/** This cluster's prepared transactions in both databases (exact prefix, G6). */
export async function preparedGids(pools: Bank["pools"], clusterId: string): Promise<string[]> {
  const gids: string[] = [];
  for (const db of dbs) {
    const { rows } = await pools[db].query<{ gid: string }>(
      `select gid from pg_prepared_xacts
       where database = current_database() and starts_with(gid, $1) order by gid`,
      [`${clusterId}:`],
    );
    gids.push(...rows.map((r) => `${db}/${r.gid}`));
  }
  return gids;
}

export interface Summary {
  readonly told: Readonly<Record<Told, number>>;
  readonly committed: number;
  readonly notCommitted: number;
}

/**
 * Checks the databases against the outcomes and final states. Returns the violations (empty
 * when all hold) and a summary:
 * - each account's balance is its initial balance plus its committed legs (nothing half-done
 *   inside a database), and the money of both databases together is conserved;
 * - a two-phase transfer is in both databases or in neither; a one-phase one only in pg-a;
 * - a transfer told committed/committing is committed; one told aborted or never sent, or a
 *   doomed one, left nothing;
 * - the coordinator's final state agrees with the databases (G7);
 * - no legs of a transfer the test does not know, and no prepared branch of the cluster left.
 */
export async function checkTruth(
  bank: Bank,
  outcomes: readonly Outcome[],
  states: ReadonlyMap<string, FinalState>,
  clusterId: string,
): Promise<{ violations: string[]; summary: Summary }> {
  const violations: string[] = [];
  const legs: Record<Db, Map<string, number>> = { "pg-a": new Map(), "pg-b": new Map() };
  let total = 0;
  for (const db of dbs) {
    const { rows } = await bank.pools[db].query<{ id: string; n: string }>(
      `select id, count(*) as n from ${bank.legs} group by id`,
    );
    for (const r of rows) legs[db].set(r.id, Number(r.n));
    const { rows: drift } = await bank.pools[db].query<{
      id: number;
      balance: string;
      want: string;
    }>(
      `select a.id, a.balance, $1::bigint + coalesce(sum(l.delta), 0) as want
       from ${bank.acct} a left join ${bank.legs} l on l.acct = a.id
       group by a.id, a.balance having a.balance <> $1::bigint + coalesce(sum(l.delta), 0)`,
      [initialBalance],
    );
    for (const d of drift) {
      violations.push(`${db} account ${d.id}: balance ${d.balance}, its legs say ${d.want}`);
    }
    const { rows: sum } = await bank.pools[db].query<{ total: string }>(
      `select sum(balance) as total from ${bank.acct}`,
    );
    total += Number(sum[0]?.total ?? 0);
  }
  if (total !== 2 * bank.accounts * initialBalance) {
    violations.push(`money not conserved: ${total} != ${2 * bank.accounts * initialBalance}`);
  }
  const known = new Set(outcomes.map((o) => o.spec.id));
  for (const db of dbs) {
    for (const id of legs[db].keys()) {
      if (!known.has(id)) violations.push(`${db} has legs of unknown transfer ${id}`);
    }
  }
  let committed = 0;
  for (const o of outcomes) {
    const what = `${o.spec.kind} transfer ${o.spec.id} (xid ${o.xid ?? "-"}, told ${o.told})`;
    const inA = (legs["pg-a"].get(o.spec.id) ?? 0) > 0;
    const inB = (legs["pg-b"].get(o.spec.id) ?? 0) > 0;
    const wantLegs = o.spec.kind === "one-phase" ? [2, 0] : [1, 1];
    const isIn = inA || inB;
    if (isIn) {
      committed += 1;
      const got = [legs["pg-a"].get(o.spec.id) ?? 0, legs["pg-b"].get(o.spec.id) ?? 0];
      if (got[0] !== wantLegs[0] || got[1] !== wantLegs[1]) {
        violations.push(`${what}: not all-or-nothing, legs a=${got[0]} b=${got[1]}`);
      }
    }
    if ((o.told === "committed" || o.told === "committing") && !isIn) {
      violations.push(`${what}: the client was told it committed, but it is in no database`);
    }
    if ((o.told === "aborted" || o.told === "not-sent") && isIn) {
      violations.push(`${what}: it left effects although it ${o.told}`);
    }
    if (o.spec.doomed && isIn) violations.push(`${what}: a doomed transfer committed`);
    if (o.xid !== undefined) {
      const state = states.get(o.xid);
      if (state === undefined) violations.push(`${what}: no final state in the coordinator`);
      else if ((state === "committed") !== isIn) {
        violations.push(
          `${what}: coordinator says ${state}, databases say ${isIn ? "in" : "absent"}`,
        );
      }
    } else if (isIn) {
      violations.push(`${what}: committed, but its begin never answered`);
    }
  }
  const left = await preparedGids(bank.pools, clusterId);
  for (const g of left) violations.push(`prepared transaction left behind: ${g}`);
  return {
    violations,
    summary: { told: countTold(outcomes), committed, notCommitted: outcomes.length - committed },
  };
}

/** Fails with the first violations listed, if any. */
export function violationReport(violations: readonly string[]): string {
  return (
    `${violations.length} violations:\n  ` +
    violations.slice(0, violationsShownMax).join("\n  ") +
    (violations.length > violationsShownMax ? "\n  …" : "")
  );
}
