/**
 * An operator's heuristic resolutions: commit or abort an undecided transaction, settle the
 * branches of a decided one by hand, forget a heuristic case. Each is refused (409) whenever
 * it would break a guarantee, and each waits for the entry it wrote before it answers.
 */
import { invariant } from "./assert.js";
import type { Xid } from "./ids.js";
import type { ReqId, ResolveInput } from "./inputs.js";
import type { Leader } from "./leader.js";
import { proposing, votesOf, type LiveTxn } from "./phase.js";
import { proposeDecision } from "./propose.js";
import type { Ack, Operator } from "./records.js";
import {
  alreadyCommitted,
  errorReply,
  logRefused,
  notFound,
  tooManyWaiting,
  txnReply,
} from "./replies.js";
import { heuristicOf } from "./table.js";
import { isFinished, type TxnState } from "./txn.js";
import { viewOfDurable, type TxnView } from "./view.js";

export function resolve(l: Leader, input: ResolveInput): void {
  const operator: Operator = { id: input.principal.id, reason: input.reason };
  const t = l.table.get(input.xid);
  const live = l.live.get(input.xid);
  if (!t && !live) return l.reply(input.req, notFound(input.xid));
  const state = l.view(input.xid)?.state ?? "aborted";
  switch (input.action) {
    case "commit":
    case "abort":
      return decideByHand(l, input, input.action, operator, state);
    case "settle":
      return settle(l, input, operator, state);
    case "forget": {
      if (!t || !isFinished(state)) {
        return refuse(l, input, state, "only a finished transaction can be forgotten");
      }
      if (heuristicOf(t) === undefined) {
        return refuse(
          l,
          input,
          state,
          "not a heuristic case: it is forgotten on its own after the retention time",
        );
      }
      if (!waitOperator(l, input.xid, input.req, viewOfDurable(t))) return;
      const beganAtMsMax = t.header.beganAtMs;
      l.propose({ type: "forget", v: 1, xids: [input.xid], beganAtMsMax, operator, atMs: l.nowMs });
      return;
    }
  }
}

function refuse(
  l: Leader,
  input: ResolveInput,
  state: TxnState,
  why: string,
  details: Record<string, unknown> = {},
): void {
  l.reply(input.req, errorReply("invalid-state", why, { xid: input.xid, state, ...details }));
}

function decideByHand(
  l: Leader,
  input: ResolveInput,
  action: "commit" | "abort",
  operator: Operator,
  state: TxnState,
): void {
  const t = l.table.get(input.xid);
  const decided = t?.decision?.decision;
  if (decided === action) {
    const view = l.view(input.xid);
    invariant(view !== undefined, `no view of ${input.xid}`);
    return l.reply(input.req, txnReply(view));
  }
  if (decided === "commit") return l.reply(input.req, alreadyCommitted(input.xid));
  if (decided === "abort") {
    return refuse(l, input, state, "the transaction is decided abort; a decision never changes");
  }
  const target = l.live.get(input.xid) ?? (t ? l.revive(t) : undefined);
  invariant(target !== undefined, "undecided transaction without state");
  if (proposing(target.phase) === "decide" || l.onePhasePending(target)) {
    return refuse(l, input, state, "its decision is being written; ask again in a moment");
  }
  if (action === "commit") return forceCommit(l, input, target, operator, state);
  if (!waitOperator(l, input.xid, input.req)) return;
  proposeDecision(l, target, "abort", {
    code: "operator-abort",
    reason: `aborted by operator ${operator.id}: ${operator.reason}`,
    operator,
  });
}

/** Commit by hand, only once every branch is prepared (a Kafka branch is its logged messages). */
function forceCommit(
  l: Leader,
  input: ResolveInput,
  live: LiveTxn,
  operator: Operator,
  state: TxnState,
): void {
  const logged = l.table.get(input.xid) !== undefined;
  const votes = votesOf(live.phase);
  // A Kafka branch holds nothing in Kafka: its messages in the log are its prepared state,
  // unless this leader heard it vote no (a missing topic, say).
  const notPrepared = live.branches
    .filter((b) =>
      b.spec.kind === "kafka"
        ? votes?.get(b.spec.n)?.vote === "no"
        : !input.prepared.has(b.spec.branchId),
    )
    .map((b) => b.spec.n);
  const why = !logged
    ? "nothing is prepared yet: it never reached preparing"
    : notPrepared.length > 0
      ? `not every branch is prepared: branch ${notPrepared.join(", ")}`
      : l.nowMs > live.header.deadlineMs
        ? "its deadline has passed: only abort may be decided"
        : undefined;
  if (why) return refuse(l, input, state, why, { notPrepared });
  if (!waitOperator(l, input.xid, input.req)) return;
  proposeDecision(l, live, "commit", {
    code: "operator-commit",
    reason: `committed by operator ${operator.id}: ${operator.reason}`,
    operator,
  });
}

/** Records unfinished branches of a decided transaction as settled by hand. */
function settle(l: Leader, input: ResolveInput, operator: Operator, state: TxnState): void {
  const t = l.table.get(input.xid);
  if (!t?.decision) {
    return refuse(l, input, state, "only a decided transaction's branches can be settled");
  }
  if (input.branch !== undefined && !t.branches.some((b) => b.n === input.branch)) {
    return l.reply(
      input.req,
      errorReply("branch-not-found", `no branch ${input.branch}`, {
        xid: input.xid,
        branch: input.branch,
      }),
    );
  }
  const acks: Ack[] = t.branches
    .filter((b) => !t.acks.has(b.n) && (input.branch === undefined || b.n === input.branch))
    .map((b) => ({
      xid: input.xid,
      n: b.n,
      outcome: "settled-by-operator",
      detail: `by ${operator.id}: ${operator.reason}`,
    }));
  if (acks.length === 0) return l.reply(input.req, txnReply(viewOfDurable(t)));
  if (!waitOperator(l, input.xid, input.req)) return;
  l.propose({ type: "acks", v: 1, acks, operator, atMs: l.nowMs });
}

/** The operator waits for the record about to be proposed; false (refused) when too many do. */
function waitOperator(l: Leader, xid: Xid, req: ReqId, last?: TxnView): boolean {
  let waiting = 0;
  for (const w of l.operatorWaits.values()) waiting += w.length;
  if (waiting >= l.cfg.operatorCallsWaitingMax) {
    l.reply(req, tooManyWaiting("operatorCallsWaitingMax", l.cfg.operatorCallsWaitingMax));
    return false;
  }
  const waits = l.operatorWaits.get(xid) ?? [];
  waits.push({ req, ...(last ? { last } : {}) });
  l.operatorWaits.set(xid, waits);
  return true;
}

/** An entry about these transactions was applied: operators waiting on them hear the outcome. */
export function answerOperators(l: Leader, xids: readonly Xid[]): void {
  for (const xid of xids) {
    for (const w of l.operatorWaits.get(xid) ?? []) {
      const view = l.view(xid) ?? w.last;
      l.reply(
        w.req,
        view ? txnReply(view) : errorReply("outcome-unknown", "the transaction is gone"),
      );
    }
    l.operatorWaits.delete(xid);
  }
}

/** The log did not take an operator's entry: the operator hears it and may repeat. */
export function failOperators(l: Leader, xids: readonly Xid[], error: string): void {
  for (const xid of xids) {
    for (const w of l.operatorWaits.get(xid) ?? []) l.reply(w.req, logRefused(error));
    l.operatorWaits.delete(xid);
  }
}
