/**
 * What prepare needs to know about a topic (does it exist, its partitions, the largest
 * record batch it accepts), from Metadata and DescribeConfigs, cached briefly. Only answers
 * about existing topics are cached: a topic created a moment ago must not be refused for long.
 */
import kafkajs from "kafkajs";
import type { Admin } from "kafkajs";
import { messageOf } from "../common/errors.js";
import type { ParticipantLogger } from "../common/logger.js";
import { KafkaUnavailableError, kafkaErrorTypeOf } from "./errors.js";

const { ConfigResourceTypes } = kafkajs;

/** Kafka's default `message.max.bytes`, used when the topic's configs may not be described. */
const defaultMaxMessageBytes = 1_048_588;

export interface TopicInfo {
  readonly partitions: number;
  /** The topic's `max.message.bytes`: the largest record batch the broker accepts. */
  readonly maxMessageBytes: number;
}

/** Why a topic cannot take a branch's messages: a permanent condition, so a no-vote. */
export interface TopicProblem {
  readonly reason: "topic-missing" | "topic-unauthorized" | "topic-invalid";
  readonly detail: string;
}

export interface TopicInfoCacheOptions {
  readonly participant: string;
  readonly ttlMs: number;
  readonly entriesMax: number;
  readonly logger: ParticipantLogger;
}

const problemsByErrorType: Record<string, TopicProblem["reason"]> = {
  UNKNOWN_TOPIC_OR_PARTITION: "topic-missing",
  TOPIC_AUTHORIZATION_FAILED: "topic-unauthorized",
  INVALID_TOPIC_EXCEPTION: "topic-invalid",
};

export class TopicInfoCache {
  private readonly entries = new Map<string, { info: TopicInfo; fetchedAtMs: number }>();
  /** One lookup per topic at a time; concurrent prepares share it. */
  private readonly pending = new Map<string, Promise<TopicInfo | TopicProblem>>();

  constructor(
    private readonly admin: Admin,
    private readonly options: TopicInfoCacheOptions,
  ) {}

  /** The topic's info or the problem that refuses it; throws KafkaUnavailableError if the broker cannot tell. */
  async get(topic: string): Promise<TopicInfo | TopicProblem> {
    const cached = this.entries.get(topic);
    if (cached !== undefined && Date.now() - cached.fetchedAtMs < this.options.ttlMs) {
      return cached.info;
    }
    const running = this.pending.get(topic);
    if (running !== undefined) return running;
    const lookup = this.lookUp(topic).finally(() => this.pending.delete(topic));
    this.pending.set(topic, lookup);
    return lookup;
  }

  private async lookUp(topic: string): Promise<TopicInfo | TopicProblem> {
    let partitions: number;
    try {
      const metadata = await this.admin.fetchTopicMetadata({ topics: [topic] });
      partitions = metadata.topics.find((t) => t.name === topic)?.partitions.length ?? 0;
    } catch (err) {
      const reason = problemsByErrorType[kafkaErrorTypeOf(err) ?? ""];
      if (reason !== undefined) return { reason, detail: `topic ${topic}: ${messageOf(err)}` };
      throw this.unavailable(topic, "reading its metadata", err);
    }
    if (partitions === 0)
      return { reason: "topic-missing", detail: `topic ${topic} has no partitions` };
    const info = { partitions, maxMessageBytes: await this.maxMessageBytes(topic) };
    this.remember(topic, info);
    return info;
  }

  private async maxMessageBytes(topic: string): Promise<number> {
    try {
      const described = await this.admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          { type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["max.message.bytes"] },
        ],
      });
      const value = described.resources[0]?.configEntries.find(
        (e) => e.configName === "max.message.bytes",
      )?.configValue;
      const bytes = Number(value);
      if (Number.isInteger(bytes) && bytes > 0) return bytes;
      throw new Error(`max.message.bytes is ${JSON.stringify(value)}`);
    } catch (err) {
      if (kafkaErrorTypeOf(err) !== "TOPIC_AUTHORIZATION_FAILED") {
        throw this.unavailable(topic, "describing its configs", err);
      }
      // Describing configs needs DESCRIBE_CONFIGS; without it, assume Kafka's default.
      this.options.logger.warn(
        { participant: this.options.participant, topic, maxMessageBytes: defaultMaxMessageBytes },
        "may not describe the topic's configs; assuming the default max.message.bytes",
      );
      return defaultMaxMessageBytes;
    }
  }

  private remember(topic: string, info: TopicInfo): void {
    this.entries.delete(topic);
    if (this.entries.size >= this.options.entriesMax) {
      const oldest = this.entries.keys().next();
      if (oldest.done !== true) this.entries.delete(oldest.value);
    }
    this.entries.set(topic, { info, fetchedAtMs: Date.now() });
  }

  private unavailable(topic: string, what: string, err: unknown): KafkaUnavailableError {
    return new KafkaUnavailableError(
      `participant ${this.options.participant}: ${what} of topic ${topic}: ${messageOf(err)}`,
      { participant: this.options.participant, topic },
      { cause: err },
    );
  }
}

export function isTopicProblem(x: TopicInfo | TopicProblem): x is TopicProblem {
  return "reason" in x;
}
