/**
 * Runs one coordinator-executed branch on a pooled connection of a statement role:
 * BEGIN → each statement (bounded by the deadline) → marker (the `mark` function, which
 * returns the transaction's id) → that id recorded on Verdict's own connection →
 * PREPARE TRANSACTION (two-phase) or COMMIT (one-phase). Returns what happened; the caller
 * turns it into a vote or a one-phase outcome and decides how to return the connection.
 */
import type pg from "pg";
import { messageOf } from "../common/errors.js";
import { isTransient, sqlStateOf } from "./errors.js";
import { gidLiteral } from "../../shared/postgres/gid.js";
import type { PostgresStatement } from "./payload.js";
import type { SchemaTables } from "../../shared/postgres/marker-tables.js";
import { clientTimeoutGraceMs, query } from "./sql.js";

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
  | { readonly kind: "finished" }
  | { readonly kind: "refused"; readonly reason: NoVoteReason; readonly detail: string }
  /** The gid or its marker is taken: another session prepared or committed this branch. */
  | { readonly kind: "duplicate"; readonly detail: string }
  /** The connection failed while PREPARE or COMMIT was in flight: the branch may have finished. */
  | { readonly kind: "unknown"; readonly cause: unknown };

export interface BranchTx {
  readonly client: pg.ClientBase;
  readonly gid: string;
  readonly statements: readonly PostgresStatement[];
  readonly end: "prepare" | "commit";
  readonly deadlineMs: number;
  readonly statementTimeoutMs: number;
  readonly tables: SchemaTables;
  /** Set when a rollback of this branch arrived: stop before the next step. */
  readonly isCancelled: () => boolean;
  /**
   * Records the branch's transaction id (xid8 as text) on Verdict's own connection, before
   * PREPARE or COMMIT: only a marker from that transaction counts. Throws if it could not.
   */
  readonly recordXid: (xid: string) => Promise<void>;
}

/**
 * Never throws. Leaves the connection outside any transaction block when the server is
 * reachable (the caller still resets the session).
 */
export async function runBranchTx(tx: BranchTx): Promise<BranchTxResult> {
  let stage = "BEGIN";
  let inTransaction = false;
  // The pool's sessions run with statement_timeout = statementTimeoutMs; lowered (SET
  // LOCAL) only when the deadline is nearer, so most statements cost one round trip.
  let serverTimeoutMs = tx.statementTimeoutMs;

  /** Runs `text` bounded by the deadline; undefined if the deadline already passed. */
  const bounded = async (text: string, values: PostgresStatement["params"] = []) => {
    const remainingMs = tx.deadlineMs - Date.now();
    if (remainingMs <= 0) return undefined;
    if (remainingMs < serverTimeoutMs) {
      serverTimeoutMs = Math.max(1, Math.floor(remainingMs));
      await query(
        tx.client,
        "select set_config('statement_timeout', $1, true)",
        [`${serverTimeoutMs}`],
        remainingMs + clientTimeoutGraceMs,
      );
    }
    return query(tx.client, text, values, serverTimeoutMs + clientTimeoutGraceMs);
  };
  const refused = (reason: NoVoteReason, detail: string): BranchTxResult => ({
    kind: "refused",
    reason,
    detail,
  });
  const deadlinePassed = () =>
    refused(noVoteReasons.deadline, `the prepare deadline passed before ${stage}`);
  const cancelled = () =>
    refused(noVoteReasons.rolledBack, `a rollback of the branch arrived before ${stage}`);

  try {
    await query(tx.client, "begin", [], tx.statementTimeoutMs + clientTimeoutGraceMs);
    inTransaction = true;
    for (const [i, st] of tx.statements.entries()) {
      stage = `statement ${i + 1}`;
      if (tx.isCancelled()) return cancelled();
      const result = await bounded(st.sql, st.params);
      if (result === undefined) return deadlinePassed();
      if (st.expectRows !== undefined && result.rowCount !== st.expectRows) {
        return refused(
          noVoteReasons.expectationUnmet,
          `${stage} reported ${result.rowCount ?? "no"} rows, expected ${st.expectRows}`,
        );
      }
    }
    stage = "the marker insert";
    if (tx.isCancelled()) return cancelled();
    // The tombstone guard (inside `mark`) closes most of the window against a rollback from
    // another coordinator process; recovery rolls back anything that still slips through.
    const marker = await bounded(`select ${tx.tables.mark}($1) as xid`, [tx.gid]);
    if (marker === undefined) return deadlinePassed();
    const xid = (marker.rows[0] as { xid: string | null } | undefined)?.xid ?? null;
    if (xid === null)
      return refused(noVoteReasons.rolledBack, "the branch has a rollback tombstone");
    if (tx.isCancelled()) return cancelled();
    stage = "recording the transaction id";
    try {
      await tx.recordXid(xid);
    } catch (err) {
      await query(tx.client, "rollback", [], clientTimeoutGraceMs).catch(() => undefined);
      inTransaction = false;
      return refused(
        noVoteReasons.participantUnavailable,
        `Verdict's bookkeeping failed while ${stage}: ${messageOf(err)}`,
      );
    }
    if (tx.isCancelled()) return cancelled();
    if (tx.deadlineMs <= Date.now()) return deadlinePassed();
    stage = tx.end === "prepare" ? "PREPARE TRANSACTION" : "COMMIT";
    const text = tx.end === "prepare" ? `prepare transaction ${gidLiteral(tx.gid)}` : "commit";
    let command: string;
    try {
      command = (await query(tx.client, text, [], tx.statementTimeoutMs + clientTimeoutGraceMs))
        .command;
    } catch (err) {
      // Sent, but no answer: it may have taken effect.
      if (sqlStateOf(err) === undefined || isTransient(err)) return { kind: "unknown", cause: err };
      throw err;
    } finally {
      inTransaction = false; // PREPARE and COMMIT end the transaction block whatever they answer
    }
    const expected = tx.end === "prepare" ? "PREPARE" : "COMMIT";
    if (command !== expected) {
      return refused(
        noVoteReasons.statementFailed,
        `${stage} answered ${command}: the transaction had failed`,
      );
    }
    return { kind: "finished" };
  } catch (err) {
    if (inTransaction)
      await query(tx.client, "rollback", [], clientTimeoutGraceMs).catch(() => undefined);
    return classify(err, stage, tx);
  }
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
  if (sqlState === "57014") {
    return {
      kind: "refused",
      reason: noVoteReasons.deadline,
      detail: `${stage} exceeded its timeout (statement timeout bounded by the prepare deadline): ${messageOf(err)}`,
    };
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
