/**
 * Runs one coordinator-executed branch on a pooled connection of a statement role, in as
 * few round trips as the protocol allows. The statement pools run in pipeline mode (each
 * query is its own Parse/Bind/Execute/Sync, so one failing does not swallow the next
 * answers), and a branch is two flights:
 *
 * 1. BEGIN → (a lowered statement_timeout) → the transaction's id → the marker (`mark`,
 *    which returns the same id) under a short lock_timeout → the deadline on the server's
 *    clock → each statement, all written at once. The marker goes first: it claims the
 *    branch's key, so no other actor (a deposed coordinator's prepare, a rollback) can act on
 *    the branch while this one runs; a key held by another actor answers `busy` at the
 *    lock_timeout (docs/architecture.md §7.1). The deadline check right behind it fails the
 *    transaction when `clock_timestamp()` is past the deadline, so the key is only ever
 *    claimed before the deadline on the participant's own clock, whatever the coordinator's
 *    clock said (the collection rule of docs/architecture.md §7.4 relies on it). As
 *    soon as the marker answers, `claim` checks the branch's state on Verdict's own
 *    connection and, if the branch is fresh, records the id there — while the statements
 *    still run. Nothing in this flight can end the transaction (statements.ts refuses
 *    transaction control).
 * 2. Only once every answer of flight 1 is checked (row expectations, marker id = claimed
 *    id) and the claim is recorded: PREPARE TRANSACTION (or COMMIT) with DISCARD ALL behind
 *    it, again at once. So the id is recorded before PREPARE or COMMIT is sent, as before.
 *
 * Returns what happened; the caller turns it into a vote or a one-phase outcome and decides
 * how to return the connection.
 */
import type pg from "pg";
import { messageOf } from "../common/errors.js";
import { isTransient, sqlStateOf } from "./errors.js";
import { gidLiteral } from "../../shared/postgres/gid.js";
import type { PostgresStatement } from "./payload.js";
import type { SchemaTables } from "../../shared/postgres/marker-tables.js";
import { clientTimeoutGraceMs, inOneWrite, query } from "./sql.js";
import type { Vote } from "../participant.js";

/** Stable no-vote reasons of this participant. */
export const noVoteReasons = {
  statementFailed: "statement-failed",
  expectationUnmet: "expectation-unmet",
  statementRefused: "statement-refused",
  deadline: "deadline",
  participantUnavailable: "participant-unavailable",
  rolledBack: "rolled-back",
  notPrepared: "not-prepared",
  notCommittable: "not-committable",
  servicePreparedDisabled: "service-prepared-disabled",
} as const;
export type NoVoteReason = (typeof noVoteReasons)[keyof typeof noVoteReasons];

export type BranchTxResult =
  /** `sessionReset`: the DISCARD ALL sent behind PREPARE/COMMIT answered. */
  | { readonly kind: "finished"; readonly sessionReset: boolean }
  | {
      readonly kind: "refused";
      readonly reason: NoVoteReason;
      readonly detail: string;
      readonly sessionReset?: boolean;
    }
  /** The branch's state already settled the answer (a repeat); flight 1 was abandoned. */
  | { readonly kind: "settled"; readonly vote: Vote }
  /** The gid or its marker is taken: another session prepared or committed this branch. */
  | { readonly kind: "duplicate"; readonly detail: string }
  /** Another actor holds the branch's marker key (uncommitted) past the lock_timeout. */
  | { readonly kind: "busy"; readonly detail: string }
  /** The connection failed while PREPARE or COMMIT was in flight: the branch may have finished. */
  | { readonly kind: "unknown"; readonly cause: unknown };

export interface BranchTx {
  readonly client: pg.ClientBase;
  readonly gid: string;
  readonly statements: readonly PostgresStatement[];
  readonly end: "prepare" | "commit";
  /** The local bound of this attempt (the deadline, or sooner), on `nowMs`. */
  readonly deadlineMs: number;
  /** The transaction's deadline (epoch ms), checked on the server's clock after the marker. */
  readonly serverDeadlineMs: number;
  /** The participant's own clock, for the cheap early checks. */
  readonly nowMs: () => number;
  readonly statementTimeoutMs: number;
  /** lock_timeout of the branch's statements (0: none). */
  readonly lockTimeoutMs: number;
  /** lock_timeout of the marker insert: how long another actor's hold on the key is waited for. */
  readonly markerLockTimeoutMs: number;
  readonly tables: SchemaTables;
  /** Set when a rollback of this branch arrived: stop before the next step. */
  readonly isCancelled: () => boolean;
  /**
   * On Verdict's own connection: the vote the branch's state already settles (prepared,
   * committed or rolled back before), or, for a fresh branch, records its transaction id
   * (xid8 as text) and answers undefined — before PREPARE or COMMIT: only a marker from
   * that transaction counts. Throws if it could not.
   */
  readonly claim: (xid: string) => Promise<Vote | undefined>;
}

type Answer = pg.QueryResult<pg.QueryResultRow>;

/**
 * Never throws. Leaves the connection outside any transaction block when the server is
 * reachable, except for `settled` (the connection must then be destroyed).
 */
export async function runBranchTx(tx: BranchTx): Promise<BranchTxResult> {
  let stage = "BEGIN";
  let inTransaction = false;
  const refused = (reason: NoVoteReason, detail: string): BranchTxResult => ({
    kind: "refused",
    reason,
    detail,
  });
  const deadlinePassed = () =>
    refused(noVoteReasons.deadline, `the prepare deadline passed before ${stage}`);
  const cancelled = () =>
    refused(noVoteReasons.rolledBack, `a rollback of the branch arrived before ${stage}`);
  const rollback = async () => {
    inTransaction = false;
    await query(tx.client, "rollback", [], clientTimeoutGraceMs).catch(() => undefined);
  };

  if (tx.isCancelled()) return cancelled();
  const remainingMs = tx.deadlineMs - tx.nowMs();
  if (remainingMs <= 0) return deadlinePassed();
  try {
    const flight = inOneWrite(tx.client, () => sendFirstFlight(tx, remainingMs));
    await flight.begin;
    inTransaction = true;
    const xid = (await flight.xid).rows[0]?.xid as string | undefined;
    if (xid === undefined) throw new Error("assertion: pg_current_xact_id() returned no row");
    stage = "the marker insert";
    // `mark` also checks the tombstones of rollbacks written before the `rolled-back` row.
    const marked =
      ((await flight.marker).rows[0] as { xid: string | null } | undefined)?.xid ?? null;
    if (marked === null) {
      await rollback();
      return refused(noVoteReasons.rolledBack, "the branch has a rollback tombstone");
    }
    stage = serverDeadlineStage;
    await flight.deadlineCheck;
    stage = "claiming the branch";
    let settled: Vote | undefined;
    try {
      settled = await tx.claim(xid);
    } catch (err) {
      await rollback();
      return refused(
        noVoteReasons.participantUnavailable,
        `Verdict's bookkeeping failed while ${stage}: ${messageOf(err)}`,
      );
    }
    if (settled === undefined) flight.claimed = xid;
    if (settled !== undefined) return { kind: "settled", vote: settled };
    for (const [i, st] of tx.statements.entries()) {
      stage = `statement ${i + 1}`;
      const result = await flight.statements[i]!;
      if (st.expectRows !== undefined && result.rowCount !== st.expectRows) {
        await rollback();
        return refused(
          noVoteReasons.expectationUnmet,
          `${stage} reported ${result.rowCount ?? "no"} rows, expected ${st.expectRows}`,
        );
      }
    }
    if (marked !== flight.claimed) {
      await rollback();
      return refused(
        noVoteReasons.participantUnavailable,
        `the marker's transaction ${marked} is not the one recorded (${flight.claimed ?? "none"})`,
      );
    }
    stage = tx.end === "prepare" ? "PREPARE TRANSACTION" : "COMMIT";
    if (tx.isCancelled()) {
      await rollback();
      return cancelled();
    }
    if (tx.deadlineMs <= tx.nowMs()) {
      await rollback();
      return deadlinePassed();
    }
    return await finish(tx, stage, () => (inTransaction = false));
  } catch (err) {
    if (inTransaction) await rollback();
    return classify(err, stage, tx);
  }
}

interface FirstFlight {
  readonly begin: Promise<Answer>;
  readonly xid: Promise<Answer>;
  readonly statements: readonly Promise<Answer>[];
  readonly marker: Promise<Answer>;
  readonly deadlineCheck: Promise<Answer>;
  /** The transaction id `claim` recorded. */
  claimed: string | undefined;
}

/**
 * Writes flight 1 at once. Every answer is bounded by the deadline from now (plus the grace),
 * and each statement by the server's statement_timeout, lowered to the time left when that
 * is shorter. Each promise is also observed here: an early return leaves later ones unread.
 *
 * Five statements before the branch's own (four with a branch lock_timeout): each costs a
 * Parse/Bind/Execute on the server and a query object on the node, so settings ride in the
 * statements that must run anyway, in pairs whose order within one statement cannot matter.
 */
function sendFirstFlight(tx: BranchTx, remainingMs: number): FirstFlight {
  const clientMs = remainingMs + clientTimeoutGraceMs;
  const send = (text: string, values: PostgresStatement["params"] = []) => {
    const answer = query(tx.client, text, values, clientMs);
    answer.catch(() => undefined);
    return answer;
  };
  const begin = send("begin");
  // The statements' lock_timeout, restored after the marker: the branch's own (a lock wait
  // then votes no, so a lock cycle across databases ends there, not at the deadline), else
  // the session's, saved in a custom setting of this transaction before it is lowered.
  const ownLockTimeout = tx.lockTimeoutMs > 0;
  if (!ownLockTimeout) {
    void send(
      "select pg_catalog.set_config('verdict.lock_timeout', pg_catalog.current_setting('lock_timeout'), true)",
    );
  }
  // Only the marker insert runs under the short lock_timeout. A failed set_config fails the
  // transaction, and the next answer reports it.
  const lowerStatementTimeout = remainingMs < tx.statementTimeoutMs;
  const xid = send(
    `select pg_catalog.pg_current_xact_id()::text as xid,
            pg_catalog.set_config('lock_timeout', $1, true)` +
      (lowerStatementTimeout ? `, pg_catalog.set_config('statement_timeout', $2, true)` : ""),
    [`${tx.markerLockTimeoutMs}`, ...(lowerStatementTimeout ? [`${Math.floor(remainingMs)}`] : [])],
  );
  const marker = send(`select ${tx.tables.mark}($1) as xid`, [tx.gid]);
  const deadlineCheck = send(
    ownLockTimeout ? deadlineCheckRestoring("$2") : deadlineCheckRestoring(savedLockTimeout),
    [`${tx.serverDeadlineMs}`, ...(ownLockTimeout ? [`${tx.lockTimeoutMs}`] : [])],
  );
  const statements = tx.statements.map((st) => send(st.sql, st.params));
  return { begin, xid, statements, marker, deadlineCheck, claimed: undefined };
}

const serverDeadlineStage = "the deadline check on the server's clock";

const savedLockTimeout = "pg_catalog.current_setting('verdict.lock_timeout')";

/**
 * Fails the transaction when the server's clock is past the deadline ($1, epoch ms), and sets
 * lock_timeout back to `lockTimeout` for the statements behind it. SQL has no raise outside
 * PL/pgSQL, so the failure is a cast of a text to int (22P02), evaluated only when the CASE's
 * condition holds: the text depends on clock_timestamp(), so the planner cannot fold it.
 * `classify` maps 22P02 at this stage (and only here) to the `deadline` reason. Were the
 * deadline passed, the restored setting would not matter: the transaction has failed.
 */
function deadlineCheckRestoring(lockTimeout: string): string {
  return `select pg_catalog.set_config('lock_timeout', ${lockTimeout}, true) as lock_timeout,
       case when pg_catalog.clock_timestamp() > pg_catalog.to_timestamp($1::float8 / 1000)
            then ('verdict: the deadline ' || pg_catalog.to_timestamp($1::float8 / 1000)::text
                  || ' passed on the server clock at ' || pg_catalog.clock_timestamp()::text)::int
       end as late`;
}

/** Flight 2: PREPARE TRANSACTION or COMMIT, and DISCARD ALL behind it. */
async function finish(tx: BranchTx, stage: string, ended: () => void): Promise<BranchTxResult> {
  const text = tx.end === "prepare" ? `prepare transaction ${gidLiteral(tx.gid)}` : "commit";
  const timeoutMs = tx.statementTimeoutMs + clientTimeoutGraceMs;
  const [ending, reset] = inOneWrite(tx.client, () => [
    query(tx.client, text, [], timeoutMs),
    query(tx.client, "discard all", [], timeoutMs).then(
      () => true,
      () => false,
    ),
  ]);
  let command: string;
  try {
    command = (await ending).command;
  } catch (err) {
    // Sent, but no answer: it may have taken effect.
    if (sqlStateOf(err) === undefined || isTransient(err)) {
      await reset;
      return { kind: "unknown", cause: err };
    }
    throw err;
  } finally {
    ended(); // PREPARE and COMMIT end the transaction block whatever they answer
  }
  const sessionReset = await reset;
  const expected = tx.end === "prepare" ? "PREPARE" : "COMMIT";
  if (command !== expected) {
    return {
      kind: "refused",
      reason: noVoteReasons.statementFailed,
      detail: `${stage} answered ${command}: the transaction had failed`,
      sessionReset,
    };
  }
  return { kind: "finished", sessionReset };
}

function classify(err: unknown, stage: string, tx: BranchTx): BranchTxResult {
  const sqlState = sqlStateOf(err);
  if (tx.isCancelled()) {
    return {
      kind: "refused",
      reason: noVoteReasons.rolledBack,
      detail: `a rollback ended the branch during ${stage}`,
    };
  }
  if (sqlState === "22P02" && stage === serverDeadlineStage) {
    return {
      kind: "refused",
      reason: noVoteReasons.deadline,
      detail: `${stage}: ${messageOf(err)}`,
    };
  }
  if (sqlState === undefined && tx.nowMs() >= tx.deadlineMs) {
    return {
      kind: "refused",
      reason: noVoteReasons.deadline,
      detail: `${stage} was still running at the prepare deadline: ${messageOf(err)}`,
    };
  }
  if (sqlState === "57014") {
    return {
      kind: "refused",
      reason: noVoteReasons.deadline,
      detail: `${stage} exceeded its timeout (statement timeout bounded by the prepare deadline): ${messageOf(err)}`,
    };
  }
  if (sqlState === "55P03" && stage === "the marker insert") {
    return { kind: "busy", detail: `${stage}: ${messageOf(err)}` };
  }
  if ((sqlState === "23505" && stage === "the marker insert") || sqlState === "42710") {
    return { kind: "duplicate", detail: `${stage}: ${messageOf(err)}` };
  }
  if (isTransient(err)) {
    return {
      kind: "refused",
      reason: noVoteReasons.participantUnavailable,
      detail: `${stage}: ${messageOf(err)}`,
    };
  }
  const code = sqlState === undefined ? "" : `SQLSTATE ${sqlState} `;
  return {
    kind: "refused",
    reason: noVoteReasons.statementFailed,
    detail: `${code}in ${stage}: ${messageOf(err)}`,
  };
}
