/**
 * Proves the Kafka participant's phase 2 against the real broker, reading the truth with a
 * group-less read_committed reader:
 * - a commit makes the messages (and the branch's marker) visible exactly once; a repeated
 *   commit answers already-done;
 * - a rollback makes nothing visible, and a later prepare of that branch votes no;
 * - "crash after the Kafka commit, before the ack is logged": a FRESH participant instance
 *   commits again → already-done, still one copy;
 * - "crash in the middle of the Kafka transaction": a raw producer with the branch's
 *   transactional id sends part of the messages (and even the marker) without committing;
 *   nothing is visible, then a fresh participant's commit leaves exactly one copy;
 * - two participant instances racing the commit of one branch leave exactly one copy, and
 *   many branches sharing a transactional id in one process all commit once;
 * - a branch larger than one record batch of its topic (max.message.bytes) is split into
 *   several sends of one transaction, in order;
 * - `fence()` aborts a half-done transaction on every id of the pool;
 * - the marker check really starts at the offset the yes vote recorded (its evidence), and
 *   from the partition's start without evidence; it reads no clock.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { encodeMarkerFloor } from "../../../participants/kafka/evidence.js";
import { markerPartitionOf, transactionalIdOf } from "../../../participants/kafka/layout.js";
import type { BranchId } from "../../../participants/participant.js";
import {
  commitWithRetries,
  createFixture,
  fencingError,
  payloadOf,
  phase2,
  prepareCtx,
  rejectionOf,
  type Fixture,
} from "./helpers.js";

void describe("Kafka participant: phase 2", () => {
  let f: Fixture;
  let topic: string;

  before(async () => {
    f = await createFixture();
    topic = await f.topic("events", 3);
  });
  after(async () => {
    await f?.cleanup();
  });

  const messages = (tag: string) => [
    { topic, key: `k-${tag}`, value: `${tag}-a`, headers: { "x-tag": tag } },
    { topic, value: `${tag}-b`, partition: 1 },
    { topic, key: `k-${tag}`, value: `${tag}-c`, partition: 2 },
  ];
  const valuesOf = (tag: string) => [`${tag}-a`, `${tag}-b`, `${tag}-c`];
  const mine = async (tag: string) =>
    (await f.values(topic)).filter((v) => v.startsWith(`${tag}-`)).sort();
  const layoutOf = () => ({
    transactionalIdPrefix: f.transactionalIdPrefix,
    poolSize: 4,
    markerPartitions: 3,
  });
  const markers = async (branchId: BranchId) => {
    const partition = markerPartitionOf(layoutOf(), branchId);
    const read = await f.reader.readSettled(f.markerTopic, partition);
    return read.records.filter((r) => r.key === branchId).length;
  };

  void test("a commit is visible exactly once, with its marker; a repeat is already-done", async () => {
    const p = await f.started();
    const branchId = f.branchId();
    const payload = payloadOf(messages("once"));
    assert.equal((await p.prepare({ branchId, payload }, prepareCtx())).vote, "yes");
    const ctx = phase2();
    assert.equal((await commitWithRetries(p, branchId, payload, ctx)).outcome, "done");
    assert.deepEqual(await mine("once"), valuesOf("once"));
    assert.equal(await markers(branchId), 1);

    const read = await f.reader.readSettled(topic, 0);
    const first = read.records.find((r) => r.value === "once-a");
    if (first !== undefined) assert.deepEqual(first.headers, { "x-tag": "once" });
    assert.equal((await f.reader.readSettled(topic, 1)).values.includes("once-b"), true);

    assert.equal((await commitWithRetries(p, branchId, payload, ctx)).outcome, "already-done");
    assert.deepEqual(await mine("once"), valuesOf("once"));
    assert.equal(await markers(branchId), 1);
  });

  void test("a rollback makes nothing visible; a later prepare votes no", async () => {
    const p = await f.started();
    const branchId = f.branchId();
    const payload = payloadOf(messages("rolled"));
    assert.equal((await p.prepare({ branchId, payload }, prepareCtx())).vote, "yes");
    assert.equal((await p.rollback({ branchId, payload }, phase2())).outcome, "done");
    assert.deepEqual(await mine("rolled"), []);
    assert.equal(await markers(branchId), 0);
    const again = await p.prepare({ branchId, payload }, prepareCtx());
    assert.equal(again.vote === "no" && again.reason, "rolled-back");
    assert.deepEqual(await p.recover(), []);
  });

  void test("crash after the Kafka commit, before the ack: a fresh instance answers already-done", async () => {
    const first = await f.started();
    const branchId = f.branchId();
    const payload = payloadOf(messages("acked"));
    const ctx = phase2();
    assert.equal((await commitWithRetries(first, branchId, payload, ctx)).outcome, "done");
    await first.close(); // the node "crashes" before logging the acknowledgement

    const fresh = await f.started();
    assert.equal((await commitWithRetries(fresh, branchId, payload, ctx)).outcome, "already-done");
    assert.deepEqual(await mine("acked"), valuesOf("acked"));
    assert.equal(await markers(branchId), 1);
  });

  void test("crash in the middle of the Kafka transaction: no partial visibility, then one copy", async () => {
    const branchId = f.branchId();
    const payload = payloadOf(messages("half"));
    const ctx = phase2();
    const transactionalId = transactionalIdOf(layoutOf(), branchId);
    const crashed = f.kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 3 },
    });
    await crashed.connect();
    try {
      const transaction = await crashed.transaction();
      await transaction.send({ topic, messages: [{ key: "k-half", value: "half-a" }] });
      await transaction.send({ topic, messages: [{ value: "half-b", partition: 1 }] });
      // Even the marker was sent: the next fence aborts it, and the check must not see it.
      await transaction.send({
        topic: f.markerTopic,
        messages: [
          { key: branchId, value: "{}", partition: markerPartitionOf(layoutOf(), branchId) },
        ],
      });

      for (const partition of [0, 1, 2]) {
        const read = await f.reader.readPartition(topic, partition);
        assert.deepEqual(
          read.values.filter((v) => v.startsWith("half-")),
          [],
          "a half-done transaction is visible",
        );
      }

      const p = await f.started();
      assert.equal((await commitWithRetries(p, branchId, payload, ctx)).outcome, "done");
      assert.deepEqual(await mine("half"), valuesOf("half"));
      assert.equal(await markers(branchId), 1);

      const commitError = await rejectionOf(() => transaction.commit());
      assert.match(commitError, fencingError, "the crashed attempt could still commit");
      assert.deepEqual(await mine("half"), valuesOf("half"));
    } finally {
      await crashed.disconnect();
    }
  });

  void test("two instances racing one branch leave exactly one copy", async () => {
    const [a, b] = await Promise.all([f.started(), f.started()]);
    for (let round = 0; round < 3; round += 1) {
      const branchId = f.branchId();
      const tag = `race${round}`;
      const payload = payloadOf(messages(tag));
      const ctx = phase2();
      const outcomes = await Promise.all([
        commitWithRetries(a, branchId, payload, ctx),
        commitWithRetries(b, branchId, payload, ctx),
      ]);
      assert.deepEqual(
        outcomes.map((o) => o.outcome).sort(),
        ["already-done", "done"],
        `round ${round}: ${JSON.stringify(outcomes)}`,
      );
      assert.deepEqual(await mine(tag), valuesOf(tag));
      assert.equal(await markers(branchId), 1);
    }
  });

  void test("many branches sharing transactional ids in one process each commit once", async () => {
    const p = await f.started({ poolSize: 4 });
    const branches = Array.from({ length: 12 }, (_, i) => ({
      branchId: f.branchId(),
      tag: `many${i}`,
    }));
    const outcomes = await Promise.all(
      branches.map(({ branchId, tag }) =>
        commitWithRetries(p, branchId, payloadOf(messages(tag)), phase2()),
      ),
    );
    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      branches.map(() => "done"),
    );
    assert.equal(
      outcomes.every((o) => o.attempts === 1),
      true,
      "attempts of one process fenced each other",
    );
    for (const { tag } of branches) assert.deepEqual(await mine(tag), valuesOf(tag));
  });

  void test("a branch larger than the topic's record batch limit is sent in order, in several sends", async () => {
    const small = await f.topic("small-batches", 1, { "max.message.bytes": "2000" });
    const p = await f.started();
    const branchId = f.branchId();
    const values = Array.from({ length: 5 }, (_, i) => `${i}`.repeat(1500));
    const payload = payloadOf(values.map((value) => ({ topic: small, value })));
    assert.equal((await p.prepare({ branchId, payload }, prepareCtx())).vote, "yes");
    const result = await commitWithRetries(p, branchId, payload, phase2());
    assert.deepEqual(result, { outcome: "done", attempts: 1 });
    assert.deepEqual(await f.values(small), values);
  });

  void test("fence() aborts a half-done transaction on every id of the pool", async () => {
    const p = await f.started();
    const open = [];
    for (let slot = 0; slot < 4; slot += 1) {
      const producer = f.kafka.producer({
        transactionalId: `${f.transactionalIdPrefix}-${slot}`,
        idempotent: true,
        maxInFlightRequests: 1,
        retry: { retries: 3 },
      });
      await producer.connect();
      const transaction = await producer.transaction();
      await transaction.send({ topic, messages: [{ value: `fenced-${slot}`, partition: 0 }] });
      open.push({ producer, transaction });
    }
    await p.fence();
    try {
      for (const { transaction } of open) {
        assert.match(await rejectionOf(() => transaction.commit()), fencingError);
      }
      assert.deepEqual(await mine("fenced"), []);
    } finally {
      await Promise.allSettled(open.map(({ producer }) => producer.disconnect()));
    }
  });

  void test("the marker check starts at the offset the yes vote recorded, not at a time", async () => {
    const p = await f.started();
    const branchId = f.branchId();
    const payload = payloadOf([{ topic, value: "floor-a", partition: 0 }]);
    const vote = await p.prepare({ branchId, payload }, prepareCtx());
    assert.equal(vote.vote === "yes" && vote.evidence?.startsWith("marker-floor:v1:"), true);
    const evidence = vote.vote === "yes" ? vote.evidence : undefined;
    const ctx = { ...phase2(), evidence };
    assert.equal((await commitWithRetries(p, branchId, payload, ctx)).outcome, "done");
    // Evidence from after the marker (never what a vote records: it precedes the decision)
    // hides it: the check reads only from the recorded offset, so this commit is done again.
    const partition = markerPartitionOf(layoutOf(), branchId);
    const past = encodeMarkerFloor(
      partition,
      await f.reader.highWatermark(f.markerTopic, partition),
    );
    const later = { ...phase2(), evidence: past };
    assert.equal((await commitWithRetries(p, branchId, payload, later)).outcome, "done");
    assert.equal(await markers(branchId), 2);
    // With the vote's evidence, and without any (from the partition's start), it is found.
    assert.equal((await commitWithRetries(p, branchId, payload, ctx)).outcome, "already-done");
    assert.equal((await commitWithRetries(p, branchId, payload, phase2())).outcome, "already-done");
  });
});
