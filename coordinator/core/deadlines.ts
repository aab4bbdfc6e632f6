/**
 * Time, on the leader: the deadline abort (G4: no commit decision → abort, and nothing live
 * is aborted before its deadline), one-phase checks that fall due, phase-2 retries that fall
 * due, forgetting finished transactions once due (forget-queue.ts), and, on shutdown,
 * abandoning what only this node's memory holds.
 */
import { only, type Leader } from "./leader.js";
import { proposing, undecidedOf, type LiveTxn } from "./phase.js";
import { sendDuePhase2 } from "./phase2.js";
import { proposeDecision } from "./propose.js";
import type { Xid } from "./ids.js";
import { durableState, heuristicOf } from "./table.js";
import { isFinished } from "./txn.js";

const deadlinePassed = { code: "deadline-passed", reason: "deadline passed" } as const;

export function tick(l: Leader): void {
  for (const live of l.live.values()) {
    if (deadlineAbort(l, live)) continue;
    checkOnePhaseDue(l, live);
    sendDuePhase2(l, live);
  }
  // Undecided in the log but not driven here (the leader restarted): abort at the deadline.
  for (const xid of l.replica.undecided) {
    const t = l.table.get(xid);
    if (!t || l.live.has(xid) || t.onePhase || l.nowMs <= t.header.deadlineMs) continue;
    proposeDecision(l, l.revive(t), "abort", deadlinePassed);
  }
  forgetExpired(l);
  l.keys.expire(l.nowMs);
}

/** Aborts `live` if its deadline passed and nothing else will decide it; says whether it did. */
function deadlineAbort(l: Leader, live: LiveTxn): boolean {
  const phase = live.phase;
  if (
    phase.kind === "deciding" ||
    phase.kind === "phase2" ||
    phase.kind === "finished" ||
    l.nowMs <= live.header.deadlineMs ||
    proposing(phase) !== undefined ||
    l.onePhasePending(live)
  ) {
    return false;
  }
  proposeDecision(l, live, "abort", deadlinePassed);
  return true;
}

function checkOnePhaseDue(l: Leader, live: LiveTxn): void {
  const p = undecidedOf(live.phase);
  if (p?.kind !== "preparing" || p.onePhaseCheckDueMs === undefined) return;
  if (p.onePhaseCheckDueMs > l.nowMs) return;
  p.onePhaseCheckDueMs = undefined;
  l.emit({
    type: "check-one-phase",
    xid: live.header.xid,
    branch: only(live.branches).spec,
    deadlineMs: live.header.deadlineMs,
    principal: live.header.principal,
  });
}

/** Forgets the finished transactions that are due (forget-queue.ts), in batches. */
function forgetExpired(l: Leader): void {
  if (l.forgetProposal !== undefined) return;
  const xids: Xid[] = [];
  while (xids.length < l.cfg.forgetBatchMax) {
    const head = l.forgetDue[0];
    if (!head || head.dueMs > l.nowMs) break;
    l.forgetDue.shift();
    const t = l.table.get(head.xid);
    // Heuristic cases stay until an operator forgets them; one reopened by recovery is
    // queued again when it finishes.
    if (!t || heuristicOf(t) !== undefined || !isFinished(durableState(t))) continue;
    xids.push(head.xid);
  }
  if (xids.length === 0) return;
  const beganAtMsMax = Math.max(...xids.map((xid) => l.table.get(xid)?.header.beganAtMs ?? 0));
  l.forgetProposal = l.propose({ type: "forget", v: 1, xids, beganAtMsMax, atMs: l.nowMs });
}

/**
 * The node is going away: a transaction that never reached `preparing` lives only in this
 * node's memory and cannot be saved, so it is aborted durably now (its client then hears
 * `aborted`, not silence). Everything the log holds is resumed by the next start.
 */
export function abandon(l: Leader): void {
  for (const live of l.live.values()) {
    if (live.phase.kind !== "active" || live.phase.proposal !== undefined) continue;
    proposeDecision(l, live, "abort", {
      code: "shutdown",
      reason: "the node shut down before a decision",
    });
  }
}
