/**
 * The engine's vocabulary: the inputs it takes, the outputs it returns, and the replies its
 * client calls hear. Nothing here acts; engine.ts routes each input to the module that owns it.
 */
import type {
  OnePhaseOutcome,
  Phase2Outcome,
  ParticipantKind,
} from "../../participants/participant.js";
import type { BranchWork } from "../../shared/branch-work.js";
import type { KeyLimits, Idem } from "./idempotency.js";
import type { BackoffConfig } from "./backoff.js";
import type { BranchNo, ClusterId, Term, Xid } from "./ids.js";
import type { BranchSpec, LogRecord } from "./records.js";
import type { ListKey } from "./ordered-xids.js";
import type { Entry, HistoryItem } from "./table.js";
import type { TxnState } from "./txn.js";
import type { TxnView } from "./view.js";

export type { Idem } from "./idempotency.js";

export interface Principal {
  readonly id: string;
  readonly admin: boolean;
}

export type ReqId = number;

/**
 * Which leadership proposed a record, and which of its proposals it is: a result (applied,
 * or failed) is matched to its proposal by both, never to "any record of that type".
 */
export interface Proposal {
  readonly id: number;
  readonly term: Term;
}

export type EngineErrorCode =
  | "transaction-not-found"
  | "forbidden"
  | "invalid-state"
  | "transaction-committed"
  | "idempotency-key-reused"
  | "limit-exceeded"
  | "payload-too-large"
  | "branch-not-found"
  | "too-many-transactions"
  | "outcome-unknown"
  | "not-leader"
  | "unavailable";

export type Reply =
  | { readonly kind: "txn"; readonly view: TxnView; readonly created?: boolean }
  | {
      readonly kind: "branch";
      readonly branch: BranchNo;
      readonly branchId: string;
      readonly created: boolean;
    }
  | {
      readonly kind: "error";
      readonly code: EngineErrorCode;
      readonly message: string;
      readonly details?: Record<string, unknown>;
    }
  | { readonly kind: "recovery"; readonly report: RecoveryReport }
  | { readonly kind: "facts"; readonly facts: AdminFacts }
  | {
      readonly kind: "page";
      readonly facts: readonly AdminFacts[];
      /** Where the next page starts; absent on the last page. */
      readonly next?: ListCursor;
    };

/** What one recovery scan found and did, by branch. */
export interface RecoveryReport {
  readonly found: number;
  /** Branches the scan logged a commit for, then a rollback for (carried out after the reply). */
  readonly committed: number;
  readonly rolledBack: number;
  /** Living, being driven, or changed while the scan ran: left for later. */
  readonly left: number;
  /** The branches counted in `committed` and `rolledBack`, for the shell to verify. */
  readonly settling: readonly SettlingBranch[];
}

export interface SettlingBranch {
  readonly participant: string;
  readonly branchId: string;
  readonly action: "commit" | "rollback";
}

/** One participant's answer to `recover()`: the prepared branches it holds. */
export interface FoundBranches {
  readonly participant: string;
  readonly kind: ParticipantKind;
  readonly branchIds: readonly string[];
}

/** The client calls that may wait for what their transaction does next. */
export type WaitType = "prepare" | "commit" | "abort";

export type ResolveAction = "commit" | "abort" | "settle" | "forget";

/** A client call about one transaction. */
export interface XidCall {
  readonly req: ReqId;
  readonly principal: Principal;
  readonly xid: Xid;
}

export type BeginInput = {
  readonly type: "begin";
  readonly req: ReqId;
  readonly principal: Principal;
  readonly xid: Xid;
  readonly timeoutMs: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly idem?: Idem;
};

export type EnlistInput = XidCall & {
  readonly type: "enlist";
  readonly participant: string;
  readonly kind: ParticipantKind;
  readonly payload: BranchWork;
  /** Size of the payload's work, counted against payloadBytesPerTxnMax. */
  readonly payloadBytes: number;
  readonly idem?: Idem;
};

export type ReportPreparedInput = XidCall & {
  readonly type: "report-prepared";
  readonly n: number;
  readonly idem?: Idem;
};

export type WaitInput = XidCall & { readonly type: WaitType; readonly idem?: Idem };

export type ResolveInput = XidCall & {
  /** An operator's heuristic resolution (admin only). */
  readonly type: "resolve";
  readonly action: ResolveAction;
  readonly reason: string;
  readonly branch?: number;
  /** Branch ids the participants list as prepared now (checked before a forced commit). */
  readonly prepared: ReadonlySet<string>;
};

/** The admin list's query: filters, page size, and where the previous page ended. */
export interface ListQuery {
  readonly state?: TxnState;
  readonly inDoubt?: boolean;
  readonly limit: number;
  readonly after?: ListCursor;
}

/** Where a page ended: its last transaction's place in the list (in doubt first, then key). */
export interface ListCursor extends ListKey {
  readonly inDoubt: boolean;
}

/**
 * Reads, answered in order with the writes: a client's or admin's view of one transaction,
 * an operator's facts about one, a page of the admin list.
 */
export type ReadInput =
  | (XidCall & { readonly type: "view" | "admin-facts" })
  | {
      readonly type: "admin-list";
      readonly req: ReqId;
      readonly principal: Principal;
      readonly query: ListQuery;
    };

export type RecoveredInput = {
  /** A recovery scan's lists, taken after the table had applied `startedAtIndex`. */
  readonly type: "recovered";
  readonly req: ReqId;
  readonly startedAtIndex: number;
  readonly found: readonly FoundBranches[];
};

/** One-phase outcomes, or `unknown`: the check is retried. */
export type OnePhaseResult =
  OnePhaseOutcome | { readonly outcome: "unknown"; readonly detail: string };

/** A participant call that failed: its typed error's code and whether a retry can help. */
export interface CallError {
  readonly code: string;
  readonly message: string;
  readonly retryable: boolean;
}

/**
 * A prepare's answer as the engine takes it: yes, or no with a typed error — the participant's
 * reason as its code (`lock-conflict`, …), or, when the call failed, the failure's own code.
 */
export type BranchVote =
  | { readonly vote: "yes"; readonly evidence?: string }
  | {
      readonly vote: "no";
      readonly error: CallError;
      /** No answer came: the call failed or timed out (decided as `prepare-failed`). */
      readonly failed: boolean;
    };

export type Input =
  | ReadInput
  | BeginInput
  | EnlistInput
  | ReportPreparedInput
  | WaitInput
  | {
      readonly type: "applied";
      readonly entry: Entry;
      /** Set when this node proposed the entry (absent on replay). */
      readonly proposal?: Proposal;
    }
  | {
      readonly type: "append-failed";
      readonly record: LogRecord;
      readonly proposal: Proposal;
      readonly error: string;
    }
  | { readonly type: "voted"; readonly xid: Xid; readonly n: BranchNo; readonly vote: BranchVote }
  | {
      readonly type: "phase2-done";
      readonly xid: Xid;
      readonly n: BranchNo;
      readonly outcome: Phase2Outcome;
    }
  | {
      readonly type: "phase2-failed";
      readonly xid: Xid;
      readonly n: BranchNo;
      readonly error: CallError;
    }
  | {
      /** Result of a one-phase commit, or of checking its marker; `unknown` retries the check. */
      readonly type: "one-phase-done";
      readonly xid: Xid;
      readonly outcome: OnePhaseResult;
    }
  | RecoveredInput
  | ResolveInput
  /** Shutting down: begin no new transaction. */
  | { readonly type: "drain" }
  /** Shutting down for good: abort (durably) what only this node's memory holds. */
  | { readonly type: "abandon" }
  | { readonly type: "tick" };

export type Output =
  | { readonly type: "append"; readonly record: LogRecord; readonly proposal: Proposal }
  | {
      readonly type: "prepare";
      readonly xid: Xid;
      readonly branch: BranchSpec;
      readonly deadlineMs: number;
      /** Whose transaction: a participant may run the work with that principal's rights. */
      readonly principal: string;
    }
  | {
      readonly type: "commit" | "rollback";
      readonly xid: Xid;
      readonly branch: BranchSpec;
      readonly term: Term;
      readonly decidedAtMs: number;
      /** The branch's yes vote's evidence, from the decision. */
      readonly evidence?: string;
      /** No phase-2 call on this branch ran anywhere before this one (Phase2Context). */
      readonly firstCall?: true;
    }
  | {
      readonly type: "commit-one-phase" | "check-one-phase";
      readonly xid: Xid;
      readonly branch: BranchSpec;
      readonly deadlineMs: number;
      /** Whose transaction: a participant may run the work with that principal's rights. */
      readonly principal: string;
    }
  | { readonly type: "forgotten"; readonly branches: readonly BranchSpec[] }
  | { readonly type: "reply"; readonly req: ReqId; readonly reply: Reply };

export interface AdminFacts {
  readonly view: TxnView;
  readonly principal: string;
  readonly beganAtMs: number;
  readonly inDoubt: boolean;
  readonly history: readonly HistoryItem[];
  /** Branch number → phase-2 attempts that failed so far. */
  readonly attempts: ReadonlyMap<number, number>;
  /** Branch number → the typed error of its last failed phase-2 attempt. */
  readonly lastErrors: ReadonlyMap<number, CallError>;
}

/** How phase 1 sends the prepares (`protocol.prepareOrder`, phase1.ts `sendPrepares`). */
export type PrepareOrder = "parallel" | "ordered";

export interface EngineConfig extends KeyLimits {
  readonly clusterId: ClusterId;
  readonly inFlightMax: number;
  readonly branchesPerTxnMax: number;
  /** Bytes of all branch work of one transaction (it is all kept in the `preparing` record). */
  readonly payloadBytesPerTxnMax: number;
  /** A limit the merged work of one branch breaks (statements, ops or messages per branch). */
  readonly branchWorkOverLimit: (work: BranchWork) => { limit: string; max: number } | undefined;
  readonly phase2Backoff: BackoffConfig;
  /** How long a finished transaction stays visible before it is forgotten. */
  readonly retentionMs: number;
  /**
   * The largest clock difference between this node and a participant's server: a
   * transaction is forgotten (its participants' records collected) only after
   * max(deadline, finish + retention) plus this.
   */
  readonly clockSkewMsMax: number;
  readonly forgetBatchMax: number;
  /** Commit a single PostgreSQL or Redis branch in one phase. */
  readonly onePhase: boolean;
  /**
   * `parallel`: every branch's prepare goes out at once (a lock cycle across databases then
   * ends in a participant's lock timeout, a no vote); `ordered`: one branch at a time, in
   * participant-name order (no cycle across databases; one prepare's latency per branch).
   */
  readonly prepareOrder: PrepareOrder;
  /** Client calls waiting on one transaction at once; more are refused (`unavailable`). */
  readonly callsWaitingPerTxnMax: number;
  /** Operator resolutions waiting for their record at once; more are refused (`unavailable`). */
  readonly operatorCallsWaitingMax: number;
}
