/** The read model of a transaction that clients and operators see. */
import type { ParticipantKind } from "../../participants/participant.js";
import type { BranchId, BranchNo, Xid } from "./ids.js";
import type { BranchVote } from "./inputs.js";
import type { BranchSpec, Decision, TxnHeader } from "./records.js";
import { durableState, heuristicOf, type DurableTxn, type Heuristic } from "./table.js";
import type { TxnState } from "./txn.js";

export type BranchState =
  | "enlisted"
  | "preparing"
  | "prepared"
  | "committing"
  | "rolling-back"
  | "committed"
  | "rolled-back"
  | "heuristic-commit"
  | "heuristic-rollback"
  | "settled-by-operator";

export interface BranchView {
  readonly branch: BranchNo;
  readonly branchId: BranchId;
  readonly participant: string;
  readonly kind: ParticipantKind;
  readonly state: BranchState;
  readonly vote?: BranchVote;
}

export interface TxnView {
  readonly xid: Xid;
  readonly state: TxnState;
  readonly decision?: Decision;
  /** Why it was decided: a stable code, a human-readable message, and the branch concerned. */
  readonly reason?: { readonly code: string; readonly message: string; readonly branch?: number };
  readonly heuristic?: Heuristic;
  readonly deadlineMs: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly branches: readonly BranchView[];
}

/** Volatile facts the leader holds about a branch before the log knows its fate. */
export interface LiveBranchFacts {
  readonly spec: BranchSpec;
  readonly vote?: BranchVote;
}

export function viewOfLive(
  header: TxnHeader,
  state: TxnState,
  branches: readonly LiveBranchFacts[],
): TxnView {
  return {
    xid: header.xid,
    state,
    deadlineMs: header.deadlineMs,
    labels: header.labels,
    branches: branches.map((b) => ({
      ...branchBase(b.spec),
      state: liveBranchState(state, b),
      ...(b.vote ? { vote: b.vote } : {}),
    })),
  };
}

function liveBranchState(state: TxnState, b: LiveBranchFacts): BranchState {
  // A no vote shows as `vote: no` on a branch still `preparing` until the abort is decided.
  if (b.vote?.vote === "yes") return "prepared";
  return state === "active" ? "enlisted" : "preparing";
}

export function viewOfDurable(
  t: DurableTxn,
  votes?: ReadonlyMap<number, BranchVote>,
  stateOverride?: TxnState,
): TxnView {
  const state = stateOverride ?? durableState(t);
  const heuristic = heuristicOf(t);
  return {
    xid: t.header.xid,
    state,
    ...(t.decision
      ? {
          decision: t.decision.decision,
          reason: {
            code: t.decision.code,
            message: t.decision.reason,
            ...(t.decision.branch === undefined ? {} : { branch: t.decision.branch }),
          },
        }
      : {}),
    ...(heuristic ? { heuristic } : {}),
    deadlineMs: t.header.deadlineMs,
    labels: t.header.labels,
    branches: t.branches.map((spec) => {
      const vote = votes?.get(spec.n);
      return {
        ...branchBase(spec),
        state: durableBranchState(t, spec.n, vote),
        ...(vote ? { vote } : {}),
      };
    }),
  };
}

function durableBranchState(t: DurableTxn, n: number, vote: BranchVote | undefined): BranchState {
  const ack = t.acks.get(n);
  if (!t.decision) {
    return vote?.vote === "yes" ? "prepared" : "preparing";
  }
  const commit = t.decision.decision === "commit";
  if (!ack) return commit ? "committing" : "rolling-back";
  if (
    ack.outcome === "heuristic-commit" ||
    ack.outcome === "heuristic-rollback" ||
    ack.outcome === "settled-by-operator"
  ) {
    return ack.outcome;
  }
  return commit ? "committed" : "rolled-back";
}

function branchBase(spec: BranchSpec) {
  return {
    branch: spec.n,
    branchId: spec.branchId,
    participant: spec.participant,
    kind: spec.kind,
  };
}
