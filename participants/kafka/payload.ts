/**
 * What a Kafka branch carries: the one branch-work type's `messages` variant
 * (shared/branch-work.ts). The API validated it already; the participant validates again
 * (defensively, at the ceilings) before it trusts anything; its configuration may impose lower
 * limits (`messagesPerBranchMax`, `branchBytesMax`).
 */
import { workAtCeilings, type KafkaMessage } from "../../shared/branch-work.js";

export type { KafkaMessage, KafkaWork as KafkaPayload } from "../../shared/branch-work.js";

export const kafkaPayloadSchema = workAtCeilings.messagesWork;

const byteLength = (s: string): number => Buffer.byteLength(s, "utf8");

/** Bytes a record batch adds around its records (Kafka's v2 batch header). */
export const recordBatchOverheadBytes = 61;

/** Upper bound of a varint-encoded length or delta inside a v2 record. */
const varintBytesMax = 5;
/** Attributes (1) + timestamp delta (varlong, ≤ 10) + offset delta + record length. */
const recordFixedBytesMax = 1 + 10 + 2 * varintBytesMax;

/**
 * An upper bound of the bytes `message` takes in a v2 record batch, uncompressed (the
 * participant never compresses). The broker compares whole batches with `max.message.bytes`.
 */
export function recordBytesMax(message: Omit<KafkaMessage, "topic" | "partition">): number {
  let bytes = recordFixedBytesMax + varintBytesMax + byteLength(message.key ?? "");
  bytes += varintBytesMax + byteLength(message.value) + varintBytesMax;
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    bytes += 2 * varintBytesMax + byteLength(name) + byteLength(value);
  }
  return bytes;
}
