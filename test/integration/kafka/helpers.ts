/**
 * Shared set-up for the Kafka participant tests: a unique cluster id, marker topic and
 * transactional-id prefix per test file (runs never share markers or fence each other),
 * topics created with the admin client, a group-less read_committed reader to read the truth,
 * and a bounded retry loop standing in for the coordinator's phase-2 retries.
 */
import kafkajs from "kafkajs";
import type { Admin, Kafka } from "kafkajs";
import type { BranchId, Phase2Context, Phase2Outcome } from "../../../participants/participant.js";
import type { KafkaParticipantConfigInput } from "../../../participants/kafka/config.js";
import { KafkaParticipantError } from "../../../participants/kafka/errors.js";
import {
  createKafkaParticipant,
  type KafkaParticipant,
} from "../../../participants/kafka/participant.js";
import type { KafkaMessage, KafkaPayload } from "../../../participants/kafka/payload.js";
import { CommittedReader } from "../../../participants/kafka/reader.js";
import { branchIds, madeParticipants, suffix } from "../../support/participant-helpers.js";
import { services } from "../../support/services.js";

const { Kafka: KafkaClient, logLevel } = kafkajs;

export { suffix };

/** Phase-2 retries a test allows before it fails (the coordinator retries forever). */
const commitAttemptsMax = 20;
const retryPauseMs = 100;

export interface Fixture {
  readonly run: string;
  readonly clusterId: string;
  readonly markerTopic: string;
  readonly transactionalIdPrefix: string;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly reader: CommittedReader;
  branchId(): BranchId;
  /** Creates a topic unique to this run; returns its name. */
  topic(name: string, partitions?: number, configs?: Record<string, string>): Promise<string>;
  config(overrides?: Partial<KafkaParticipantConfigInput>): KafkaParticipantConfigInput;
  participant(overrides?: Partial<KafkaParticipantConfigInput>): KafkaParticipant;
  started(overrides?: Partial<KafkaParticipantConfigInput>): Promise<KafkaParticipant>;
  /** Committed values of every partition of `topic`, read once no transaction is open. */
  values(topic: string): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function createFixture(): Promise<Fixture> {
  const run = suffix();
  const clusterId = `t-${run}`;
  const markerTopic = `verdict-test-markers-${run}`;
  const transactionalIdPrefix = `verdict-test-${run}`;
  const kafka = new KafkaClient({
    clientId: `verdict-kafka-test-${run}`,
    brokers: [...services.kafkaBrokers],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  const admin = kafka.admin();
  await admin.connect();
  const reader = await CommittedReader.open(kafka, { owner: "test-reader" });
  const topics: string[] = [markerTopic];
  const config = (
    overrides: Partial<KafkaParticipantConfigInput> = {},
  ): KafkaParticipantConfigInput => ({
    name: `kafka-test-${run}`,
    brokers: [...services.kafkaBrokers],
    clientId: `verdict-test-${run}`,
    markerTopic,
    markerPartitions: 3,
    transactionalIdPrefix,
    poolSize: 4,
    attemptTimeoutMs: 20_000,
    ...overrides,
  });
  const made = madeParticipants(clusterId, (overrides: Partial<KafkaParticipantConfigInput> = {}) =>
    createKafkaParticipant(config(overrides)),
  );
  const fixture: Fixture = {
    run,
    clusterId,
    markerTopic,
    transactionalIdPrefix,
    kafka,
    admin,
    reader,
    branchId: branchIds(clusterId, run),
    async topic(name, partitions = 1, configs = {}) {
      const topic = `verdict-test-${name}-${run}`;
      await admin.createTopics({
        waitForLeaders: true,
        topics: [
          {
            topic,
            numPartitions: partitions,
            replicationFactor: 1,
            configEntries: Object.entries(configs).map(([k, v]) => ({ name: k, value: v })),
          },
        ],
      });
      topics.push(topic);
      return topic;
    },
    config,
    participant: made.participant,
    started: made.started,
    async values(topic) {
      const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = metadata.topics[0]?.partitions.map((p) => p.partitionId) ?? [];
      const values: string[] = [];
      for (const partition of partitions.sort((a, b) => a - b)) {
        values.push(...(await reader.readSettled(topic, partition)).values);
      }
      return values;
    },
    async cleanup() {
      await made.closeAll();
      await reader.close();
      await admin.deleteTopics({ topics, timeout: 10_000 }).catch(() => undefined);
      await admin.disconnect();
    },
  };
  return fixture;
}

/** Error type and text of a rejection ("" if it resolved), for asserting fencing. */
export async function rejectionOf(action: () => Promise<unknown>): Promise<string> {
  try {
    await action();
  } catch (err) {
    const type = (err as { type?: unknown }).type;
    return `${String(type)} ${err instanceof Error ? err.message : String(err)}`;
  }
  return "";
}

export const fencingError = /INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/;

export function payloadOf(messages: KafkaMessage[]): KafkaPayload {
  return { kind: "messages", messages };
}

export const phase2 = (decidedAtMs = Date.now()): Phase2Context => ({ term: 1, decidedAtMs });

export const prepareCtx = () => ({ deadlineMs: Date.now() + 10_000 });

/** Commits as the coordinator would: retrying retryable errors (bounded here). */
export async function commitWithRetries(
  p: KafkaParticipant,
  branchId: BranchId,
  payload: KafkaPayload,
  ctx: Phase2Context,
): Promise<{ outcome: Phase2Outcome["outcome"]; attempts: number }> {
  for (let attempts = 1; ; attempts += 1) {
    try {
      const result = await p.commit({ branchId, payload }, ctx);
      return { outcome: result.outcome, attempts };
    } catch (err) {
      const retryable = err instanceof KafkaParticipantError && err.retryable;
      if (!retryable || attempts >= commitAttemptsMax) throw err;
      await new Promise((resolve) => setTimeout(resolve, retryPauseMs));
    }
  }
}
