/**
 * Every error the Kafka participant throws on purpose. Each carries the participant name,
 * the branch, topic and transactional id it concerns (when it has them) and whether
 * retrying the same call can help. Expected negative outcomes of `prepare` (a missing
 * topic, an oversize record) are no-votes, not errors; `commit` throws only the retryable
 * errors below, since Kafka cannot refuse a decided commit (docs/architecture.md §7.3).
 */
import { ParticipantError, type ParticipantErrorIds } from "../common/errors.js";

export interface KafkaErrorIds extends ParticipantErrorIds {
  readonly topic?: string;
  readonly transactionalId?: string;
}

export abstract class KafkaParticipantError extends ParticipantError {
  readonly topic: string | undefined;
  readonly transactionalId: string | undefined;

  constructor(message: string, ids: KafkaErrorIds, options?: { cause?: unknown }) {
    super(message, ids, options);
    this.topic = ids.topic;
    this.transactionalId = ids.transactionalId;
  }
}

/**
 * A phase-2 attempt failed: the broker was unreachable or slow, the attempt was fenced by
 * another one on the same transactional id, or a produce was refused. Nothing of a failed
 * attempt is ever visible to read_committed readers (its transaction is aborted by the next
 * fence), so the caller retries from the fence, with backoff, until it succeeds (G3).
 */
export class Phase2AttemptError extends KafkaParticipantError {
  readonly code = "phase2-attempt-failed";
  readonly retryable = true;
  /** The step that failed: `fence`, `marker-check`, `produce`, `commit`. */
  readonly step: string;
  /** kafkajs's error type (`INVALID_PRODUCER_EPOCH`, `TOPIC_AUTHORIZATION_FAILED`, …), if any. */
  readonly kafkaErrorType: string | undefined;

  constructor(message: string, ids: KafkaErrorIds, step: string, cause: unknown) {
    super(message, ids, { cause });
    this.step = step;
    this.kafkaErrorType = kafkaErrorTypeOf(cause);
  }
}

/** A phase-2 attempt (or its wait for the transactional id) ran past `attemptTimeoutMs`. */
export class AttemptTimeoutError extends KafkaParticipantError {
  readonly code = "attempt-timeout";
  readonly retryable = true;
}

/** Too many phase-2 calls already wait for this transactional id in this process. */
export class TransactionalIdBusyError extends KafkaParticipantError {
  readonly code = "transactional-id-busy";
  readonly retryable = true;
}

/** The Kafka cluster could not be reached or did not answer in time (start, recover, fence). */
export class KafkaUnavailableError extends KafkaParticipantError {
  readonly code = "participant-unavailable";
  readonly retryable = true;
}

/** `start` found the marker topic with settings that break the marker check. */
export class MarkerTopicError extends KafkaParticipantError {
  readonly code = "unsafe-marker-topic";
  readonly retryable = false;
}

/**
 * `start` found another pool layout (pool size, transactional-id prefix, marker partitions)
 * recorded for this cluster. Changing it while a branch is in doubt would map that branch to a
 * transactional id that does not fence its earlier attempts, or to another marker partition.
 */
export class PoolLayoutChangedError extends KafkaParticipantError {
  readonly code = "pool-layout-changed";
  readonly retryable = false;
}

/** A configuration value is invalid (thrown by `parseKafkaParticipantConfig`). */
export class KafkaConfigError extends KafkaParticipantError {
  readonly code = "invalid-config";
  readonly retryable = false;
}

/** A call came before `start` or after `close`: a programming error in the caller. */
export class ParticipantNotStartedError extends KafkaParticipantError {
  readonly code = "not-started";
  readonly retryable = false;
}

/** kafkajs's error type (`UNKNOWN_TOPIC_OR_PARTITION`, …) of `err`, if it has one. */
export function kafkaErrorTypeOf(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const type = (err as { type?: unknown }).type;
  return typeof type === "string" ? type : undefined;
}
