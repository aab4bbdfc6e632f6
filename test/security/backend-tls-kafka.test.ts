/**
 * The Kafka participant over TLS with a client certificate and SASL/PLAIN (docs/tls-backends.md),
 * against a throwaway KRaft broker whose only client listener is SASL_SSL
 * (`ssl.client.auth=required`), its certificate signed by a CA this test generates. The
 * broker takes 15–40 s to start.
 * - with `tls` (CA, client certificate and key) and `sasl` a branch prepares and commits, and
 *   its message is read back committed on a direct TLS connection;
 * - a CA that did not sign the broker's certificate, or no client certificate, stops `start`
 *   with a non-retryable configuration error naming TLS; a wrong SASL password stops it too;
 * - a plaintext client gets nothing from the broker.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import kafkajs, { type Admin, type Kafka } from "kafkajs";
import type { BranchId } from "../../participants/participant.js";
import { createKafkaParticipant } from "../../participants/kafka/participant.js";
import type { KafkaParticipantConfigInput } from "../../participants/kafka/config.js";
import { CommittedReader } from "../../participants/kafka/reader.js";
import { commitWithRetries, payloadOf, phase2, prepareCtx } from "../integration/kafka/helpers.js";
import { suffix } from "../support/participant-helpers.js";
import { createTestCa, type TestCa } from "../support/tls-ca.js";
import { startThrowawayKafka, type ThrowawayKafka } from "../support/throwaway-kafka.js";

const { Kafka: KafkaClient, logLevel } = kafkajs;
const run = suffix();
const clusterId = `tls-kafka-${run}`;
const topic = `tls-test-${run}`;
const password = `verdict-${run}-pw`;
/** A fresh object each time: kafkajs adds fields to the one it is given. */
const sasl = () => ({ mechanism: "plain" as const, username: "verdict", password });

let ca: TestCa;
let broker: ThrowawayKafka;
let kafka: Kafka;
let admin: Admin;

before(async () => {
  ca = await createTestCa();
  broker = await startThrowawayKafka({
    caFile: ca.caFile,
    certFile: ca.serverCertFile,
    keyFile: ca.serverKeyFile,
    clientAuth: "required",
    saslPlainUsers: { admin: `admin-${run}-pw`, verdict: password },
  });
  kafka = new KafkaClient({
    clientId: `tls-test-${run}`,
    brokers: [broker.broker],
    ssl: {
      ca: readFileSync(ca.caFile),
      cert: readFileSync(ca.clientCertFile),
      key: readFileSync(ca.clientKeyFile),
    },
    sasl: sasl(),
    logLevel: logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1_000 },
  });
  admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: 1, replicationFactor: 1 }],
  });
});
after(async () => {
  await admin?.disconnect();
  await broker?.dispose();
  await ca?.dispose();
});

const clientTls = () => ({
  caFile: ca.caFile,
  certFile: ca.clientCertFile,
  keyFile: ca.clientKeyFile,
});

const participant = (overrides: Partial<KafkaParticipantConfigInput> = {}) =>
  createKafkaParticipant({
    name: "kafka-tls",
    brokers: [broker.broker],
    clientId: `verdict-tls-${run}`,
    markerTopic: `verdict-tls-markers-${run}`,
    markerPartitions: 1,
    transactionalIdPrefix: `verdict-tls-${run}`,
    poolSize: 2,
    attemptTimeoutMs: 20_000,
    connectionTimeoutMs: 3_000,
    tls: clientTls(),
    sasl: sasl(),
    ...overrides,
  });

void test("with tls and a client certificate a branch commits; read back over TLS", async () => {
  const p = participant();
  const reader = await CommittedReader.open(kafka, { owner: "tls-test-reader" });
  try {
    await p.start(clusterId);
    const branchId = `${clusterId}:x1:1` as BranchId;
    const payload = payloadOf([{ topic, value: "over-tls" }]);
    const vote = await p.prepare({ branchId, payload }, prepareCtx());
    assert.equal(vote.vote, "yes");
    const evidence = vote.vote === "yes" ? vote.evidence : undefined;
    const { outcome } = await commitWithRetries(p, branchId, payload, { ...phase2(), evidence });
    assert.equal(outcome, "done");
    assert.deepEqual((await reader.readSettled(topic, 0)).values, ["over-tls"]);
  } finally {
    await reader.close();
    await p.close();
  }
});

const refusedAtStart = async (
  overrides: Partial<KafkaParticipantConfigInput>,
  why = /participant kafka-tls: TLS: /,
) => {
  const p = participant(overrides);
  try {
    await assert.rejects(p.start(clusterId), (e: Error & { retryable?: boolean }) => {
      assert.equal(e.name, "KafkaConfigError", e.message);
      assert.equal(e.retryable, false);
      assert.match(e.message, why);
      assert.ok(!e.message.includes(password), "no password in the message");
      return true;
    });
  } finally {
    await p.close();
  }
};

void test("a CA that did not sign the broker's certificate stops start", async () => {
  await refusedAtStart({ tls: { ...clientTls(), caFile: ca.otherCaFile } });
});

void test("without a client certificate start stops: the broker refused us", async () => {
  await refusedAtStart({ tls: { caFile: ca.caFile } });
});

void test("a wrong SASL password stops start: the broker refused the credentials", async () => {
  await refusedAtStart(
    { sasl: { ...sasl(), password: `${password}-wrong` } },
    /participant kafka-tls: the broker refused the SASL credentials/,
  );
});

void test("a plaintext client gets nothing from the broker", async () => {
  const plain = new KafkaClient({
    clientId: `tls-test-plain-${run}`,
    brokers: [broker.broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    requestTimeout: 2_000,
    retry: { retries: 0 },
  }).admin();
  await assert.rejects(plain.connect());
  await plain.disconnect();
});
