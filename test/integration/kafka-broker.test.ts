/**
 * Proves that the Kafka 4 broker of deploy/local, driven by kafkajs 2.2.4, does what Verdict's
 * Kafka branch (docs/architecture.md §7.3) relies on:
 * - topics are created idempotently and a produce never creates one (auto-creation is off);
 * - a transactional producer's committed messages are read, exactly, by a `read_committed` reader
 *   that has partitions assigned directly — no consumer group;
 * - an open transaction holds that reader back (last stable offset), an aborted one is never read;
 * - a second producer with the same transactional id fences the first: the first's next send
 *   and commit fail, its open transaction is aborted, and once the fence returns the last stable
 *   offset has moved past it (so a marker check after fencing sees every decided write).
 * It also measures init (the fence), produce and commit of one fresh-producer attempt.
 *
 * kafkajs has no group-less consumer, so the reader (participants/kafka/reader.ts, the Kafka
 * participant's production reader) sends Fetch requests through kafkajs's own cluster object
 * (reached through one private symbol of kafkajs 2.2.4, asserted there) and drops aborted
 * records itself: with read_committed the broker only stops at the last stable offset and lists
 * the aborted transactions; filtering them out is the client's job.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import kafkajs from "kafkajs";
import type { Admin, Producer } from "kafkajs";
import { CommittedReader } from "../../participants/kafka/reader.js";
import { services } from "../support/services.js";

const { Kafka, logLevel } = kafkajs;

const timingRounds = 10;
const stepMsMax = 10_000;

const runId = randomUUID().slice(0, 8);
const topicName = (name: string): string => `verdict-test-${name}-${runId}`;
const topics = {
  commit: topicName("commit"),
  abort: topicName("abort"),
  open: topicName("open"),
  fence: topicName("fence"),
  timing: topicName("timing"),
};

const client = new Kafka({
  clientId: `verdict-kafka-broker-test-${runId}`,
  brokers: [...services.kafkaBrokers],
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3_000,
  requestTimeout: 10_000,
  retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
});

/** A producer as a Verdict phase-2 attempt would make it: idempotent, one request in flight. */
function transactionalProducer(transactionalId: string): Producer {
  return client.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: 30_000,
    allowAutoTopicCreation: false,
    // Bounded so that a failing test ends; a real participant retries from the fence instead.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
}

const messagesOf = (topic: string, values: string[]) =>
  values.map((value, i) => ({ topic, messages: [{ key: String(i), value }] }));

/** Error text of a rejection, with its kafkajs error type, for asserting fencing. */
async function rejectionOf(action: () => Promise<unknown>): Promise<string> {
  try {
    await action();
  } catch (error) {
    const type = (error as { type?: unknown }).type;
    return `${String(type)} ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
  }
  return "";
}

const fencingError = /INVALID_PRODUCER_EPOCH|PRODUCER_FENCED|fenced/i;

void describe("Kafka broker (deploy/local) with kafkajs 2.2.4", () => {
  let admin: Admin;
  let reader: CommittedReader;
  const producers: Producer[] = [];
  const connected = async (transactionalId: string): Promise<Producer> => {
    const producer = transactionalProducer(transactionalId);
    producers.push(producer);
    await producer.connect();
    return producer;
  };

  before(async () => {
    admin = client.admin();
    await admin.connect();
    const created = await admin.createTopics({
      waitForLeaders: true,
      timeout: 10_000,
      topics: Object.values(topics).map((topic) => ({
        topic,
        numPartitions: 1,
        replicationFactor: 1,
      })),
    });
    assert.equal(created, true);
    reader = await CommittedReader.open(client);
  });

  after(async () => {
    await Promise.allSettled(producers.map((p) => p.disconnect()));
    await reader?.close();
    await admin
      ?.deleteTopics({ topics: Object.values(topics), timeout: 10_000 })
      .catch(() => undefined);
    await admin?.disconnect();
  });

  void test("creating topics again is a no-op, and a produce never creates a topic", async () => {
    const again = await admin.createTopics({
      topics: [{ topic: topics.commit, numPartitions: 1, replicationFactor: 1 }],
    });
    assert.equal(again, false, "an existing topic is reported as not created");

    const missing = topicName("missing");
    const producer = client.producer({ allowAutoTopicCreation: true, retry: { retries: 1 } });
    producers.push(producer);
    await producer.connect();
    const error = await rejectionOf(() =>
      producer.send({ topic: missing, messages: [{ value: "x" }] }),
    );
    assert.match(error, /UNKNOWN_TOPIC_OR_PARTITION|does not host this topic-partition/i);
    assert.ok(
      !(await admin.listTopics()).includes(missing),
      "the broker created a topic on produce",
    );
  });

  void test("a committed transaction is read exactly by a group-less read_committed reader", async () => {
    const producer = await connected(`verdict-test-commit-${runId}`);
    const values = ["c-1", "c-2", "c-3"];
    const transaction = await producer.transaction();
    for (const batch of messagesOf(topics.commit, values)) await transaction.send(batch);
    await transaction.commit();

    // Commit returns before its markers are written; a fence with the same transactional id
    // returns only after they are, so a read right after the fence needs no waiting.
    const next = await connected(`verdict-test-commit-${runId}`);
    await (await next.transaction()).abort();
    const read = await reader.readPartition(topics.commit, 0);
    assert.deepEqual(read.values, values);
    assert.equal(read.lastStableOffset, read.highWatermark, "a transaction is still open");
  });

  void test("an open transaction holds the reader back; an aborted one is never read", async () => {
    const producer = await connected(`verdict-test-abort-${runId}`);
    const aborted = await producer.transaction();
    for (const batch of messagesOf(topics.abort, ["a-1", "a-2"])) await aborted.send(batch);

    const whileOpen = await reader.readPartition(topics.abort, 0);
    assert.deepEqual(whileOpen.values, [], "records of an open transaction were read");
    assert.ok(
      whileOpen.lastStableOffset < whileOpen.highWatermark,
      "the LSO did not stop at the open transaction",
    );

    await aborted.abort();
    const committed = await producer.transaction();
    await committed.send({ topic: topics.abort, messages: [{ key: "k", value: "after-abort" }] });
    await committed.commit();

    const read = await reader.readSettled(topics.abort, 0);
    assert.deepEqual(read.values, ["after-abort"]);
    // The broker returns aborted records under read_committed too: the client must drop them.
    assert.deepEqual(read.rawValues, ["a-1", "a-2", "after-abort"]);
  });

  void test("the last stable offset waits for a transaction, then moves with its commit", async () => {
    const producer = await connected(`verdict-test-open-${runId}`);
    const transaction = await producer.transaction();
    await transaction.send({ topic: topics.open, messages: [{ key: "k", value: "o-1" }] });
    const before = await reader.readPartition(topics.open, 0);
    assert.deepEqual(before.values, []);
    assert.equal(before.lastStableOffset, 0n);

    await transaction.commit();
    const afterCommit = await reader.readSettled(topics.open, 0);
    assert.deepEqual(afterCommit.values, ["o-1"]);
  });

  void test("a second producer with the same transactional id fences the first", async (t) => {
    const transactionalId = `verdict-test-fence-${runId}`;
    const first = await connected(transactionalId);
    const firstTransaction = await first.transaction();
    await firstTransaction.send({
      topic: topics.fence,
      messages: [{ key: "k", value: "first-1" }],
    });

    // The fence: InitProducerId bumps the epoch and aborts the first producer's open transaction.
    const second = await connected(transactionalId);
    const fenceStartMs = performance.now();
    const secondTransaction = await second.transaction();
    t.diagnostic(
      `fence over an open transaction: ${(performance.now() - fenceStartMs).toFixed(1)} ms`,
    );
    const afterFence = await reader.readPartition(topics.fence, 0);
    assert.equal(
      afterFence.lastStableOffset,
      afterFence.highWatermark,
      "the fenced transaction still holds the last stable offset",
    );
    assert.deepEqual(afterFence.values, []);

    const sendError = await rejectionOf(() =>
      firstTransaction.send({ topic: topics.fence, messages: [{ key: "k", value: "first-2" }] }),
    );
    assert.match(sendError, fencingError, `send after fence: ${sendError || "succeeded"}`);
    const commitError = await rejectionOf(() => firstTransaction.commit());
    assert.match(commitError, fencingError, `commit after fence: ${commitError || "succeeded"}`);
    t.diagnostic(`fenced send: ${sendError}`);
    t.diagnostic(`fenced commit: ${commitError}`);

    await secondTransaction.send({
      topic: topics.fence,
      messages: [{ key: "k", value: "second-1" }],
    });
    await secondTransaction.commit();
    const read = await reader.readSettled(topics.fence, 0);
    assert.deepEqual(read.values, ["second-1"]);
    assert.ok(!read.rawValues.includes("first-2"), "a fenced send reached the log");
  });

  void test("init, produce and commit of a fresh producer: timings", async (t) => {
    const steps = {
      initMs: [] as number[],
      produceMs: [] as number[],
      commitMs: [] as number[],
      visibleMs: [] as number[],
    };
    const transactionalId = `verdict-test-timing-${runId}`;
    for (let round = 0; round < timingRounds; round += 1) {
      const producer = transactionalProducer(transactionalId);
      producers.push(producer);
      let at = performance.now();
      await producer.connect();
      const transaction = await producer.transaction(); // InitProducerId: the fence
      steps.initMs.push(performance.now() - at);
      at = performance.now();
      await transaction.send({
        topic: topics.timing,
        messages: [{ key: "k", value: `t-${round}` }],
      });
      steps.produceMs.push(performance.now() - at);
      at = performance.now();
      await transaction.commit();
      steps.commitMs.push(performance.now() - at);
      at = performance.now();
      const visible = await reader.readSettled(topics.timing, 0);
      steps.visibleMs.push(performance.now() - at);
      assert.equal(visible.values.at(-1), `t-${round}`);
      await producer.disconnect();
    }
    const read = await reader.readSettled(topics.timing, 0);
    assert.deepEqual(
      read.values,
      Array.from({ length: timingRounds }, (_, i) => `t-${i}`),
    );
    for (const [step, samples] of Object.entries(steps)) {
      const sorted = [...samples].sort((a, b) => a - b);
      const median = sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
      const max = sorted.at(-1) ?? Number.NaN;
      t.diagnostic(
        `${step}: median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms over ${timingRounds} rounds`,
      );
      assert.ok(max < stepMsMax, `${step} took ${max.toFixed(0)} ms`);
    }
  });
});
