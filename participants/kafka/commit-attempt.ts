/**
 * One phase-2 attempt of a Kafka branch (docs/architecture.md §7.3):
 *
 *   fence → marker check → (marker found: already-done) | (produce messages + marker, commit: done)
 *
 * 1. Fence: a fresh producer with the branch's transactional id sends InitProducerId. The
 *    broker bumps the epoch (every older producer of that id is now refused), aborts a
 *    half-done transaction of that id, and answers only once the previous transaction of that
 *    id is completely written (committed or aborted markers in place).
 * 2. Marker check: every attempt that could have written the marker used this same
 *    transactional id, so after the fence its outcome is decided and its records lie below
 *    the partition's high watermark. Other ids' transactions that began earlier may still be
 *    open there, holding the last stable offset (LSO) below a committed marker: the check
 *    waits until the LSO reaches that high watermark, then reads with read_committed up to it,
 *    from the offset the branch's yes vote recorded (no record of the branch is below it).
 *    Absence is proven or the attempt fails: any doubt throws, and the retry fences again.
 * 3. Produce the messages and the marker in one transaction and commit: read_committed readers
 *    see the marker exactly when they see the messages. If another attempt fences this one
 *    meanwhile, the send or the commit fails and nothing of this attempt is ever visible.
 *
 * Any failure throws; the caller retries from step 1.
 */
import type { Kafka, Message, Producer, TopicMessages } from "kafkajs";
import type { BranchId, Phase2Context } from "../participant.js";
import { messageOf } from "../common/errors.js";
import { Phase2AttemptError } from "./errors.js";
import { markerFloorOf } from "./evidence.js";
import { markerPartitionOf, type PoolLayout } from "./layout.js";
import { recordBatchOverheadBytes, recordBytesMax, type KafkaMessage } from "./payload.js";
import type { CommittedReader } from "./reader.js";
import { isTopicProblem, type TopicInfoCache } from "./topics.js";

export interface CommitAttempt {
  readonly kafka: Kafka;
  readonly reader: CommittedReader;
  readonly topics: TopicInfoCache;
  readonly participant: string;
  readonly markerTopic: string;
  readonly layout: PoolLayout;
  readonly transactionalId: string;
  readonly branchId: BranchId;
  readonly messages: readonly KafkaMessage[];
  readonly ctx: Phase2Context;
  readonly transactionTimeoutMs: number;
  /** Receives the attempt's producer, so that a timeout or close can disconnect it. */
  readonly onProducer: (producer: Producer) => void;
}

export type AttemptResult = "done" | "already-done";

export async function runCommitAttempt(a: CommitAttempt): Promise<AttemptResult> {
  const ids = {
    participant: a.participant,
    branchId: a.branchId,
    transactionalId: a.transactionalId,
  };
  let step = "fence";
  const producer = a.kafka.producer({
    transactionalId: a.transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: a.transactionTimeoutMs,
    allowAutoTopicCreation: false,
    // Bounded: the coordinator's phase-2 loop does the retrying, from the fence.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  a.onProducer(producer);
  try {
    await producer.connect();
    const transaction = await producer.transaction(); // InitProducerId: the fence
    step = "marker-check";
    const found = await markerCommitted(a.reader, {
      markerTopic: a.markerTopic,
      layout: a.layout,
      branchId: a.branchId,
      evidence: a.ctx.evidence,
      stableWaitMsMax: a.transactionTimeoutMs / 2,
    });
    if (found) {
      await transaction.abort(); // nothing was added: no request is sent
      return "already-done";
    }
    step = "produce";
    for (const topicMessages of await planSends(a)) {
      await transaction.sendBatch({ topicMessages });
    }
    step = "commit";
    await transaction.commit();
    return "done";
  } catch (err) {
    throw new Phase2AttemptError(
      `participant ${a.participant}: ${step} of ${a.branchId} with transactional id ` +
        `${a.transactionalId} failed: ${messageOf(err)}`,
      ids,
      step,
      err,
    );
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

export interface MarkerQuery {
  readonly markerTopic: string;
  readonly layout: PoolLayout;
  readonly branchId: string;
  /** The branch's yes vote's evidence: where its marker partition stood before the decision. */
  readonly evidence: string | undefined;
  /** How long to wait for the LSO to reach the high watermark before giving up (retryably). */
  readonly stableWaitMsMax: number;
}

/**
 * Whether the branch's marker is committed (call it after the fence): read from the offset
 * the vote recorded (or the partition's start without one) to the high watermark, once the
 * LSO has reached it.
 */
export async function markerCommitted(reader: CommittedReader, q: MarkerQuery): Promise<boolean> {
  const partition = markerPartitionOf(q.layout, q.branchId);
  const untilOffset = await reader.highWatermark(q.markerTopic, partition);
  await reader.awaitStable(q.markerTopic, partition, untilOffset, q.stableWaitMsMax);
  const floor =
    markerFloorOf(q.evidence, partition) ?? (await reader.logStartOffset(q.markerTopic, partition));
  const fromOffset = floor > untilOffset ? untilOffset : floor;
  return reader.scan(
    q.markerTopic,
    partition,
    { fromOffset, untilOffset },
    (record) => record.key === q.branchId,
  );
}

/**
 * The messages and the marker, split into sends whose records for any one topic fit in one
 * record batch of that topic (the broker compares a whole batch with `max.message.bytes`).
 * Sends go one after another, so the order of messages within a partition is kept.
 */
async function planSends(a: CommitAttempt): Promise<TopicMessages[][]> {
  const budgets = new Map<string, number>();
  for (const topic of new Set(a.messages.map((m) => m.topic))) {
    const info = await a.topics.get(topic);
    if (isTopicProblem(info)) throw new Error(`${info.reason}: ${info.detail}`);
    budgets.set(topic, info.maxMessageBytes - recordBatchOverheadBytes);
  }
  const sends: Map<string, Message[]>[] = [];
  let current = new Map<string, Message[]>();
  let used = new Map<string, number>();
  for (const m of a.messages) {
    const bytes = recordBytesMax(m);
    const budget = budgets.get(m.topic) ?? 0;
    const after = (used.get(m.topic) ?? 0) + bytes;
    if (after > budget && used.has(m.topic)) {
      sends.push(current);
      current = new Map();
      used = new Map();
    }
    used.set(m.topic, (used.get(m.topic) ?? 0) + bytes);
    const list = current.get(m.topic) ?? [];
    list.push({
      key: m.key ?? null,
      value: m.value,
      ...(m.headers === undefined ? {} : { headers: m.headers }),
      ...(m.partition === undefined ? {} : { partition: m.partition }),
    });
    current.set(m.topic, list);
  }
  // The marker rides with the last send; it is tiny and alone in its topic's batch.
  current.set(a.markerTopic, [
    {
      key: a.branchId,
      value: JSON.stringify({ term: a.ctx.term, decidedAtMs: a.ctx.decidedAtMs }),
      partition: markerPartitionOf(a.layout, a.branchId),
    },
  ]);
  sends.push(current);
  return sends.map((send) => [...send].map(([topic, messages]) => ({ topic, messages })));
}
