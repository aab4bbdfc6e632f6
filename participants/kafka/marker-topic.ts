/**
 * The marker topic: created at start if absent, verified if present, and home of the
 * recorded pool layout. Its settings carry the marker check's correctness:
 * - `message.timestamp.type=LogAppendTime`: a marker's timestamp is the broker's clock at
 *   append, so "where to start looking" compares broker time with the decision time plus a
 *   skew margin, never a client's clock (refused otherwise);
 * - at least `markerPartitions` partitions: a marker's partition is hash(branch id) mod that;
 * - retention at least `markerRetentionMs`: a marker must outlive every retry of its branch;
 * - `cleanup.policy=compact,delete`: one marker per branch, gone after retention.
 */
import kafkajs from "kafkajs";
import type { Admin, Kafka } from "kafkajs";
import { messageOf } from "../common/errors.js";
import { KafkaUnavailableError, MarkerTopicError, kafkaErrorTypeOf } from "./errors.js";
import { decodeLayout, encodeLayout, markerPartitionOf, type PoolLayout } from "./layout.js";
import type { CommittedReader } from "./reader.js";

const { ConfigResourceTypes } = kafkajs;

export interface MarkerTopicSpec {
  readonly participant: string;
  readonly topic: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number | undefined;
  readonly retentionMs: number;
  readonly timeoutMs: number;
}

/** The broker's answers to a principal that may not create the marker topic. */
const mayNotCreate = new Set(["TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"]);

/** Creates the marker topic if absent, then verifies it; returns warnings for health. */
export async function ensureMarkerTopic(admin: Admin, spec: MarkerTopicSpec): Promise<string[]> {
  const ids = { participant: spec.participant, topic: spec.topic };
  const configEntries = [
    { name: "cleanup.policy", value: "compact,delete" },
    { name: "message.timestamp.type", value: "LogAppendTime" },
    { name: "retention.ms", value: String(spec.retentionMs) },
  ];
  if (spec.minInsyncReplicas !== undefined) {
    configEntries.push({ name: "min.insync.replicas", value: String(spec.minInsyncReplicas) });
  }
  try {
    // False when it exists already (another node, an earlier start): verified below either way.
    await admin.createTopics({
      waitForLeaders: true,
      timeout: spec.timeoutMs,
      topics: [
        {
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor,
          configEntries,
        },
      ],
    });
  } catch (err) {
    // Without CREATE (docs/security.md, Kafka ACLs) the topic must exist: describing it tells.
    const type = kafkaErrorTypeOf((err as { errors?: unknown[] }).errors?.[0]);
    if (!mayNotCreate.has(type ?? "") && kafkaErrorTypeOf(err) !== "TOPIC_ALREADY_EXISTS") {
      throw new KafkaUnavailableError(
        `participant ${spec.participant}: creating marker topic ${spec.topic}: ${messageOf(err)}`,
        ids,
        { cause: err },
      );
    }
  }
  const { partitions, configs } = await describeTopic(admin, spec);
  const problems: string[] = [];
  const warnings: string[] = [];
  if (partitions.length < spec.partitions) {
    problems.push(`it has ${partitions.length} partitions, markerPartitions is ${spec.partitions}`);
  } else if (partitions.length > spec.partitions) {
    warnings.push(
      `marker topic ${spec.topic} has ${partitions.length} partitions; markers use the first ${spec.partitions}`,
    );
  }
  if (configs.get("message.timestamp.type") !== "LogAppendTime") {
    problems.push(
      `message.timestamp.type is ${configs.get("message.timestamp.type")}, not LogAppendTime ` +
        `(the marker check compares broker append times)`,
    );
  }
  const policy = (configs.get("cleanup.policy") ?? "").split(",").map((p) => p.trim());
  const retentionMs = Number(configs.get("retention.ms"));
  if (policy.includes("delete") && retentionMs !== -1 && !(retentionMs >= spec.retentionMs)) {
    problems.push(
      `retention.ms is ${configs.get("retention.ms")}, below markerRetentionMs ${spec.retentionMs}`,
    );
  }
  if (!policy.includes("compact")) {
    warnings.push(
      `marker topic ${spec.topic}: cleanup.policy ${policy.join(",")} is not compacted`,
    );
  }
  const replicas = Math.min(...partitions.map((p) => p.replicas.length));
  if (replicas < spec.replicationFactor) {
    warnings.push(
      `marker topic ${spec.topic} has ${replicas} replicas, replicationFactor is ${spec.replicationFactor}`,
    );
  }
  if (problems.length > 0) {
    throw new MarkerTopicError(
      `participant ${spec.participant}: marker topic ${spec.topic} is unsafe: ${problems.join("; ")}. ` +
        `Fix the topic (kafka-configs --alter) or configure another markerTopic.`,
      ids,
    );
  }
  return warnings;
}

async function describeTopic(
  admin: Admin,
  spec: MarkerTopicSpec,
): Promise<{ partitions: { replicas: number[] }[]; configs: Map<string, string> }> {
  try {
    const metadata = await admin.fetchTopicMetadata({ topics: [spec.topic] });
    const partitions = metadata.topics.find((t) => t.name === spec.topic)?.partitions ?? [];
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: spec.topic,
          configNames: ["cleanup.policy", "message.timestamp.type", "retention.ms"],
        },
      ],
    });
    const configs = new Map(
      (described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]),
    );
    return { partitions, configs };
  } catch (err) {
    throw new KafkaUnavailableError(
      `participant ${spec.participant}: describing marker topic ${spec.topic}: ${messageOf(err)}`,
      { participant: spec.participant, topic: spec.topic },
      { cause: err },
    );
  }
}

export interface RecordedLayout {
  /** The latest layout record of the cluster, undefined if none (a first start, or expired). */
  readonly layout: PoolLayout | undefined;
  /** The raw value when it is not a layout (then the start refuses). */
  readonly unreadable: string | undefined;
}

/** The latest layout record keyed `key`: a scan of its whole partition, at start only. */
export async function readLayout(
  reader: CommittedReader,
  topic: string,
  wanted: PoolLayout,
  key: string,
): Promise<RecordedLayout> {
  const partition = markerPartitionOf(wanted, key);
  const untilOffset = await reader.lastStableOffset(topic, partition);
  let latest: string | undefined;
  await reader.scan(topic, partition, { fromOffset: 0n, untilOffset }, (record) => {
    if (record.key === key) latest = record.value ?? "";
    return false;
  });
  if (latest === undefined) return { layout: undefined, unreadable: undefined };
  const layout = decodeLayout(latest);
  return { layout, unreadable: layout === undefined ? latest : undefined };
}

/** Appends the layout record (idempotent producer, acks=all); the latest one counts. */
export async function writeLayout(
  kafka: Kafka,
  topic: string,
  layout: PoolLayout,
  key: string,
): Promise<void> {
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  await producer.connect();
  try {
    await producer.send({
      topic,
      acks: -1,
      messages: [{ key, value: encodeLayout(layout), partition: markerPartitionOf(layout, key) }],
    });
  } finally {
    await producer.disconnect();
  }
}
