/**
 * What the leader knows of one transaction it drives: its header, branches, waiting calls, and
 * its phase — one discriminated union, each variant carrying only its own data:
 *
 *   active → preparing → prepared → deciding → phase2 → finished
 *   active | preparing | prepared → deciding (an abort) → phase2 → finished
 *
 * `deciding` remembers the phase it left: when the log does not take the decision, the
 * transaction goes back there. A decision may also be applied that this leader did not
 * propose (an append reported failed that landed), so phase 2 may follow any undecided phase.
 * Every change of phase goes through `enter`, which asserts the phase it starts from.
 */
import { assertNever, invariant } from "./assert.js";
import type { BranchVote, CallError, ReqId, WaitType } from "./inputs.js";
import type { Ack, BranchSpec, Decision, DecisionCode, LoggedKey, TxnHeader } from "./records.js";
import type { DurableTxn } from "./table.js";
import type { TxnState } from "./txn.js";

export type Votes = Map<number, BranchVote>;

export interface Phase2Track {
  inFlight: boolean;
  attempt: number;
  dueMs: number;
  lastError?: CallError;
}

export interface Active {
  readonly kind: "active";
  /** Bytes of branch work enlisted so far. */
  payloadBytes: number;
  /** `preparing` was proposed: the log may hold these branches, so they can no longer change. */
  fixed: boolean;
  /** The `preparing` proposal on its way to the log. */
  proposal?: number;
  /** An abort this leader proposed for it, even if the log reported it failed. */
  abortTried?: { readonly code: DecisionCode; readonly reason: string };
}

export interface Preparing {
  readonly kind: "preparing";
  readonly votes: Votes;
  /** Branches with a prepare call out: a retried commit must not send a second one. */
  readonly outstanding: Set<number>;
  /** When to ask a one-phase branch's participant whether it committed. */
  onePhaseCheckDueMs?: number;
}

export interface Prepared {
  readonly kind: "prepared";
  readonly votes: Votes;
}

export type Undecided = Active | Preparing | Prepared;

export interface Deciding {
  readonly kind: "deciding";
  readonly decision: Decision;
  /** The `decide` proposal on its way to the log. */
  readonly proposal: number;
  /** Where the transaction goes back to when the log does not take the decision. */
  readonly from: Undecided;
}

export interface Phase2 {
  readonly kind: "phase2";
  readonly decision: Decision;
  /** Kept for the views: which branches voted what before the decision. */
  readonly votes: Votes;
  /** Branch number → its phase-2 calls; a branch acknowledged in the log has none. */
  readonly tracks: Map<number, Phase2Track>;
  /**
   * Branch number → the outcome its phase-2 call returned, kept until the transaction is
   * finished. The `acks` record that logs it is written in the background: answers count an
   * outcome once heard (the participant has done it), the record only spares a re-drive.
   */
  readonly heard: Map<number, Ack>;
  /** Phase 2 has failed at least once: commit answers `committing` rather than wait. */
  stalled: boolean;
  /**
   * Branches whose next phase-2 call is their first anywhere: this leadership's own proposal
   * decided them, so no call on them ran before (a Kafka branch then skips its marker check,
   * docs/architecture.md §7.3). Emptied as calls go out; a revived transaction has none.
   */
  readonly firstCalls: Set<number>;
}

export interface Finished {
  readonly kind: "finished";
  readonly decision: Decision;
}

export type Phase = Undecided | Deciding | Phase2 | Finished;
export type PhaseKind = Phase["kind"];

export interface LiveBranch {
  spec: BranchSpec;
  readonly servicePrepared: boolean;
}

/** A client call waiting for an answer; its key goes into the next record proposed for it. */
export interface Waiter {
  readonly req: ReqId;
  readonly type: WaitType;
  readonly key?: LoggedKey;
  keyProposed?: boolean;
}

/** What the leader drives for one transaction until it is finished. */
export interface LiveTxn {
  readonly header: TxnHeader;
  readonly branches: LiveBranch[];
  /** Set by the prepare endpoint: stop at `prepared` and wait for commit. */
  prepareOnly: boolean;
  readonly waiting: Waiter[];
  phase: Phase;
}

const allowed: Readonly<Record<PhaseKind, readonly PhaseKind[]>> = {
  active: ["preparing", "deciding", "phase2"],
  preparing: ["prepared", "deciding", "phase2"],
  prepared: ["deciding", "phase2"],
  deciding: ["phase2"],
  phase2: ["finished"],
  finished: [],
};

/** Moves `txn` to `next`; a move the diagram above does not allow is a bug. */
export function enter(txn: LiveTxn, next: Phase): void {
  const from = txn.phase;
  const back = from.kind === "deciding" && next === from.from;
  invariant(
    back || allowed[from.kind].includes(next.kind),
    `${txn.header.xid}: ${next.kind} not allowed from ${from.kind}`,
  );
  const decided = (p: Phase) =>
    p.kind === "phase2" || p.kind === "finished" ? p.decision : undefined;
  const before = decided(from);
  invariant(
    before === undefined || before === decided(next),
    `${txn.header.xid}: decision ${before} cannot become ${decided(next)}`,
  );
  txn.phase = next;
}

/** The state clients see: `deciding` shows the phase it left until the decision is applied. */
export function stateOf(phase: Phase): TxnState {
  switch (phase.kind) {
    case "active":
    case "preparing":
    case "prepared":
      return phase.kind;
    case "deciding":
      return phase.from.kind;
    case "phase2":
      return phase.decision === "commit" ? "committing" : "aborting";
    case "finished":
      return phase.decision === "commit" ? "committed" : "aborted";
    default:
      return assertNever(phase, "phase");
  }
}

/** The undecided phase underneath: itself, or the one `deciding` left. */
export function undecidedOf(phase: Phase): Undecided | undefined {
  if (phase.kind === "deciding") return phase.from;
  return phase.kind === "phase2" || phase.kind === "finished" ? undefined : phase;
}

/** Votes heard so far (none before preparing). */
export function votesOf(phase: Phase): ReadonlyMap<number, BranchVote> | undefined {
  const p = phase.kind === "deciding" ? phase.from : phase;
  return p.kind === "active" || p.kind === "finished" ? undefined : p.votes;
}

/** Which record is on its way to the log for it, if any. */
export function proposing(phase: Phase): "preparing" | "decide" | undefined {
  if (phase.kind === "deciding") return "decide";
  return phase.kind === "active" && phase.proposal !== undefined ? "preparing" : undefined;
}

export const newPhase2 = (decision: Decision, votes: Votes): Phase2 => ({
  kind: "phase2",
  decision,
  votes,
  tracks: new Map(),
  heard: new Map(),
  stalled: false,
  firstCalls: new Set(),
});

/** Every branch's phase-2 call has returned (none left to send or retry). */
export const phase2Heard = (phase: Phase): boolean =>
  phase.kind === "phase2" && phase.tracks.size === 0;

/**
 * The logged transaction with the phase-2 outcomes heard but not yet logged: what the leader
 * answers from, so that a read after `committed` never says `committing` on this leader. The
 * log's own acknowledgements win over what was heard.
 */
export function withHeard(t: DurableTxn, phase: Phase | undefined): DurableTxn {
  if (phase?.kind !== "phase2" || phase.heard.size === 0) return t;
  return { ...t, acks: new Map([...phase.heard, ...t.acks]) };
}

export const newPreparing = (): Preparing => ({
  kind: "preparing",
  votes: new Map(),
  outstanding: new Set(),
});
