/**
 * Errors the SDK throws. Every one carries the code (the API's stable code, or a
 * client-side one for failures that never reached an answer), the HTTP status (0 when
 * there was no answer), whether a retry can help, and the xid it concerns.
 */
import type { AbortReason, ErrorCode, TransactionState } from "./wire.js";

/** Failures with no usable answer from any node. */
export type ClientErrorCode =
  /** Every attempt failed to connect or timed out. */
  | "connection-failed"
  /** A node answered with something that is not the API's JSON (e.g. a proxy's page). */
  | "bad-response";

export interface VerdictErrorInit {
  readonly code: ErrorCode | ClientErrorCode;
  readonly message: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly xid?: string | undefined;
  readonly details?: Record<string, unknown> | undefined;
  readonly cause?: unknown;
}

/** Any failed call: an API error answer, or no answer at all. */
export class VerdictError extends Error {
  readonly code: ErrorCode | ClientErrorCode;
  readonly status: number;
  readonly retryable: boolean;
  readonly xid: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(init: VerdictErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = new.target.name;
    this.code = init.code;
    this.status = init.status;
    this.retryable = init.retryable;
    this.xid = init.xid;
    this.details = init.details;
  }
}

/**
 * The transaction is aborted (a no vote, a prepare error, its deadline, an abort): none
 * of its effects will be seen. Thrown by commit, prepare, enlist and reportPrepared.
 */
export class TransactionAbortedError extends VerdictError {
  readonly reason: AbortReason | undefined;

  constructor(xid: string, reason: AbortReason | undefined, message: string, status = 409) {
    super({
      code: "transaction-aborted",
      message,
      status,
      retryable: false,
      xid,
      details: reason ? { reason } : undefined,
    });
    this.reason = reason;
  }
}

/**
 * Commit (or prepare, or abort) could not be resolved: every node that answered lost
 * track of the call, and asking the transaction's status did not show a decision within
 * the bounded attempts. The transaction may still commit or abort: ask `status(xid)` later.
 */
export class OutcomeUnknownError extends VerdictError {
  /** The last state seen, if a status answer came back. */
  readonly lastState: TransactionState | undefined;

  constructor(xid: string, lastState: TransactionState | undefined, cause?: unknown) {
    super({
      code: "outcome-unknown",
      message:
        `the outcome of transaction ${xid} is unknown` +
        (lastState ? ` (last seen ${lastState})` : "") +
        ": ask its status later",
      status: 503,
      retryable: true,
      xid,
      cause,
    });
    this.lastState = lastState;
  }
}

/**
 * `prepareServiceBranch` could not prepare the service's transaction: it was not inside a
 * transaction block, the transaction had already failed (PREPARE answered ROLLBACK), or
 * the server refused. The service's transaction is over either way; the service should
 * report the branch failed (or simply not report it prepared) and may start again.
 * Thrown by `prepareServiceBranch` and `runServicePrepared`; not a VerdictError: no call
 * to Verdict failed.
 */
export class ServiceBranchPrepareError extends Error {
  readonly code = "service-branch-not-prepared";
  readonly retryable = false;
  readonly gid: string;

  constructor(message: string, gid: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ServiceBranchPrepareError";
    this.gid = gid;
  }
}
