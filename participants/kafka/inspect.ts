/**
 * The Kafka participant's own view of a branch. Nothing is staged in Kafka, so the view is
 * whether the branch's marker is committed (and at which offset) in the committed range of
 * its marker partition, read without waiting: up to the last stable offset now. kafkajs does
 * not speak DescribeTransactions, so the transactional id's broker state is not shown.
 */
import type { BranchId } from "../participant.js";
import type { KafkaBranchView } from "../inspect.js";
import { markerFloorOf } from "./evidence.js";
import { markerPartitionOf, transactionalIdOf, type PoolLayout } from "./layout.js";
import type { CommittedReader } from "./reader.js";

export interface KafkaInspectQuery {
  readonly markerTopic: string;
  readonly layout: PoolLayout;
  readonly branchId: BranchId;
  /** The branch's yes vote's evidence, when known: the scan starts there. */
  readonly evidence: string | undefined;
  /** Rolled back here since this process started (a tombstone is kept in memory only). */
  readonly rolledBack: boolean;
}

export async function inspectKafkaBranch(
  reader: CommittedReader,
  q: KafkaInspectQuery,
): Promise<KafkaBranchView> {
  const partition = markerPartitionOf(q.layout, q.branchId);
  const untilOffset = await reader.lastStableOffset(q.markerTopic, partition);
  const floor =
    markerFloorOf(q.evidence, partition) ?? (await reader.logStartOffset(q.markerTopic, partition));
  const fromOffset = floor > untilOffset ? untilOffset : floor;
  let offset: bigint | undefined;
  await reader.scan(q.markerTopic, partition, { fromOffset, untilOffset }, (record) => {
    if (record.key !== q.branchId) return false;
    offset = record.offset;
    return true;
  });
  const committed = offset !== undefined;
  return {
    kind: "kafka",
    holds: committed ? "committed" : q.rolledBack ? "rolled-back" : "absent",
    marker: {
      topic: q.markerTopic,
      partition,
      committed,
      offset: offset === undefined ? null : offset.toString(),
      scannedFrom: fromOffset.toString(),
      scannedUntil: untilOffset.toString(),
    },
    transactionalId: {
      id: transactionalIdOf(q.layout, q.branchId),
      state: null,
      note: "the Kafka client cannot ask the broker (no DescribeTransactions); a marker is the branch's only trace",
    },
  };
}
