/**
 * Phase 1: once `preparing` is durable, prepare the branches (all at once, or one at a time
 * by configuration), count the votes, and decide — abort on a no, commit (or, prepare-only,
 * stop at `prepared`) on all yes. A one-phase branch is committed in one call instead, and
 * its outcome is the decision.
 */
import type { Vote } from "../../participants/participant.js";
import type { BranchNo, Xid } from "./ids.js";
import type { BranchVote, CallError, OnePhaseResult } from "./inputs.js";
import { only, type Leader } from "./leader.js";
import {
  enter,
  newPreparing,
  proposing,
  undecidedOf,
  type LiveTxn,
  type Preparing,
} from "./phase.js";
import { backoffMs } from "./backoff.js";
import { releaseWork } from "./payload.js";
import { proposeDecision } from "./propose.js";
import type { Ack, BranchSpec } from "./records.js";
import { txnReply } from "./replies.js";

/** `preparing` of `live` was applied: start phase 1, or the one-phase commit. */
export function preparingApplied(l: Leader, live: LiveTxn, onePhase: boolean): void {
  const active = live.phase;
  if (active.kind !== "active") return;
  enter(live, newPreparing());
  if (onePhase && active.abortTried) {
    // An abort whose append was reported failed may have landed anyway, and a one-phase
    // commit is itself the decision: abort again rather than race it.
    return proposeDecision(l, live, "abort", active.abortTried);
  }
  if (onePhase) {
    l.emit({
      type: "commit-one-phase",
      xid: live.header.xid,
      branch: only(live.branches).spec,
      deadlineMs: live.header.deadlineMs,
      principal: live.header.principal,
    });
    return;
  }
  sendPrepares(l, live);
  decideFromVotes(l, live); // a transaction without branches has all its votes
}

/**
 * Sends the prepares due, by `prepareOrder`. `parallel`: every branch without a vote or a
 * call out, at once — a transaction's latency is its slowest prepare; two transactions that
 * lock the same rows in two databases in opposite orders then wait on each other in a cycle
 * no database sees, which the participants' lock timeout (PostgreSQL: `lockTimeoutMs`; Redis
 * votes no at once) turns into a no vote. `ordered`: one at a time, in participant-name
 * order, so such transactions lock in the same order and cannot form that cycle; the cost
 * is one prepare's latency per extra branch. Nothing more is sent once a branch voted no.
 */
export function sendPrepares(l: Leader, live: LiveTxn): void {
  const p = undecidedOf(live.phase);
  if (p?.kind !== "preparing") return;
  if ([...p.votes.values()].some((v) => v.vote === "no")) return;
  const unvoted = live.branches.filter((b) => !p.votes.has(b.spec.n));
  if (l.cfg.prepareOrder === "parallel") {
    for (const b of unvoted) if (!p.outstanding.has(b.spec.n)) sendPrepare(l, live, p, b.spec);
    return;
  }
  const next = unvoted.sort((a, b) => (a.spec.participant < b.spec.participant ? -1 : 1))[0];
  if (next && p.outstanding.size === 0) sendPrepare(l, live, p, next.spec);
}

function sendPrepare(l: Leader, live: LiveTxn, p: Preparing, branch: BranchSpec): void {
  p.outstanding.add(branch.n);
  l.emit({
    type: "prepare",
    xid: live.header.xid,
    branch,
    deadlineMs: live.header.deadlineMs,
    principal: live.header.principal,
  });
}

/** A participant's answer as the engine takes it: a no vote's reason becomes its code. */
export function branchVote(vote: Vote): BranchVote {
  if (vote.vote === "yes") return vote;
  const error = { code: vote.reason, message: vote.detail, retryable: false };
  return { vote: "no", error, failed: false };
}

/** A prepare call that failed (or timed out): a no vote carrying the call's typed error. */
export const failedVote = (error: CallError): BranchVote => ({ vote: "no", error, failed: true });

export function voted(l: Leader, xid: Xid, n: BranchNo, vote: BranchVote): void {
  const live = l.live.get(xid);
  const p = live && undecidedOf(live.phase);
  if (!live || p?.kind !== "preparing") return;
  p.outstanding.delete(n);
  p.votes.set(n, vote);
  if (vote.vote === "yes") {
    // Prepared at its participant: this leader sends it no prepare again. The table keeps the
    // work until the decision (votes are not logged: a new leader re-drives every prepare).
    const b = live.branches.find((x) => x.spec.n === n);
    if (b) b.spec = releaseWork(b.spec);
    sendPrepares(l, live);
  }
  decideFromVotes(l, live);
}

/** Aborts on a no vote; once every branch voted yes, commits or (prepare only) stops. */
export function decideFromVotes(l: Leader, live: LiveTxn): void {
  const p = live.phase;
  if (p.kind !== "preparing") return;
  for (const [n, vote] of p.votes) {
    if (vote.vote === "no") {
      const what = vote.failed ? "could not prepare" : "voted no";
      return proposeDecision(l, live, "abort", {
        code: vote.failed ? "prepare-failed" : "vote-no",
        reason: `branch ${n} ${what}: ${vote.error.code}: ${vote.error.message}`,
        branch: n as BranchNo,
      });
    }
  }
  if (p.votes.size < live.branches.length) return;
  if (live.prepareOnly) {
    enter(live, { kind: "prepared", votes: p.votes });
    for (const w of live.waiting.splice(0)) l.reply(w.req, txnReply(l.liveView(live)));
    return;
  }
  const code = live.branches.length === 0 ? "no-branches" : "all-voted-yes";
  proposeDecision(l, live, "commit", { code, reason: "all branches voted yes" });
}

export function onePhaseDone(l: Leader, xid: Xid, outcome: OnePhaseResult): void {
  const live = l.live.get(xid);
  const p = live && undecidedOf(live.phase);
  if (!live || p?.kind !== "preparing") return;
  const b = only(live.branches);
  const ack: Ack = { xid, n: b.spec.n, outcome: "done" };
  switch (outcome.outcome) {
    case "committed":
      return proposeDecision(l, live, "commit", {
        code: "one-phase",
        reason: "committed in one phase",
        acks: [ack],
      });
    case "aborted":
      return proposeDecision(l, live, "abort", {
        code: "vote-no",
        reason: `one-phase commit failed: ${outcome.reason}: ${outcome.detail}`,
        acks: [ack],
        branch: b.spec.n,
      });
    case "unknown":
      p.onePhaseCheckDueMs = l.nowMs + backoffMs(l.cfg.phase2Backoff, 1, l.random);
      return;
  }
}

/** Resumes phase 1 (after a restart, or a decision the log did not take). */
export function resumePhase1(l: Leader, live: LiveTxn): void {
  // A one-phase branch is settled by its own outcome instead.
  if (proposing(live.phase) !== undefined || l.onePhasePending(live)) return;
  sendPrepares(l, live);
  decideFromVotes(l, live);
}
