/**
 * The client calls that ask for an outcome: prepare, commit, abort. Each waits for what its
 * transaction does next, or answers at once from the applied table — for a transaction the
 * log never saw reach `preparing`, with the presumed abort.
 */
import { xidBeganAtMs, type Xid } from "./ids.js";
import type { WaitInput } from "./inputs.js";
import type { KeyedCall, Leader } from "./leader.js";
import { phase2Heard, proposing, stateOf, type LiveTxn } from "./phase.js";
import { resumePhase1 } from "./phase1.js";
import { proposeDecision, proposePreparing } from "./propose.js";
import { alreadyCommitted, errorReply, forbidden, notFound, txnReply } from "./replies.js";
import type { TxnView } from "./view.js";
import { viewOfDurable } from "./view.js";

export function commitOrPrepare(l: Leader, input: WaitInput & { type: "prepare" | "commit" }) {
  if (l.refusedKey(input)) return;
  const live = l.live.get(input.xid) ?? reviveUndecided(l, input.xid);
  if (!live) return answerUnlive(l, input);
  if (!l.mayDrive(input.principal, live.header)) return l.reply(input.req, forbidden(input.xid));
  const prepareOnly = input.type === "prepare";
  const state = stateOf(live.phase);
  switch (state) {
    case "active":
      if (!l.wait(live, input, input.type)) return;
      // A prepare call never turns a commit that is already waiting into prepare-only.
      live.prepareOnly = prepareOnly && !live.waiting.some((w) => w.type === "commit");
      return proposePreparing(l, live);
    case "preparing":
      if (!l.wait(live, input, input.type)) return;
      if (!prepareOnly) live.prepareOnly = false;
      return resumePhase1(l, live);
    case "prepared":
      if (prepareOnly) return l.reply(input.req, txnReply(l.liveView(live)));
      if (!l.wait(live, input, input.type)) return;
      return proposeDecision(l, live, "commit", {
        code: "all-voted-yes",
        reason: "all branches voted yes",
      });
    case "committing":
    case "aborting": {
      const stalled = live.phase.kind === "phase2" && live.phase.stalled;
      // Every phase-2 call returned: the answer is final, whether its `acks` is logged or not.
      const heard = phase2Heard(live.phase);
      if ((prepareOnly && state === "committing") || stalled || heard || state === "aborting") {
        return l.reply(input.req, txnReply(l.liveView(live)));
      }
      l.wait(live, input, input.type);
      return;
    }
    case "committed":
    case "aborted":
      return l.reply(input.req, txnReply(l.liveView(live)));
  }
}

/** Commit or prepare of a transaction this leader does not drive: the table answers. */
function answerUnlive(l: Leader, input: KeyedCall): void {
  const t = l.table.get(input.xid);
  if (t) {
    if (!l.mayDrive(input.principal, t.header)) return l.reply(input.req, forbidden(input.xid));
    return l.reply(input.req, txnReply(viewOfDurable(t)));
  }
  // Presumed abort: a transaction this leader never saw reach `preparing` did not commit —
  // unless it began no later than something the log forgot (the table's watermark, no
  // clock); then it may have been finished and forgotten, and nobody can tell.
  const beganAtMs = xidBeganAtMs(input.xid);
  if (beganAtMs !== undefined && l.table.mayHaveForgotten(beganAtMs, l.nowMs, l.cfg.retentionMs)) {
    return l.reply(
      input.req,
      errorReply(
        "transaction-not-found",
        `no transaction ${input.xid}: unknown, or forgotten (it began no later than the last forgotten one)`,
        { xid: input.xid },
      ),
    );
  }
  l.reply(input.req, txnReply(unknownAborted(input.xid)));
}

export function abort(l: Leader, input: WaitInput): void {
  if (l.refusedKey(input)) return;
  const live = l.live.get(input.xid) ?? reviveUndecided(l, input.xid);
  if (!live) {
    const t = l.table.get(input.xid);
    if (!t) return l.reply(input.req, notFound(input.xid));
    if (!l.mayDrive(input.principal, t.header)) return l.reply(input.req, forbidden(input.xid));
    if (t.decision?.decision === "commit") return l.reply(input.req, alreadyCommitted(input.xid));
    return l.reply(input.req, txnReply(viewOfDurable(t)));
  }
  if (!l.mayDrive(input.principal, live.header)) return l.reply(input.req, forbidden(input.xid));
  const state = stateOf(live.phase);
  if (state === "committing" || state === "committed") {
    return l.reply(input.req, alreadyCommitted(input.xid));
  }
  if (state === "aborting" || state === "aborted") {
    return l.reply(input.req, txnReply(l.liveView(live)));
  }
  if (!l.wait(live, input, "abort")) return;
  // A one-phase commit may already have committed: only its outcome decides.
  if (proposing(live.phase) === "decide" || l.onePhasePending(live)) return;
  // The log names who aborted: the owner, or an admin acting on another's transaction.
  const by = `${input.principal.admin ? "admin" : "client"} ${input.principal.id}`;
  proposeDecision(l, live, "abort", { code: "client-abort", reason: `aborted by ${by}` });
}

export function reviveUndecided(l: Leader, xid: Xid): LiveTxn | undefined {
  const t = l.table.get(xid);
  if (!t || t.decision) return undefined;
  return l.revive(t);
}

function unknownAborted(xid: Xid): TxnView {
  return {
    xid,
    state: "aborted",
    decision: "abort",
    reason: {
      code: "presumed-abort",
      message: "unknown to the log: a transaction that never reached preparing did not commit",
    },
    deadlineMs: 0,
    labels: {},
    branches: [],
  };
}
