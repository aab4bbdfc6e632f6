/**
 * One Kafka transaction that commits a batch of branches sharing a transactional id
 * (docs/architecture.md §7.3), on that id's producer, already fenced (slot.ts):
 *
 *   marker check (each branch not on its first call) → produce every other branch's
 *   messages and marker → commit
 *
 * 1. Marker check: every attempt that could have written a branch's marker used this same
 *    transactional id. An attempt of an earlier producer epoch is complete (committed or
 *    aborted, its records below the high watermark) once this producer's InitProducerId
 *    returned; one of a later epoch fences this producer, so this batch's commit fails.
 *    Other ids' transactions may hold the marker partition's last stable offset (LSO) below
 *    a committed marker: the check waits until the LSO reaches the high watermark, then reads
 *    with read_committed up to it, from the offset the branch's yes vote recorded (no record
 *    of the branch is below it). Absence is proven or the batch fails: any doubt throws.
 *    A branch on its first call (Phase2Context.firstCall) was never produced anywhere: no check.
 * 2. Produce the messages and the markers in one transaction and commit: read_committed
 *    readers see a branch's marker exactly when they see its messages. If another attempt
 *    fences this producer meanwhile, a send or the commit fails and nothing of this batch is
 *    ever visible.
 *
 * Any failure throws a BatchStepError; the slot drops the producer and the coordinator
 * retries each branch, which then checks its marker under a new epoch.
 */
import type { Message, Producer, TopicMessages } from "kafkajs";
import type { BranchId, Phase2Context } from "../participant.js";
import { markerFloorOf } from "./evidence.js";
import { markerPartitionOf, type PoolLayout } from "./layout.js";
import { recordBatchOverheadBytes, recordBytesMax, type KafkaMessage } from "./payload.js";
import type { CommittedReader } from "./reader.js";
import { isTopicProblem, type TopicInfoCache } from "./topics.js";

export interface BranchToCommit {
  readonly branchId: BranchId;
  readonly messages: readonly KafkaMessage[];
  readonly ctx: Phase2Context;
}

export interface CommitBatch {
  readonly reader: CommittedReader;
  readonly topics: TopicInfoCache;
  readonly markerTopic: string;
  readonly layout: PoolLayout;
  /** Initialized (fenced) and not in a transaction. */
  readonly producer: Producer;
  readonly branches: readonly BranchToCommit[];
  /** How long a marker check waits for the LSO to reach the high watermark. */
  readonly stableWaitMsMax: number;
}

export type AttemptResult = "done" | "already-done";

/** A batch failed at `step` (`marker-check`, `produce`, `commit`). */
export class BatchStepError extends Error {
  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step} failed: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = "BatchStepError";
  }
}

/** Commits the batch; the result of each branch, in the batch's order. */
export async function commitBatch(a: CommitBatch): Promise<AttemptResult[]> {
  const results: AttemptResult[] = [];
  const toSend: BranchToCommit[] = [];
  for (const b of a.branches) {
    const found =
      b.ctx.firstCall !== true &&
      (await step("marker-check", () =>
        markerCommitted(a.reader, {
          markerTopic: a.markerTopic,
          layout: a.layout,
          branchId: b.branchId,
          evidence: b.ctx.evidence,
          stableWaitMsMax: a.stableWaitMsMax,
        }),
      ));
    results.push(found ? "already-done" : "done");
    if (!found) toSend.push(b);
  }
  if (toSend.length === 0) return results;
  const transaction = await step("produce", () => a.producer.transaction());
  for (const topicMessages of await step("produce", () => planSends(a, toSend))) {
    await step("produce", () => transaction.sendBatch({ topicMessages }));
  }
  await step("commit", () => transaction.commit());
  return results;
}

async function step<T>(name: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw new BatchStepError(name, err);
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

/** A branch's marker: keyed by its id, in its marker partition. */
function markerOf(a: CommitBatch, b: BranchToCommit): KafkaMessage {
  return {
    topic: a.markerTopic,
    key: b.branchId,
    value: JSON.stringify({ term: b.ctx.term, decidedAtMs: b.ctx.decidedAtMs }),
    partition: markerPartitionOf(a.layout, b.branchId),
  };
}

/**
 * Every branch's messages, then every marker, split into sends whose records for any one
 * topic fit in one record batch of that topic (the broker compares a whole batch with
 * `max.message.bytes`). Sends go one after another, so the order of messages within a
 * partition is kept; all of them are in one transaction, so the split is never visible.
 */
async function planSends(
  a: CommitBatch,
  branches: readonly BranchToCommit[],
): Promise<TopicMessages[][]> {
  const all = [...branches.flatMap((b) => b.messages), ...branches.map((b) => markerOf(a, b))];
  const budgets = new Map<string, number>();
  for (const topic of new Set(all.map((m) => m.topic))) {
    const info = await a.topics.get(topic);
    if (isTopicProblem(info)) throw new Error(`${info.reason}: ${info.detail}`);
    budgets.set(topic, info.maxMessageBytes - recordBatchOverheadBytes);
  }
  const sends: Map<string, Message[]>[] = [];
  let current = new Map<string, Message[]>();
  let used = new Map<string, number>();
  for (const m of all) {
    const bytes = recordBytesMax(m);
    const after = (used.get(m.topic) ?? 0) + bytes;
    if (after > (budgets.get(m.topic) ?? 0) && used.has(m.topic)) {
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
  sends.push(current);
  return sends.map((send) => [...send].map(([topic, messages]) => ({ topic, messages })));
}
