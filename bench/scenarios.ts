/**
 * The four transfers the bench compares. A and B go through Verdict; A0 and B0 are their
 * floors, the same writes done directly on PostgreSQL by a tight client:
 *
 *   A   two branches through Verdict: pg-a debit (expectRows 1), pg-b credit, commit
 *   A1  the same in one request (begin, both branches and commit: the SDK's transact)
 *   A0  the same with no coordinator: on each database BEGIN; UPDATE; PREPARE TRANSACTION,
 *       both in parallel, then COMMIT PREPARED on each in parallel
 *   B   one branch through Verdict (debit and credit in verdict_a), committed in one phase
 *   B0  the same as a plain transaction: BEGIN; UPDATE; UPDATE; COMMIT
 *
 * Each scenario counts the money it moved from verdict_a to verdict_b in transfers whose
 * commit it saw confirmed, so the final balances can be checked exactly.
 */
import type pg from "pg";
import { pgStatements, sql, VerdictClient } from "../client/index.js";
import {
  accountsTable,
  connect,
  directGidPrefix,
  literal,
  randomAccount,
  randomAmount,
  randomPair,
} from "./accounts.js";

export interface Scenario {
  /** Short id printed in the tables ("A", "A0", …). */
  readonly id: string;
  readonly title: string;
  /** One transfer by bench client `client` (0-based); throws when it fails. */
  run(client: number): Promise<void>;
  /** Money moved from verdict_a to verdict_b by transfers whose commit was confirmed. */
  movedAtoB(): number;
  close(): Promise<void>;
}

export interface Databases {
  readonly urlA: string;
  readonly urlB: string;
  readonly accounts: number;
  /**
   * lock_timeout of A0's sessions, as Verdict's branches have it (`lockTimeoutMs`): both sides
   * prepare in parallel, so two transfers can wait on each other across the databases.
   */
  readonly lockTimeoutMs: number;
}

export const debitSql = `update ${accountsTable} set balance = balance - $1 where id = $2`;
export const creditSql = `update ${accountsTable} set balance = balance + $1 where id = $2`;
/** A branch that waits longer than this on a lock (a distributed deadlock) aborts. */
export const transactionTimeoutMs = 5_000;
const commitAttemptsMax = 3;
const commitRetryPauseMs = 50;

export function verdictTwoBranch(verdict: VerdictClient, db: Databases): Scenario {
  let moved = 0;
  return {
    id: "A",
    title: "Verdict, 2 branches (pg-a debit, pg-b credit), 2PC",
    async run() {
      const from = randomAccount(db.accounts);
      const to = randomAccount(db.accounts);
      const amount = randomAmount();
      await throughVerdict(verdict, [
        pgStatements("pg-a", [sql(debitSql, [amount, from], { expectRows: 1 })]),
        pgStatements("pg-b", [sql(creditSql, [amount, to], { expectRows: 1 })]),
      ]);
      moved += amount;
    },
    movedAtoB: () => moved,
    close: () => Promise.resolve(),
  };
}

/** A, in one request: `POST /v1/transactions` with both branches and `commit: true`. */
export function verdictOneRequest(verdict: VerdictClient, db: Databases): Scenario {
  let moved = 0;
  return {
    id: "A1",
    title: "Verdict, 2 branches in one request (transact), 2PC",
    async run() {
      const amount = randomAmount();
      await verdict.transact(
        [
          pgStatements("pg-a", [
            sql(debitSql, [amount, randomAccount(db.accounts)], { expectRows: 1 }),
          ]),
          pgStatements("pg-b", [
            sql(creditSql, [amount, randomAccount(db.accounts)], { expectRows: 1 }),
          ]),
        ],
        { timeoutMs: transactionTimeoutMs },
      );
      moved += amount;
    },
    movedAtoB: () => moved,
    close: () => Promise.resolve(),
  };
}

export function verdictOneBranch(verdict: VerdictClient, db: Databases): Scenario {
  return {
    id: "B",
    title: "Verdict, 1 branch (debit + credit in pg-a), one phase",
    async run() {
      const [first, second] = randomPair(db.accounts);
      const amount = randomAmount();
      await throughVerdict(verdict, [
        pgStatements("pg-a", [
          sql(debitSql, [amount, first], { expectRows: 1 }),
          sql(creditSql, [amount, second], { expectRows: 1 }),
        ]),
      ]);
    },
    movedAtoB: () => 0,
    close: () => Promise.resolve(),
  };
}

/** Begin, enlist each branch, commit; on a failure the transaction is aborted (best effort). */
export async function throughVerdict(
  verdict: VerdictClient,
  branches: readonly Parameters<VerdictClient["enlist"]>[1][],
): Promise<void> {
  const { xid } = await verdict.begin({ timeoutMs: transactionTimeoutMs });
  try {
    for (const branch of branches) await verdict.enlist(xid, branch);
  } catch (err) {
    await verdict.abort(xid).catch(() => undefined);
    throw err;
  }
  // Resolves with committed or committing (decided; phase 2 finishing), throws if aborted.
  await verdict.commit(xid);
}

export async function directTwoPhase(
  db: Databases,
  clients: number,
  runId: string,
): Promise<Scenario> {
  const connections = await openTwoPhaseSessions(db, clients);
  let moved = 0;
  let seq = 0;
  return {
    id: "A0",
    title: "direct 2PC on both databases, no coordinator (floor of A)",
    async run(client) {
      const a = connection(connections, client, 0);
      const b = connection(connections, client, 1);
      const gid = `${directGidPrefix}${runId}:${client}:${seq++}`;
      const amount = randomAmount();
      const [onA, onB] = await Promise.allSettled([
        prepareBranch(a, `${gid}:a`, debitSql, [amount, randomAccount(db.accounts)]),
        prepareBranch(b, `${gid}:b`, creditSql, [amount, randomAccount(db.accounts)]),
      ]);
      if (onA.status === "rejected" || onB.status === "rejected") {
        // Presumed abort: the side that did prepare is rolled back.
        await Promise.all([
          onA.status === "fulfilled" ? rollBackQuietly(a, onA.value) : undefined,
          onB.status === "fulfilled" ? rollBackQuietly(b, onB.value) : undefined,
        ]);
        throw onA.status === "rejected" ? onA.reason : (onB as PromiseRejectedResult).reason;
      }
      await Promise.all([commitPrepared(a, `${gid}:a`), commitPrepared(b, `${gid}:b`)]);
      moved += amount;
    },
    movedAtoB: () => moved,
    close: () => closeConnections(connections.flat()),
  };
}

/**
 * Per client a connection to each database (urlA's first), with the lock_timeout Verdict's
 * branches have: the sessions of a direct two-phase transfer.
 */
export async function openTwoPhaseSessions(db: Databases, clients: number): Promise<pg.Client[][]> {
  const connections = await openConnections(clients, [db.urlA, db.urlB]);
  if (db.lockTimeoutMs > 0) {
    await Promise.all(
      connections.flat().map((c) => c.query(`set lock_timeout = ${Math.floor(db.lockTimeoutMs)}`)),
    );
  }
  return connections;
}

export async function directOnePhase(db: Databases, clients: number): Promise<Scenario> {
  const connections = await openConnections(clients, [db.urlA]);
  return {
    id: "B0",
    title: "direct single-phase transaction in verdict_a (floor of B)",
    async run(client) {
      const c = connection(connections, client, 0);
      const [first, second] = randomPair(db.accounts);
      const amount = randomAmount();
      await c.query("begin");
      try {
        await updateOne(c, debitSql, [amount, first]);
        await updateOne(c, creditSql, [amount, second]);
        await c.query("commit");
      } catch (err) {
        await c.query("rollback").catch(() => undefined);
        throw err;
      }
    },
    movedAtoB: () => 0,
    close: () => closeConnections(connections.flat()),
  };
}

/** BEGIN; the update; PREPARE TRANSACTION gid. Answers the gid; rolls back on failure. */
export async function prepareBranch(
  c: pg.Client,
  gid: string,
  text: string,
  params: readonly number[],
): Promise<string> {
  await c.query("begin");
  try {
    await updateOne(c, text, params);
    const result = await c.query(`prepare transaction ${literal(gid)}`);
    // PREPARE in a failed transaction answers ROLLBACK, not an error.
    if (result.command !== "PREPARE") throw new Error(`prepare of ${gid}: ${result.command}`);
    return gid;
  } catch (err) {
    await c.query("rollback").catch(() => undefined);
    throw err;
  }
}

/** A branch left prepared here is reported (and rolled back) by the end-of-run check. */
export async function rollBackQuietly(c: pg.Client, gid: string): Promise<void> {
  await c.query(`rollback prepared ${literal(gid)}`).catch(() => undefined);
}

/** The decision is commit once both sides prepared: retried a few times, then reported. */
export async function commitPrepared(c: pg.Client, gid: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await c.query(`commit prepared ${literal(gid)}`);
      return;
    } catch (err) {
      if (attempt >= commitAttemptsMax) throw err;
      await new Promise((resolve) => setTimeout(resolve, commitRetryPauseMs));
    }
  }
}

async function updateOne(c: pg.Client, text: string, params: readonly number[]): Promise<void> {
  const { rowCount } = await c.query(text, [...params]);
  if (rowCount !== 1) throw new Error(`expected 1 row, updated ${rowCount ?? 0}: ${text}`);
}

/** One set per bench client: a connection to each of `urls`, in order. */
async function openConnections(clients: number, urls: readonly string[]): Promise<pg.Client[][]> {
  const opened: pg.Client[] = [];
  const sets: pg.Client[][] = [];
  try {
    for (let i = 0; i < clients; i++) {
      const set: pg.Client[] = [];
      for (const url of urls) {
        const c = await connect(url);
        opened.push(c);
        set.push(c);
      }
      sets.push(set);
    }
  } catch (err) {
    await closeConnections(opened);
    throw err;
  }
  return sets;
}

export async function closeConnections(connections: readonly pg.Client[]): Promise<void> {
  await Promise.all(connections.map((c) => c.end().catch(() => undefined)));
}

export function connection(sets: readonly pg.Client[][], client: number, index: number): pg.Client {
  const c = sets[client]?.[index];
  if (c === undefined) throw new Error(`assertion: client ${client} has no connection ${index}`);
  return c;
}
