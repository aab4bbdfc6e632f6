/**
 * The decision log's records: what Verdict writes durably, and nothing else. Begin and
 * enlist live only on the leader; write 1 of a commit is one `preparing` record (with every
 * branch and its payload), write 2 is the `decide` record. Acknowledgements and forgetting
 * are batched. Every record carries a format version so a rolling upgrade can read the
 * previous one.
 */
import type { ParticipantKind, Phase2Outcome } from "../../participants/participant.js";
import type { RecordedWork } from "../../shared/branch-work.js";
import type { BranchId, BranchNo, Xid } from "./ids.js";

export const recordFormatVersion = 1;

export type Decision = "commit" | "abort";

/** Why a decision was taken; stable and machine-readable (the API shows abort reasons). */
export type DecisionCode =
  | "all-voted-yes"
  | "one-phase"
  | "no-branches"
  | "deadline-passed"
  | "vote-no"
  | "prepare-failed"
  | "client-abort"
  | "operator-commit"
  | "operator-abort"
  /** Recovery found a prepared branch of a transaction the log does not know. */
  | "presumed-abort"
  /** The node shut down before the transaction could be decided otherwise. */
  | "shutdown";

/** Who did something by hand, and why: kept in the log for the audit trail. */
export interface Operator {
  readonly id: string;
  readonly reason: string;
}

export interface TxnHeader {
  readonly xid: Xid;
  /** The principal (token id) that began it: only it, or an admin, may drive it. */
  readonly principal: string;
  readonly beganAtMs: number;
  readonly deadlineMs: number;
  readonly labels: Readonly<Record<string, string>>;
}

export interface BranchSpec {
  readonly n: BranchNo;
  readonly branchId: BranchId;
  readonly participant: string;
  readonly kind: ParticipantKind;
  /**
   * The branch's work, validated at enlist; logged so that it survives any crash. The table
   * releases it once no one needs it (payload.ts `workNeeded`); the log's record keeps it.
   */
  readonly payload: RecordedWork;
}

/** How phase 2 ended on a branch; `settled-by-operator`: an operator settled it by hand. */
export type AckOutcome = Phase2Outcome["outcome"] | "settled-by-operator";

export interface Ack {
  readonly xid: Xid;
  readonly n: BranchNo;
  readonly outcome: AckOutcome;
  readonly detail?: string;
}

/**
 * The Idempotency-Key of a client call a record was written for: after a restart or a change
 * of leader, a repeat of that call is still recognised, and another call with it refused.
 */
export interface LoggedKey {
  readonly principal: string;
  readonly key: string;
  /** Digest of the call's route, path and body. */
  readonly fingerprint: string;
}

/*
 * Fields added to format 1 without a new version are optional: an older record lacks them and
 * reads as their absence (`prepareOnly` absent = false, `keys` absent = none).
 */
export type LogRecord =
  | {
      readonly type: "preparing";
      readonly v: 1;
      readonly txn: TxnHeader;
      readonly branches: readonly BranchSpec[];
      /** A single PostgreSQL or Redis branch committed in one phase, settled from its marker. */
      readonly onePhase: boolean;
      /** Written by the prepare endpoint: stop at `prepared`, also after a restart. */
      readonly prepareOnly?: true;
      readonly keys?: readonly LoggedKey[];
      readonly atMs: number;
    }
  | {
      /** Compare-and-set: only the first `decide` of a transaction takes effect. */
      readonly type: "decide";
      readonly v: 1;
      readonly xid: Xid;
      readonly decision: Decision;
      readonly code: DecisionCode;
      /** Human-readable detail of the code. */
      readonly reason: string;
      /** The branch the decision is about (the one that voted no). */
      readonly branch?: BranchNo;
      /** Present when the log has no `preparing` record for it (abort of an active transaction). */
      readonly txn?: TxnHeader;
      readonly branches?: readonly BranchSpec[];
      /** Branches already settled with this decision (one-phase commit). */
      readonly acks?: readonly Ack[];
      readonly operator?: Operator;
      /**
       * Branch number → its yes vote's evidence (commit decisions): what the participant asked
       * to get back in phase 2 (Kafka: where its marker partition stood). Absent in older records.
       */
      readonly evidence?: Readonly<Record<string, string>>;
      /** Keys of the client calls waiting for it that no earlier record carries. */
      readonly keys?: readonly LoggedKey[];
      readonly atMs: number;
    }
  | {
      readonly type: "acks";
      readonly v: 1;
      readonly acks: readonly Ack[];
      readonly operator?: Operator;
      readonly atMs: number;
    }
  | {
      readonly type: "forget";
      readonly v: 1;
      readonly xids: readonly Xid[];
      /**
       * The largest begin time among `xids` (absent in older records): the table keeps the
       * largest as the presumed-abort watermark (`TxnTable.forgetWatermarkMs`).
       */
      readonly beganAtMsMax?: number;
      readonly operator?: Operator;
      readonly atMs: number;
    }
  | {
      /**
       * Recovery found prepared branches the log does not explain: they are driven to the
       * transaction's decision (again), or — when the log has no record of the transaction —
       * it is created here decided abort (`txn` present), so their rollback is logged first.
       */
      readonly type: "recover";
      readonly v: 1;
      readonly xid: Xid;
      readonly txn?: TxnHeader;
      readonly branches: readonly BranchSpec[];
      readonly reason: string;
      readonly atMs: number;
    };

export type RecordType = LogRecord["type"];
