/**
 * Proves that the marker check never takes "not read yet" for "absent", against the real
 * broker (the duplicate a random-kill soak found):
 * - a branch committed by a crashed attempt, whose marker sits above the marker partition's
 *   last stable offset because ANOTHER transactional id's transaction opened earlier is still
 *   open there, is found by the next attempt once that transaction ends: already-done, one copy.
 *   (Before the fix the check scanned only up to the LSO read after the fence, missed the
 *   marker, and produced the messages a second time.)
 * - while that other transaction stays open, an attempt does not produce: it fails, retryably,
 *   and the coordinator's retry starts again from the fence.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Producer } from "kafkajs";
import { markerPartitionOf, transactionalIdOf } from "../../../participants/kafka/layout.js";
import type { BranchId } from "../../../participants/participant.js";
import { KafkaParticipantError } from "../../../participants/kafka/errors.js";
import { commitWithRetries, createFixture, payloadOf, phase2, type Fixture } from "./helpers.js";

void describe("Kafka participant: exactly once when the marker partition's LSO lags", () => {
  let f: Fixture;
  let topic: string;
  const producers: Producer[] = [];

  before(async () => {
    f = await createFixture();
    topic = await f.topic("lso", 1);
  });
  after(async () => {
    await Promise.allSettled(producers.map((p) => p.disconnect()));
    await f?.cleanup();
  });

  const layout = () => ({
    transactionalIdPrefix: f.transactionalIdPrefix,
    poolSize: 4,
    markerPartitions: 3,
  });
  const producer = async (transactionalId: string): Promise<Producer> => {
    const p = f.kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      retry: { retries: 3 },
    });
    producers.push(p);
    await p.connect();
    return p;
  };
  /** Opens a transaction of a foreign transactional id on the branch's marker partition. */
  const holdMarkerPartition = async (branchId: BranchId) => {
    const other = await producer(`${f.transactionalIdPrefix}-foreign-${branchId.length}`);
    const transaction = await other.transaction();
    await transaction.send({
      topic: f.markerTopic,
      messages: [{ key: "foreign", value: "{}", partition: markerPartitionOf(layout(), branchId) }],
    });
    return transaction;
  };
  /** What the crashed node's attempt did: messages + marker, committed, never acknowledged. */
  const crashedCommit = async (branchId: BranchId, value: string, decidedAtMs: number) => {
    const crashed = await producer(transactionalIdOf(layout(), branchId));
    const transaction = await crashed.transaction();
    await transaction.send({ topic, messages: [{ key: branchId, value, partition: 0 }] });
    await transaction.send({
      topic: f.markerTopic,
      messages: [
        {
          key: branchId,
          value: JSON.stringify({ term: 1, decidedAtMs }),
          partition: markerPartitionOf(layout(), branchId),
        },
      ],
    });
    await transaction.commit();
  };
  const copies = async (value: string) => (await f.values(topic)).filter((v) => v === value);

  void test("a committed marker above the LSO is found once the LSO passes it: already-done", async () => {
    const p = await f.started();
    const branchId = f.branchId();
    const ctx = phase2();
    const foreign = await holdMarkerPartition(branchId);
    await crashedCommit(branchId, "lso-once", ctx.decidedAtMs);

    const retried = commitWithRetries(p, branchId, payloadOf([{ topic, value: "lso-once" }]), ctx);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    await foreign.abort();
    assert.equal((await retried).outcome, "already-done");
    assert.deepEqual(await copies("lso-once"), ["lso-once"]);
  });

  void test("while an earlier transaction stays open there, an attempt fails retryably and sends nothing", async () => {
    const p = await f.started({ attemptTimeoutMs: 2_000 });
    const branchId = f.branchId();
    const ctx = phase2();
    const foreign = await holdMarkerPartition(branchId);
    try {
      await assert.rejects(
        p.commit({ branchId, payload: payloadOf([{ topic, value: "lso-held" }]) }, ctx),
        (err: unknown) => err instanceof KafkaParticipantError && err.retryable,
      );
      assert.deepEqual(await copies("lso-held"), []);
    } finally {
      await foreign.abort();
    }
    const result = await commitWithRetries(
      p,
      branchId,
      payloadOf([{ topic, value: "lso-held" }]),
      ctx,
    );
    assert.equal(result.outcome, "done");
    assert.deepEqual(await copies("lso-held"), ["lso-held"]);
  });
});
