/**
 * Writes 1 and 2 of a commit: proposing `preparing` and `decide` for a live transaction. The
 * keys of the calls waiting on it ride along, so a repeat after a restart answers the same.
 */
import type { BranchNo } from "./ids.js";
import type { BranchVote } from "./inputs.js";
import type { Leader } from "./leader.js";
import { enter, proposing, undecidedOf, votesOf, type LiveTxn } from "./phase.js";
import type { Ack, Decision, DecisionCode, LoggedKey, Operator } from "./records.js";

export function proposePreparing(l: Leader, live: LiveTxn): void {
  const phase = live.phase;
  if (phase.kind !== "active" || phase.proposal !== undefined) return;
  phase.fixed = true;
  const onePhase =
    l.cfg.onePhase &&
    !live.prepareOnly &&
    live.branches.length === 1 &&
    live.branches[0]?.spec.kind !== "kafka" &&
    !live.branches[0]?.servicePrepared;
  phase.proposal = l.propose({
    type: "preparing",
    v: 1,
    txn: live.header,
    branches: live.branches.map((b) => b.spec),
    onePhase,
    ...(live.prepareOnly ? { prepareOnly: true } : {}),
    ...keysToLog(l, live),
    atMs: l.nowMs,
  });
}

export interface DecisionWhy {
  readonly code: DecisionCode;
  readonly reason: string;
  /** The branch that caused it (a no vote). */
  readonly branch?: BranchNo;
  /** Phase 2 already done (a one-phase commit's outcome). */
  readonly acks?: Ack[];
  readonly operator?: Operator;
}

/** Proposes the decision, unless one is on its way; past the deadline only abort. */
export function proposeDecision(
  l: Leader,
  live: LiveTxn,
  decision: Decision,
  why: DecisionWhy,
): void {
  if (proposing(live.phase) === "decide") return;
  const from = undecidedOf(live.phase);
  if (!from) return;
  if (decision === "commit" && why.acks === undefined && l.nowMs > live.header.deadlineMs) {
    // Past the deadline only an abort may be decided, whether or not a tick saw it first.
    return proposeDecision(l, live, "abort", {
      code: "deadline-passed",
      reason: "deadline passed",
    });
  }
  if (from.kind === "active") {
    // The `preparing` proposal, if any, is no longer awaited: the decision supersedes it.
    from.proposal = undefined;
    if (decision === "abort") from.abortTried = { code: why.code, reason: why.reason };
  }
  const known = l.table.get(live.header.xid) !== undefined;
  const votes = votesOf(from);
  const proposal = l.propose({
    type: "decide",
    v: 1,
    xid: live.header.xid,
    decision,
    code: why.code,
    reason: why.reason,
    ...(why.branch === undefined ? {} : { branch: why.branch }),
    ...(known ? {} : { txn: live.header, branches: live.branches.map((b) => b.spec) }),
    ...(why.acks ? { acks: why.acks } : {}),
    ...(why.operator ? { operator: why.operator } : {}),
    ...(decision === "commit" && votes ? evidenceOf(votes) : {}),
    ...keysToLog(l, live),
    atMs: l.nowMs,
  });
  enter(live, { kind: "deciding", decision, proposal, from });
}

/** Keys of waiting calls that no record carries yet, once each: the next record does. */
function keysToLog(l: Leader, live: LiveTxn): { keys?: LoggedKey[] } {
  const keys = new Map<string, LoggedKey>();
  for (const w of live.waiting) {
    if (!w.key || w.keyProposed) continue;
    w.keyProposed = true;
    const held = l.keys.find(w.key.principal, w.key, l.nowMs);
    if (!held?.logged) keys.set(`${w.key.principal}\u0000${w.key.key}`, w.key);
  }
  return keys.size > 0 ? { keys: [...keys.values()] } : {};
}

/** The yes votes' evidence by branch number, for the decide record (records.ts). */
function evidenceOf(votes: ReadonlyMap<number, BranchVote>): { evidence?: Record<string, string> } {
  const evidence: Record<string, string> = {};
  for (const [n, vote] of votes) {
    if (vote.vote === "yes" && vote.evidence !== undefined) evidence[n] = vote.evidence;
  }
  return Object.keys(evidence).length > 0 ? { evidence } : {};
}
