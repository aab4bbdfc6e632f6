/**
 * The leader's part in an entry becoming durable, after the replica applied it: the next step
 * of the transaction it concerns, answers for whoever waited on it; and the leader's part in an
 * append that failed. Results are matched to proposals by id and term (leader.ts).
 */
import { invariant } from "./assert.js";
import type { Xid } from "./ids.js";
import type { Proposal } from "./inputs.js";
import type { Leader } from "./leader.js";
import { answerOperators, failOperators } from "./operator.js";
import { enter, proposing, type LiveTxn } from "./phase.js";
import { preparingApplied } from "./phase1.js";
import { answerWaiting, dropTrack, flushAcks, maybeFinished, startPhase2 } from "./phase2.js";
import type { BranchSpec, LogRecord } from "./records.js";
import { logRefused } from "./replies.js";
import { durableState, type ApplyResult, type Entry } from "./table.js";
import { isFinished } from "./txn.js";

/** Branches whose markers may be collected once this `forget` is durable (read before it applies). */
export function forgettable(l: Leader, record: LogRecord): BranchSpec[] {
  if (record.type !== "forget") return [];
  return record.xids.flatMap((xid) => {
    const t = l.table.get(xid);
    return t && isFinished(durableState(t)) ? t.branches : [];
  });
}

export function leaderApplied(
  l: Leader,
  entry: Entry,
  result: ApplyResult,
  forgotten: readonly BranchSpec[],
  proposal: Proposal | undefined,
): void {
  const r = entry.record;
  if (r.type === "preparing" || r.type === "decide") {
    const xid = r.type === "preparing" ? r.txn.xid : r.xid;
    const keys = (r.keys ?? []).map((k) => ({ ...k, atMs: r.atMs }));
    l.keys.rememberLogged(xid, keys, l.nowMs);
  }
  switch (r.type) {
    case "preparing": {
      // Also when its append was reported failed but landed: the log now says preparing.
      const live = l.live.get(r.txn.xid);
      if (live?.phase.kind === "active") preparingApplied(l, live, r.onePhase);
      return;
    }
    case "decide":
      return decideApplied(l, r.xid, result, proposal);
    case "acks":
      if (l.isMine(proposal, l.acksProposal)) l.acksProposal = undefined;
      for (const a of r.acks) {
        dropTrack(l, a.xid, a.n);
        maybeFinished(l, a.xid);
      }
      answerOperators(
        l,
        r.acks.map((a) => a.xid),
      );
      flushAcks(l);
      return;
    case "forget":
      if (l.isMine(proposal, l.forgetProposal)) l.forgetProposal = undefined;
      if (forgotten.length > 0) l.emit({ type: "forgotten", branches: forgotten });
      answerOperators(l, r.xids);
      return;
    case "recover": {
      if (l.isMine(proposal, l.recovering.get(r.xid))) l.recovering.delete(r.xid);
      const t = l.table.get(r.xid);
      if (t?.decision) startPhase2(l, l.revive(t));
      return;
    }
  }
}

function decideApplied(
  l: Leader,
  xid: Xid,
  result: ApplyResult,
  proposal: Proposal | undefined,
): void {
  const t = l.table.get(xid);
  invariant(t?.decision !== undefined, `decide of ${xid} left no decision`);
  const live = l.live.get(xid) ?? l.revive(t);
  const ownDecision =
    live.phase.kind === "deciding" &&
    l.isMine(proposal, live.phase.proposal) &&
    result.won !== false;
  l.enterPhase2(live, t);
  if (ownDecision && live.phase.kind === "phase2") {
    for (const b of t.branches) live.phase.firstCalls.add(b.n);
  }
  // The other side won the compare-and-set: answer with what holds.
  if (result.won === false) answerWaiting(l, live, t);
  startPhase2(l, live);
  answerOperators(l, [xid]);
}

export function leaderAppendFailed(
  l: Leader,
  record: LogRecord,
  proposal: Proposal,
  error: string,
): void {
  switch (record.type) {
    case "preparing":
      return proposalFailed(l, l.live.get(record.txn.xid), proposal, error);
    case "decide":
      if (record.operator) failOperators(l, [record.xid], error);
      return proposalFailed(l, l.live.get(record.xid), proposal, error);
    case "acks":
      // An operator's entry is not retried here: the operator hears it and may repeat.
      if (record.operator) {
        return failOperators(
          l,
          record.acks.map((a) => a.xid),
          error,
        );
      }
      if (!l.isMine(proposal, l.acksProposal)) return;
      l.acksProposal = undefined;
      l.pendingAcks = [...record.acks, ...l.pendingAcks];
      return;
    case "forget":
      if (record.operator) return failOperators(l, record.xids, error);
      if (!l.isMine(proposal, l.forgetProposal)) return;
      l.forgetProposal = undefined;
      // Forget them on a later tick; if the entry landed anyway they are simply gone.
      l.forgetDue.unshift(...record.xids.map((xid) => ({ xid, dueMs: record.atMs })));
      return;
    case "recover":
      // The next scan finds the branches again.
      if (l.isMine(proposal, l.recovering.get(record.xid))) l.recovering.delete(record.xid);
      return;
  }
}

/** The `preparing` or `decide` in flight for `live` failed: back to where it was. */
function proposalFailed(
  l: Leader,
  live: LiveTxn | undefined,
  proposal: Proposal,
  error: string,
): void {
  if (!live) return;
  const phase = live.phase;
  // Only the failure of the entry in flight matters (a `preparing` may fail after an abort
  // was proposed: the abort is still on its way).
  if (phase.kind === "active" && proposing(phase) === "preparing") {
    if (!l.isMine(proposal, phase.proposal)) return;
    phase.proposal = undefined;
  } else if (phase.kind === "deciding") {
    if (!l.isMine(proposal, phase.proposal)) return;
    enter(live, phase.from);
    // A one-phase outcome lives only in memory until its decision is durable: ask again.
    if (phase.from.kind === "preparing" && l.onePhasePending(live)) {
      phase.from.onePhaseCheckDueMs = l.nowMs;
    }
  } else return;
  for (const w of live.waiting.splice(0)) l.reply(w.req, logRefused(error));
}
