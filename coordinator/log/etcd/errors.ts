/**
 * Typed errors of the etcd decision log, beside the shared ones in ../errors.ts
 * (NotLeaderError, LogClosedError, LogFullError, RecordTooLargeError).
 */
import { LogError } from "../errors.js";

/**
 * etcd raised its NOSPACE alarm (the backend reached --quota-backend-bytes): it refuses every
 * write until an operator compacts, defragments and disarms (docs/etcd.md, "NOSPACE").
 * Appends are not rejected with it: the log holds them and re-sends the batch (checked not to
 * have landed) until space returns, reporting this as its `refusal()` meanwhile, so the node
 * is not ready and refuses begin. A snapshot write or a takeover's meta write fails with it.
 */
export class EtcdNoSpaceError extends LogError {
  readonly code = "etcd-no-space";
  readonly retryable = true;
  constructor(options: { cause: unknown }) {
    super(
      "etcd is out of space (NOSPACE alarm): writes are refused until an operator frees space",
      options,
    );
  }
}

/**
 * The log's entries after the snapshot are not contiguous (a batch missing, or overlapping):
 * the node refuses to lead rather than decide from a log with a hole. An operator must look.
 */
export class LogGapError extends LogError {
  readonly code = "log-gap";
  readonly retryable = false;
  constructor(
    readonly expectedIndex: number,
    readonly foundIndex: number,
  ) {
    super(`decision log not contiguous: expected index ${expectedIndex}, found ${foundIndex}`);
  }
}

/**
 * An append found its index already taken by an entry it did not write, while this node still
 * leads: its view of the log is behind (it replayed less than landed). The log stops appending;
 * nothing was overwritten. The node must replay again (or give up leadership).
 */
export class LogConflictError extends LogError {
  readonly code = "log-conflict";
  readonly retryable = false;
  constructor(
    readonly index: number,
    readonly term: number,
  ) {
    super(
      `index ${index} already holds another entry (term ${term}): this node's log view is stale`,
    );
  }
}

/** etcd did not answer within the call's deadline or the connection failed (transient). */
export class EtcdUnavailableError extends LogError {
  readonly code = "etcd-unavailable";
  readonly retryable = true;
  constructor(
    readonly operation: string,
    options: { cause: unknown },
  ) {
    super(`etcd did not answer ${operation}`, options);
  }
}

/** The etcd data under this cluster id has a format version this build cannot read. */
export class EtcdFormatError extends LogError {
  readonly code = "etcd-format";
  readonly retryable = false;
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`etcd key ${key}: ${reason}`);
  }
}

/**
 * The snapshot pointer changed since this node last read or wrote it (its mod revision
 * differs): another snapshot won. Nothing was cut; this snapshot is dropped.
 */
export class SnapshotConflictError extends LogError {
  readonly code = "snapshot-conflict";
  readonly retryable = false;
  constructor(
    readonly index: number,
    readonly expectedModRevision: number,
  ) {
    super(
      `snapshot at ${index} refused: the pointer moved since mod revision ${expectedModRevision}`,
    );
  }
}
