/** Engine views → the API's transaction view (ISO times, votes as yes/no with a reason). */
import type { AdminFacts } from "../core/engine.js";
import type { TxnView } from "../core/view.js";
import type {
  AdminTransactionSummary,
  AdminTransactionView,
  TransactionView,
} from "./contract/schemas.js";

export function toApiView(v: TxnView): TransactionView {
  const abortReason = v.decision === "abort" || v.state === "aborted" ? v.reason : undefined;
  return {
    xid: v.xid,
    state: v.state,
    ...(v.decision ? { decision: v.decision } : {}),
    deadline: new Date(v.deadlineMs).toISOString(),
    labels: { ...v.labels },
    branches: v.branches.map((b) => ({
      branch: b.branch,
      branchId: b.branchId,
      participant: b.participant,
      kind: b.kind,
      state: b.state,
      ...(b.vote ? { vote: b.vote.vote } : {}),
      ...(b.vote?.vote === "no"
        ? { voteReason: `${b.vote.error.code}: ${b.vote.error.message}`.slice(0, 4000) }
        : {}),
    })),
    ...(abortReason
      ? {
          reason: {
            code: abortReason.code as NonNullable<TransactionView["reason"]>["code"],
            message: abortReason.message.slice(0, 4000),
            ...(abortReason.branch === undefined ? {} : { branch: abortReason.branch }),
          },
        }
      : {}),
    ...(v.heuristic ? { heuristic: v.heuristic } : {}),
  };
}

/** The operator's view of a transaction: owner, retry counts and the log's history. */
export function toAdminView(f: AdminFacts): AdminTransactionView {
  const base = toApiView(f.view);
  return {
    ...base,
    inDoubt: f.inDoubt,
    createdAt: new Date(f.beganAtMs).toISOString(),
    principal: f.principal,
    branches: base.branches.map((b) => {
      const lastError = f.lastErrors.get(b.branch);
      const vote = f.view.branches.find((v) => v.branch === b.branch)?.vote;
      return {
        ...b,
        attempts: f.attempts.get(b.branch) ?? 0,
        ...(lastError === undefined
          ? {}
          : {
              lastError: lastError.message.slice(0, 4000),
              lastErrorCode: lastError.code.slice(0, 200),
            }),
        ...(vote?.vote === "no" ? { voteCode: vote.error.code.slice(0, 200) } : {}),
      };
    }),
    history: f.history.map((h) => ({
      index: h.index,
      term: h.term,
      at: new Date(h.atMs).toISOString(),
      entry: h.kind === "preparing" ? "preparing" : h.kind,
      detail: h.what.slice(0, 4000),
      ...(h.principal ? { principal: h.principal } : {}),
    })),
  };
}

export function toAdminSummary(f: AdminFacts): AdminTransactionSummary {
  return {
    ...toApiView(f.view),
    inDoubt: f.inDoubt,
    createdAt: new Date(f.beganAtMs).toISOString(),
  };
}
