/**
 * The Redis and Kafka side of the benches with such branches (mixed.ts, mixed-transfer.ts):
 * the clients and the node's participants for a run, then what is checked and cleaned up
 * after it — the Redis counters' total, the events committed to the topic, the waits for
 * phase 2 to finish there, and the removal of the run's keys.
 */
import { Redis } from "ioredis";
import kafkajs, { type Admin, type Kafka } from "kafkajs";
import { CommittedReader } from "../participants/kafka/reader.js";
import { services } from "../test/support/services.js";

export interface MixedClients {
  readonly kafka: Kafka;
  /** Connected; the caller disconnects it. */
  readonly admin: Admin;
  readonly redis: Redis;
}

/** Clients of the run's Kafka and Redis, the topic `topic` created (one partition). */
export async function openMixedClients(runId: string, topic: string): Promise<MixedClients> {
  const kafka = new kafkajs.Kafka({
    clientId: `verdict-bench-${runId}`,
    brokers: [...services.kafkaBrokers],
    logLevel: kafkajs.logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const redis = new Redis(services.redisUrl, { maxRetriesPerRequest: 1 });
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
    });
  } catch (err) {
    redis.disconnect();
    await admin.disconnect();
    throw err;
  }
  return { kafka, admin, redis };
}

/** The node's Redis and Kafka participants for a run (startNodeProcess's otherParticipants). */
export function mixedParticipants(p: {
  readonly runId: string;
  readonly names: { readonly redis: string; readonly kafka: string };
  readonly namespace: string;
  readonly markerTopic: string;
}): Record<string, unknown>[] {
  return [
    { name: p.names.redis, kind: "redis", url: services.redisUrl, namespace: p.namespace },
    {
      name: p.names.kafka,
      kind: "kafka",
      brokers: [...services.kafkaBrokers],
      markerTopic: p.markerTopic,
      transactionalIdPrefix: `verdict-bench-${p.runId}`,
    },
  ];
}

/** Counters are read and deleted in chunks of this many keys. */
const redisChunk = 500;
/** Keys of the participant's namespace scanned for the clean-up, per SCAN call and in all. */
const scanCount = 1_000;
const scanKeysMax = 1_000_000;
const pollMs = 100;
const pollsMax = 300;
/** Reading the topic is heavier: polled less often, for as long in all. */
const eventPollMs = 1_000;
const eventPollsMax = 30;

/** The counter keys `<prefix>1` … `<prefix><accounts>`, in chunks. */
function* counterChunks(prefix: string, accounts: number): Generator<string[]> {
  for (let from = 1; from <= accounts; from += redisChunk) {
    yield Array.from(
      { length: Math.min(redisChunk, accounts - from + 1) },
      (_, i) => `${prefix}${from + i}`,
    );
  }
}

/** The sum of the run's Redis counters. */
export async function countersTotal(redis: Redis, prefix: string, accounts: number) {
  let total = 0;
  for (const keys of counterChunks(prefix, accounts)) {
    for (const v of await redis.mget(keys)) total += Number(v ?? 0);
  }
  return total;
}

/** How many events are committed to partition 0 of `topic`. */
export async function committedEvents(kafka: Kafka, topic: string): Promise<number> {
  const reader = await CommittedReader.open(kafka, { owner: "bench" });
  try {
    return (await reader.readSettled(topic, 0)).values.length;
  } finally {
    await reader.close();
  }
}

/**
 * Until `expected` events are committed to `topic` (phase 2 of the Kafka branches done) or
 * the bounded wait ends; answers the count found last.
 */
export async function waitEvents(kafka: Kafka, topic: string, expected: number): Promise<number> {
  let found = await committedEvents(kafka, topic);
  for (let i = 0; i < eventPollsMax && found < expected; i++) {
    await new Promise((resolve) => setTimeout(resolve, eventPollMs));
    found = await committedEvents(kafka, topic);
  }
  return found;
}

/** Until no Redis branch of the run is staged (bounded). */
export async function waitStaged(redis: Redis, stagedKey: string): Promise<void> {
  for (let i = 0; i < pollsMax && (await redis.scard(stagedKey)) > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Deletes the run's counters and the participant's namespace (bounded SCAN). */
export async function cleanRedis(
  redis: Redis,
  counterPrefix: string,
  accounts: number,
  namespace: string,
): Promise<void> {
  for (const keys of counterChunks(counterPrefix, accounts)) await redis.del(...keys);
  let cursor = "0";
  let seen = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${namespace}:*`, "COUNT", scanCount);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
    seen += keys.length;
  } while (cursor !== "0" && seen < scanKeysMax);
}

/**
 * Prints each count as confirmed by commits against found; answers whether all are equal,
 * or true when transfers failed (a failed call may still have committed: exactness is
 * required only without errors).
 */
export function compareCounts(
  rows: readonly (readonly [string, number, number])[],
  errors: number,
  say: (line: string) => void,
): boolean {
  let ok = true;
  for (const [what, confirmed, found] of rows) {
    const equal = confirmed === found;
    if (errors === 0) ok &&= equal;
    say(
      `${what}: ${confirmed} by confirmed commits, ${found} found ${equal ? "(equal)" : "(DIFFERS)"}`,
    );
  }
  if (errors > 0) say(`${errors} transfers failed: the counts above may differ by those`);
  return ok;
}
