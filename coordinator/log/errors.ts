/**
 * Every typed error of the decision-log layer (expected conditions the caller handles).
 * Broken invariants are not here: they throw `AssertionError` (see `assertLog`).
 * Each error carries the ids it concerns and `retryable`: whether repeating the same
 * call (possibly elsewhere, possibly later) can succeed.
 */
import { AssertionError } from "node:assert";

export abstract class LogError extends Error {
  abstract readonly code: string;
  abstract readonly retryable: boolean;
}

/** This node does not lead the Raft group; retry on the leader (if known). */
export class NotLeaderError extends LogError {
  readonly code = "not-leader";
  readonly retryable = true;
  constructor(
    readonly leaderId: string | undefined,
    readonly term: number,
  ) {
    super(`not the leader (term ${term}; leader ${leaderId ?? "unknown"})`);
  }
}

/** The log was closed (or is closing); nothing more is accepted. */
export class LogClosedError extends LogError {
  readonly code = "log-closed";
  readonly retryable = false;
  constructor() {
    super("the decision log is closed");
  }
}

/** Too many appends are already waiting for the disk: back off and retry. */
export class LogFullError extends LogError {
  readonly code = "log-full";
  readonly retryable = true;
  constructor(
    readonly limit: "pendingAppendsMax" | "pendingBytesMax",
    readonly pending: number,
    readonly max: number,
  ) {
    super(`decision log over ${limit}: ${pending} pending, at most ${max}`);
  }
}

/** A record, a whole append or a snapshot is over its size limit; it will never fit. */
export class RecordTooLargeError extends LogError {
  readonly code = "record-too-large";
  readonly retryable = false;
  constructor(
    readonly limit: "recordBytesMax" | "pendingBytesMax" | "snapshotBytesMax",
    readonly bytes: number,
    readonly max: number,
  ) {
    super(`${bytes} bytes is over ${limit} ${max}`);
  }
}

/**
 * The on-disk log is damaged somewhere other than a torn final write (or a record has
 * a format version this build cannot read): the log refuses to open rather than guess.
 * An operator must restore the node (or, under Raft, rejoin it as a new member).
 */
export class LogCorruptionError extends LogError {
  readonly code = "log-corrupt";
  readonly retryable = false;
  constructor(
    readonly file: string,
    readonly offsetBytes: number,
    readonly reason: string,
  ) {
    super(`decision log corrupt in ${file} at byte offset ${offsetBytes}: ${reason}`);
  }
}

/**
 * A storage call failed (disk full, EIO, a simulated crash). After a failed write or
 * fsync the kernel may have dropped the dirty pages, so the log poisons itself: every
 * pending and later call fails until the log is reopened (which rescans the disk).
 */
export class LogIOError extends LogError {
  readonly code = "log-io";
  readonly retryable = false;
  constructor(
    readonly operation: string,
    readonly file: string | undefined,
    options: { cause: unknown },
  ) {
    super(`decision log storage failed during ${operation}${file ? ` on ${file}` : ""}`, options);
  }
}

/** Asserts an invariant of this layer; a failure is a bug, not an operating condition. */
export function assertLog(condition: boolean, message: string): asserts condition {
  if (!condition) throw new AssertionError({ message: `decision log invariant: ${message}` });
}
