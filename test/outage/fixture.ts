/**
 * Shared set-up of the outage tests: a real node in this process with pg-a (deploy/local's
 * verdict_a), a Redis participant on a throwaway redis-server and a Kafka participant on a
 * throwaway Kafka broker — both of which a test may kill and restart, unlike the shared ones —
 * plus direct clients that read the truth (PostgreSQL rows, Redis keys, read_committed Kafka),
 * the admin view of a transaction, and a bounded poll.
 *
 * Participant timeouts are short so that an outage shows within seconds; the tests' bounds
 * are generous multiples of them (they catch hangs, not slowness).
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import kafkajs from "kafkajs";
import { VerdictClient } from "../../client/index.js";
import { CommittedReader } from "../../participants/kafka/reader.js";
import {
  createAccounts,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "../integration/api/harness.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../support/throwaway-redis.js";
import { startThrowawayKafka, type ThrowawayKafka } from "../support/throwaway-kafka.js";

const { Kafka, logLevel } = kafkajs;

/** The participants' own bounds, which every "no hang" check below is measured against. */
export const timeouts = {
  redisConnectMs: 1_000,
  redisCommandMs: 2_000,
  kafkaRequestMs: 2_000,
  kafkaPrepareMs: 3_000,
  kafkaAttemptMs: 5_000,
  /** How long `commit` waits for phase 2 before answering 202 committing. */
  commitWaitMs: 1_000,
} as const;
/** Added to a participant's own timeout: scheduling, retries, the test's own polling. */
export const slackMs = 5_000;

export const redisName = "redis-main";
export const kafkaName = "kafka-events";

export interface OutageFixture {
  readonly node: ApiNode;
  readonly client: VerdictClient;
  readonly accounts: Accounts;
  readonly redis: ThrowawayRedis;
  readonly kafka: ThrowawayKafka;
  /** A topic of the throwaway broker, one partition. */
  readonly topic: string;
  /** A Redis client on the throwaway server (reconnects after a restart). */
  readonly redisReader: Redis;
  /** Committed values of `topic`, read once no transaction is open on it. */
  topicValues(): Promise<string[]>;
  admin(xid: string): Promise<AdminView>;
  /** Whether the node reports participant `name` healthy (`GET /admin/v1/participants`). */
  healthy(name: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface AdminBranch {
  readonly branch: number;
  readonly participant: string;
  readonly state: string;
  readonly vote?: string;
  readonly voteReason?: string;
  readonly attempts: number;
  readonly lastError?: string;
}

export interface AdminView {
  readonly xid: string;
  readonly state: string;
  readonly decision?: string;
  readonly reason?: { readonly code: string; readonly message: string; readonly branch?: number };
  readonly branches: readonly AdminBranch[];
}

export async function startOutageFixture(): Promise<OutageFixture> {
  const redis = await startThrowawayRedis();
  let kafka: ThrowawayKafka | undefined;
  try {
    kafka = await startThrowawayKafka();
  } catch (err) {
    await redis.dispose();
    throw err;
  }
  const run = randomBytes(4).toString("hex");
  const topic = `outage-${run}`;
  const kafkaClient = new Kafka({
    clientId: `verdict-outage-${run}`,
    brokers: [kafka.broker],
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  const kafkaAdmin = kafkaClient.admin();
  await kafkaAdmin.connect();
  await kafkaAdmin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
  });
  await kafkaAdmin.disconnect();

  const node = await startApiNode({
    protocol: { commitWaitMs: timeouts.commitWaitMs },
    participants: [
      {
        name: redisName,
        kind: "redis",
        url: redis.url,
        connectTimeoutMs: timeouts.redisConnectMs,
        commandTimeoutMs: timeouts.redisCommandMs,
        reconnectDelayMsMax: 200,
      },
      {
        name: kafkaName,
        kind: "kafka",
        brokers: [kafka.broker],
        connectionTimeoutMs: 1_000,
        requestTimeoutMs: timeouts.kafkaRequestMs,
        prepareTimeoutMs: timeouts.kafkaPrepareMs,
        attemptTimeoutMs: timeouts.kafkaAttemptMs,
        // Every prepare asks the broker: a cached answer would vote yes during an outage.
        topicInfoCacheMs: 0,
      },
    ],
  });
  const accounts = await createAccounts({ "pg-a": [[1, 1_000]], "pg-b": [] });
  const client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  const redisReader = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redisReader.on("error", () => undefined);
  await redisReader.connect();

  let reader: CommittedReader | undefined;
  return {
    node,
    client,
    accounts,
    redis,
    kafka,
    topic,
    redisReader,
    async topicValues() {
      // Opened lazily and anew after a broker restart would have broken its connections.
      reader ??= await CommittedReader.open(kafkaClient, { owner: "outage-test" });
      return (await reader.readSettled(topic, 0)).values;
    },
    async admin(xid) {
      const answer = await raw(node.url, "GET", `/admin/v1/transactions/${xid}`, {
        token: node.adminToken,
      });
      assert.equal(answer.status, 200, answer.text);
      return answer.body as AdminView;
    },
    async healthy(name) {
      const answer = await raw(node.url, "GET", "/admin/v1/participants", {
        token: node.adminToken,
      });
      assert.equal(answer.status, 200, answer.text);
      const { participants } = answer.body as {
        participants: { name: string; ok: boolean }[];
      };
      return participants.some((p) => p.name === name && p.ok);
    },
    async close() {
      redisReader.disconnect();
      await reader?.close().catch(() => undefined);
      await accounts.drop().catch(() => undefined);
      try {
        await node.stop();
      } finally {
        await redis.dispose();
        await kafka.dispose();
      }
    },
  };
}

/**
 * Polls `probe` until it answers a value `done` accepts; fails after `timeoutMs` with the
 * last value seen. Bounded in count and time.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T>,
  done: (value: T) => boolean,
): Promise<T> {
  const pollMs = 100;
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (let i = 0; i < Math.ceil(timeoutMs / pollMs) + 1 && Date.now() <= deadline; i++) {
    try {
      last = await probe();
      if (done(last)) return last;
    } catch (err) {
      lastError = err;
    }
    await sleep(pollMs);
  }
  assert.fail(
    `${what}: not within ${timeoutMs} ms; last seen ${JSON.stringify(last)}` +
      (lastError === undefined
        ? ""
        : `, last error ${lastError instanceof Error ? lastError.message : JSON.stringify(lastError)}`),
  );
}

/** Runs `work` and answers its result with how long it took. */
export async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await work();
  return { value, ms: performance.now() - started };
}
