/**
 * What a Kafka branch carries, and its schema. The API validated it already; the participant
 * validates again (defensively) before it trusts anything. Limits here are hard ceilings; the
 * participant's configuration and the API may impose lower ones.
 */
import { z } from "zod";

const MiB = 1024 * 1024;

export const kafkaPayloadLimits = {
  messagesMax: 10_000,
  headersPerMessageMax: 1_000,
  keyBytesMax: 1 * MiB,
  /** All records of a branch; below the broker's default `socket.request.max.bytes` (100 MiB). */
  branchBytesMax: 64 * MiB,
} as const;

/** Kafka's own rule for topic names. */
export const kafkaTopicPattern = /^[A-Za-z0-9._-]{1,249}$/;

const byteLength = (s: string): number => Buffer.byteLength(s, "utf8");

export const kafkaMessageSchema = z.strictObject({
  topic: z.string().regex(kafkaTopicPattern),
  key: z
    .string()
    .refine((s) => byteLength(s) <= kafkaPayloadLimits.keyBytesMax, {
      message: `a key is at most ${kafkaPayloadLimits.keyBytesMax} bytes`,
    })
    .optional(),
  value: z.string(),
  headers: z
    .record(z.string().min(1), z.string())
    .refine((h) => Object.keys(h).length <= kafkaPayloadLimits.headersPerMessageMax, {
      message: `at most ${kafkaPayloadLimits.headersPerMessageMax} headers`,
    })
    .optional(),
  partition: z.number().int().min(0).max(1_000_000).optional(),
});

export const kafkaPayloadSchema = z.strictObject({
  kind: z.literal("messages"),
  messages: z.array(kafkaMessageSchema).min(1).max(kafkaPayloadLimits.messagesMax),
});

export type KafkaMessage = z.infer<typeof kafkaMessageSchema>;
export type KafkaPayload = z.infer<typeof kafkaPayloadSchema>;

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
