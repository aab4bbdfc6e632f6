/** Engine views → the API's transaction view (ISO times, votes as yes/no with a reason). */
import type { TxnView } from "../core/view.js";
import type { TransactionView } from "./contract/schemas.js";

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
        ? { voteReason: `${b.vote.reason}: ${b.vote.detail}`.slice(0, 4000) }
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
