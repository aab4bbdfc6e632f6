/**
 * Every error the Redis participant throws on purpose. Each carries the participant name,
 * the branch it concerns (if any) and whether retrying the same call can help. Expected
 * negative outcomes of `prepare` (a lock conflict, a failed precondition) are no-votes,
 * not errors; `commit`/`rollback` throw only the retryable errors below.
 */
import {
  hasSystemErrorCode,
  ParticipantError,
  type ParticipantErrorIds,
} from "../common/errors.js";

export type RedisErrorIds = ParticipantErrorIds;

export abstract class RedisParticipantError extends ParticipantError {}

/**
 * The server could not be reached or did not answer in time (not connected, connection
 * lost, command timeout, server loading or busy). Never a heuristic outcome: the caller
 * retries with backoff.
 */
export class RedisUnavailableError extends RedisParticipantError {
  readonly code = "participant-unavailable";
  readonly retryable = true;
}

/**
 * A commit found that a staged operation can no longer apply: a plain Redis client (which
 * Verdict's locks do not exclude) changed a key's type or value since prepare. Nothing was
 * applied, the branch stays staged with its locks. Retryable: the decision is commit, so an
 * operator fixes the key (or records a heuristic resolution) and the retry then applies it.
 */
export class CommitBlockedError extends RedisParticipantError {
  readonly code = "commit-blocked";
  readonly retryable = true;
  readonly key: string;

  constructor(message: string, ids: RedisErrorIds, key: string) {
    super(message, ids);
    this.key = key;
  }
}

/**
 * The server answered a phase-2, recovery or forget command with an error that is not
 * transient (e.g. a lock key overwritten with another type by a plain client). Retryable:
 * an operator can fix the cause, and the decision must still be carried out (G3).
 */
export class RedisServerError extends RedisParticipantError {
  readonly code = "server-error";
  readonly retryable = true;
}

/** `start` found a server setting that makes a yes vote unsafe, or a server Verdict cannot use. */
export class UnsafeServerError extends RedisParticipantError {
  readonly code = "unsafe-server";
  readonly retryable = false;
  /** One line per offending setting. */
  readonly problems: readonly string[];

  constructor(message: string, ids: RedisErrorIds, problems: readonly string[]) {
    super(message, ids);
    this.problems = problems;
  }
}

/** `start` found the namespace registered to another Verdict cluster (G6). */
export class ClusterMismatchError extends RedisParticipantError {
  readonly code = "cluster-mismatch";
  readonly retryable = false;
  readonly clusterId: string;
  readonly registeredClusterId: string;

  constructor(
    ids: RedisErrorIds,
    namespace: string,
    clusterId: string,
    registeredClusterId: string,
  ) {
    super(
      `participant ${ids.participant}: Redis namespace "${namespace}" belongs to Verdict cluster ` +
        `"${registeredClusterId}", not "${clusterId}"; two clusters never share a namespace. ` +
        `Configure another namespace for this cluster.`,
      ids,
    );
    this.clusterId = clusterId;
    this.registeredClusterId = registeredClusterId;
  }
}

/** A configuration value is invalid (thrown by `parseRedisParticipantConfig` and `start`). */
export class RedisConfigError extends RedisParticipantError {
  readonly code = "invalid-config";
  readonly retryable = false;
}

/** A call came before `start` or after `close`: a programming error in the caller. */
export class ParticipantNotStartedError extends RedisParticipantError {
  readonly code = "not-started";
  readonly retryable = false;
}

/** The first word of a Redis error reply (`ERR`, `WRONGTYPE`, `NOSCRIPT`, …), if `err` is one. */
export function replyCodeOf(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.name !== "ReplyError") return undefined;
  return /^[A-Z]+/.exec(err.message)?.[0];
}

/**
 * Replies that say the server cannot serve right now, nothing about the command. NOSCRIPT
 * reaches a caller only if the server restarted again between reloading a script and
 * running it.
 */
const transientReplyCodes = new Set([
  "LOADING",
  "BUSY",
  "MASTERDOWN",
  "TRYAGAIN",
  "OOM",
  "NOSCRIPT",
]);

/** Messages of ioredis's own errors for a connection that is down, closed or too slow. */
const connectionMessages = [
  "Command timed out",
  "Connection is closed",
  "Stream isn't writeable",
  "Reached the max retries per request limit",
];

/**
 * True when `err` says nothing about the branch, only that the server was unreachable, too
 * slow or temporarily unable to serve: a retry may succeed.
 */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = replyCodeOf(err);
  if (code !== undefined) return transientReplyCodes.has(code);
  if (hasSystemErrorCode(err)) return true;
  return connectionMessages.some((m) => err.message.includes(m));
}

/** The server's error reply, or a connection failure: anything else is a bug, and propagates. */
export function isServerCondition(err: unknown): boolean {
  return replyCodeOf(err) !== undefined || isTransient(err);
}
