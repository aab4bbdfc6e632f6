/**
 * A Kafka yes vote's evidence: the high watermark of the branch's marker partition, read at
 * prepare. Nothing of the branch is produced before its decision, which follows the vote, so
 * its marker can only be at or after that offset: the marker check starts there and reads no
 * clock (a start from a time would trust the coordinator's and the broker's clocks to agree).
 */

const prefix = "marker-floor:v1:";

export function encodeMarkerFloor(partition: number, offset: bigint): string {
  return `${prefix}${partition}:${offset}`;
}

/**
 * The offset `evidence` recorded for `partition`, or undefined without evidence (a branch
 * decided by an operator without a vote): the check then reads the partition from its start.
 */
export function markerFloorOf(evidence: string | undefined, partition: number): bigint | undefined {
  if (evidence === undefined) return undefined;
  const match = /^marker-floor:v1:(\d+):(\d+)$/.exec(evidence);
  if (match === null || Number(match[1]) !== partition) {
    // The log holds only what this participant wrote, for this layout, which never changes
    // while a branch is in doubt.
    throw new Error(
      `assertion: Kafka evidence ${JSON.stringify(evidence)} for partition ${partition}`,
    );
  }
  return BigInt(match[2]!);
}
