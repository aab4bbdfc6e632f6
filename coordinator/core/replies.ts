/**
 * Every error reply the engine gives, in one place: each carries the ids it concerns. HTTP
 * statuses are the API layer's business (coordinator/api maps the codes).
 */
import type { Xid } from "./ids.js";
import type { EngineErrorCode, Reply } from "./inputs.js";
import type { TxnState } from "./txn.js";
import type { TxnView } from "./view.js";

export function errorReply(
  code: EngineErrorCode,
  message: string,
  details?: Record<string, unknown>,
): Reply {
  return { kind: "error", code, message, ...(details ? { details } : {}) };
}

export const txnReply = (view: TxnView): Reply => ({ kind: "txn", view });

/** How long a caller refused while the leader catches up should wait before asking again. */
export const catchingUpRetryAfterMs = 100;

export const tooManyWaiting = (limit: string, max: number): Reply =>
  errorReply("unavailable", `over ${limit} (${max}): ask again in a moment`, { limit, max });
export const catchingUp = (): Reply =>
  errorReply("unavailable", "the new leader is catching up with the log: ask again in a moment", {
    retryAfterMs: catchingUpRetryAfterMs,
  });
export const overLimit = (limit: string, max: number): Reply =>
  errorReply("limit-exceeded", `over ${limit} (${max})`, { limit, max });
export const notLeader = (): Reply => errorReply("not-leader", "this node is not the leader");
export const notFound = (xid: Xid): Reply =>
  errorReply("transaction-not-found", `no transaction ${xid}`, { xid });
export const forbidden = (xid: Xid): Reply =>
  errorReply("forbidden", "the transaction belongs to another principal", { xid });
export const keyReused = (key: string): Reply =>
  errorReply("idempotency-key-reused", "the idempotency key was used for another request", {
    key,
  });
export const alreadyCommitted = (xid: Xid): Reply =>
  errorReply("transaction-committed", "the transaction is decided commit; it cannot be aborted", {
    xid,
  });
export const invalidState = (xid: Xid, state: TxnState, action: string): Reply =>
  errorReply("invalid-state", `cannot ${action} in state ${state}`, { xid, state });
export const leadershipChanged = (): Reply =>
  errorReply("outcome-unknown", "leadership changed before an answer");
export const logRefused = (error: string): Reply =>
  errorReply("outcome-unknown", `the log did not take the entry: ${error}`);
