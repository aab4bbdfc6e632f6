/**
 * Where a branch lives in Kafka: its transactional id (a fixed slot of the pool) and the
 * partition of its marker. Both are a hash of the branch id, so every node and every retry
 * maps a branch to the same id and the same partition — as long as the layout never changes
 * while a branch is in doubt, which is why the layout is recorded in the marker topic.
 */
import { createHash } from "node:crypto";
import { z } from "zod";

export interface PoolLayout {
  readonly transactionalIdPrefix: string;
  readonly poolSize: number;
  readonly markerPartitions: number;
}

const layoutSchema = z.strictObject({
  transactionalIdPrefix: z.string().min(1),
  poolSize: z.number().int().min(1),
  markerPartitions: z.number().int().min(1),
});

/** A stable bucket in [0, buckets) for `text`: the first 32 bits of its SHA-256. */
export function bucketOf(text: string, buckets: number): number {
  if (!Number.isInteger(buckets) || buckets < 1) throw new Error(`assertion: buckets ${buckets}`);
  return createHash("sha256").update(text, "utf8").digest().readUInt32BE(0) % buckets;
}

export function transactionalIdAt(layout: PoolLayout, slot: number): string {
  return `${layout.transactionalIdPrefix}-${slot}`;
}

/** `<prefix>-<hash(branchId) mod poolSize>`: every attempt on a branch fences every other. */
export function transactionalIdOf(layout: PoolLayout, branchId: string): string {
  return transactionalIdAt(layout, bucketOf(branchId, layout.poolSize));
}

/** The marker partition of a record keyed `key` (a branch id or the layout record's key). */
export function markerPartitionOf(layout: PoolLayout, key: string): number {
  return bucketOf(key, layout.markerPartitions);
}

/** Key of the record holding `clusterId`'s layout in the marker topic. */
export function layoutRecordKey(clusterId: string): string {
  return `pool-size:${clusterId}`;
}

export function encodeLayout(layout: PoolLayout): string {
  return JSON.stringify({
    transactionalIdPrefix: layout.transactionalIdPrefix,
    poolSize: layout.poolSize,
    markerPartitions: layout.markerPartitions,
  });
}

/** The layout in a record's value; undefined if it is not one (then the start refuses). */
export function decodeLayout(value: string): PoolLayout | undefined {
  try {
    const parsed = layoutSchema.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** What differs between two layouts, or undefined if nothing. */
export function layoutDifference(recorded: PoolLayout, wanted: PoolLayout): string | undefined {
  const diffs: string[] = [];
  for (const field of ["transactionalIdPrefix", "poolSize", "markerPartitions"] as const) {
    if (recorded[field] !== wanted[field]) {
      diffs.push(`${field} ${JSON.stringify(recorded[field])} → ${JSON.stringify(wanted[field])}`);
    }
  }
  return diffs.length === 0 ? undefined : diffs.join(", ");
}
