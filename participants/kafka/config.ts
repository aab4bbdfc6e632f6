/**
 * Configuration of one Kafka participant (one Kafka cluster, one marker topic, one pool of
 * transactional ids). Validated once; every limit has a default and a ceiling.
 */
import { z } from "zod";
import { participantNameSchema, parseParticipantConfig } from "../common/config.js";
import { KafkaConfigError } from "./errors.js";
import { branchWorkCeilings, fixedLimits } from "../../coordinator/config/limits.js";
import { tlsFilesSchema } from "../../shared/tls.js";

const saslOf = <M extends string>(mechanism: M) =>
  z.strictObject({
    mechanism: z.literal(mechanism),
    username: z.string().min(1),
    password: z.string().min(1),
  });

const dayMs = 24 * 60 * 60 * 1000;
const MiB = 1024 * 1024;

export const kafkaParticipantConfigSchema = z.strictObject({
  /** Participant name used in the API (`"kafka-events"`), logs and errors. */
  name: participantNameSchema,
  /** Bootstrap brokers, `host:port`. */
  brokers: z
    .array(z.string().regex(/^[^\s:]+:\d{1,5}$/))
    .min(1)
    .max(100),
  clientId: z.string().min(1).max(128).default("verdict"),
  /** TLS with the system's CAs; `tls` instead names the CA (and a client certificate). */
  ssl: z.boolean().default(false),
  /**
   * TLS to every broker: the CA the brokers' certificates must chain to (their names are
   * checked), and a client certificate for `ssl.client.auth=required` (docs/tls-backends.md).
   */
  tls: tlsFilesSchema.optional(),
  /** Credentials for a broker that authenticates (and may enforce ACLs). */
  sasl: z
    .discriminatedUnion("mechanism", [
      saslOf("plain"),
      saslOf("scram-sha-256"),
      saslOf("scram-sha-512"),
    ])
    .optional(),
  /** Compacted topic holding one marker per committed branch (key = branch id). */
  markerTopic: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,249}$/)
    .default("verdict-markers"),
  /** Partitions of the marker topic; part of the recorded layout (a marker's partition is hash mod this). */
  markerPartitions: z.number().int().min(1).max(1000).default(3),
  /** Replication factor when the marker topic is created; 3 in production. */
  replicationFactor: z.number().int().min(1).max(16).default(1),
  /** `min.insync.replicas` of a created marker topic (unset: the broker's default). */
  markerMinInsyncReplicas: z.number().int().min(1).max(16).optional(),
  /** `retention.ms` of a created marker topic; an existing one must keep markers at least this long. */
  markerRetentionMs: z
    .number()
    .int()
    .min(60 * 60 * 1000)
    .max(3650 * dayMs)
    .default(7 * dayMs),
  /** Transactional ids are `<prefix>-<n>`; default `verdict-<clusterId>`, so two clusters never fence each other. */
  transactionalIdPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,200}$/)
    .optional(),
  /** Transactional ids in the pool; part of the recorded layout. */
  poolSize: z.number().int().min(1).max(1024).default(16),
  /**
   * `"refuse"`: a start whose layout (pool size, prefix, marker partitions) differs from the
   * recorded one fails. `"allow"`: record the new layout; safe only when no Kafka branch is in doubt.
   */
  poolSizeChange: z.enum(["refuse", "allow"]).default("refuse"),
  /** Bound on one phase-2 attempt (fence, marker check, produce, commit), and on waiting for its turn. */
  attemptTimeoutMs: z.number().int().min(1_000).max(600_000).default(30_000),
  /** Ceiling for a whole prepare (topic checks), whatever the transaction's deadline says. */
  prepareTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** How long topic metadata and configs (partitions, max.message.bytes) are reused. */
  topicInfoCacheMs: z.number().int().min(0).max(600_000).default(10_000),
  /** Topics whose metadata is cached at once. */
  topicInfoCacheEntriesMax: z.number().int().min(1).max(100_000).default(1_000),
  messagesPerBranchMax: z
    .number()
    .int()
    .min(1)
    .max(branchWorkCeilings.messagesPerBranchMax)
    .default(1_000),
  /** Estimated record bytes of one branch (all messages, keys, headers). */
  branchBytesMax: z
    .number()
    .int()
    .min(1024)
    .max(fixedLimits.kafkaBranchBytesMax)
    .default(8 * MiB),
  /**
   * Branches committed in one Kafka transaction: the calls waiting for one transactional id
   * when its previous transaction ends go together, up to this many and `branchBytesMax`.
   */
  branchesPerTransactionMax: z.number().int().min(1).max(1_000).default(64),
  /** Phase-2 calls waiting for the same transactional id in this process. */
  waitingAttemptsPerIdMax: z.number().int().min(1).max(100_000).default(1_000),
  connectionTimeoutMs: z.number().int().min(100).max(60_000).default(3_000),
  requestTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
  healthTimeoutMs: z.number().int().min(50).max(60_000).default(2_000),
  /** Fences running at once in `fence()`. */
  fenceConcurrency: z.number().int().min(1).max(64).default(4),
});

export type KafkaParticipantConfigInput = z.input<typeof kafkaParticipantConfigSchema>;
export type KafkaParticipantConfig = z.output<typeof kafkaParticipantConfigSchema>;

export function parseKafkaParticipantConfig(input: unknown): KafkaParticipantConfig {
  return parseParticipantConfig("kafka", kafkaParticipantConfigSchema, input, KafkaConfigError);
}
