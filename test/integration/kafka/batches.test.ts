/**
 * Proves the Kafka participant's batched phase 2 (slot.ts, commit-batch.ts) against the real
 * broker, reading the truth with a group-less read_committed reader. All branches share one
 * transactional id (pool size 1):
 * - first calls queued together go into one Kafka transaction, and each branch's messages
 *   and marker are visible exactly once;
 * - a retry on the kept producer checks the marker: already-done, still one copy;
 * - a retry queued behind its own first call goes in a later batch and finds the marker, and
 *   a first call delayed behind a retry of its branch checks the marker too;
 * - a kept producer fenced by another instance fails its batch; the retries commit once;
 * - a branch the broker refuses fails its whole batch, nothing of that batch is visible, and
 *   retried alone it no longer holds back the others, which commit once each.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createKafkaParticipant } from "../../../participants/kafka/participant.js";
import { KafkaParticipantError } from "../../../participants/kafka/errors.js";
import { markerPartitionOf } from "../../../participants/kafka/layout.js";
import type { KafkaMessage } from "../../../participants/kafka/payload.js";
import type { BranchId, Phase2Outcome } from "../../../participants/participant.js";
import {
  createFixture,
  fencingError,
  payloadOf,
  phase2,
  prepareCtx,
  type Fixture,
} from "./helpers.js";

type Started = ReturnType<typeof createKafkaParticipant>;

void describe("Kafka participant: branches batched on one transactional id", () => {
  let f: Fixture;
  let topic: string;
  const transactions: number[] = [];
  const made: Started[] = [];

  before(async () => {
    f = await createFixture();
    topic = await f.topic("batched", 2);
  });
  after(async () => {
    await Promise.allSettled(made.map((p) => p.close()));
    await f?.cleanup();
  });

  /** A started participant of pool size 1 that records each Kafka transaction's branches. */
  const started = async (): Promise<Started> => {
    const p = createKafkaParticipant(f.config({ poolSize: 1, topicInfoCacheMs: 60_000 }), {
      onTransaction: (branches) => transactions.push(branches),
    });
    made.push(p);
    await p.start(f.clusterId);
    return p;
  };
  const messages = (tag: string, t = topic): KafkaMessage[] => [
    { topic: t, key: `k-${tag}`, value: `${tag}-a` },
    { topic: t, value: `${tag}-b`, partition: 1 },
  ];
  const mine = async (tag: string) =>
    (await f.values(topic)).filter((v) => v.startsWith(`${tag}-`)).sort();
  const markers = async (branchId: BranchId) => {
    const layout = {
      transactionalIdPrefix: f.transactionalIdPrefix,
      poolSize: 1,
      markerPartitions: 3,
    };
    const read = await f.reader.readSettled(f.markerTopic, markerPartitionOf(layout, branchId));
    return read.records.filter((r) => r.key === branchId).length;
  };
  /** Prepared and decided now: the ctx of its first call, and of every retry. */
  const decided = async (p: Started, branchId: BranchId, msgs: KafkaMessage[]) => {
    const vote = await p.prepare({ branchId, payload: payloadOf(msgs) }, prepareCtx());
    assert.equal(vote.vote, "yes");
    const retry = {
      ...phase2(),
      ...(vote.vote === "yes" && vote.evidence ? { evidence: vote.evidence } : {}),
    };
    return { first: { ...retry, firstCall: true as const }, retry };
  };
  /** Commits as the coordinator does: the first call says so, retries (bounded) do not. */
  const commitLikeTheEngine = async (
    p: Started,
    branchId: BranchId,
    msgs: KafkaMessage[],
  ): Promise<{ outcome: Phase2Outcome["outcome"]; calls: number }> => {
    const { first, retry } = await decided(p, branchId, msgs);
    const payload = payloadOf(msgs);
    for (let calls = 1; calls <= 20; calls += 1) {
      try {
        const result = await p.commit({ branchId, payload }, calls === 1 ? first : retry);
        return { outcome: result.outcome, calls };
      } catch (err) {
        if (!(err instanceof KafkaParticipantError && err.retryable)) throw err;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    throw new Error(`${branchId}: not committed in 20 calls`);
  };

  void test("first calls queued together share one Kafka transaction; each is visible once", async () => {
    const p = await started();
    await p.fence();
    transactions.length = 0;
    const branches = Array.from({ length: 24 }, (_, i) => ({
      branchId: f.branchId(),
      tag: `b${i}`,
    }));
    const outcomes = await Promise.all(
      branches.map(({ branchId, tag }) => commitLikeTheEngine(p, branchId, messages(tag))),
    );
    assert.deepEqual(
      outcomes.map((o) => `${o.outcome}/${o.calls}`),
      branches.map(() => "done/1"),
    );
    for (const { branchId, tag } of branches) {
      assert.deepEqual(await mine(tag), [`${tag}-a`, `${tag}-b`]);
      assert.equal(await markers(branchId), 1);
    }
    assert.equal(
      transactions.reduce((sum, n) => sum + n, 0),
      24,
    );
    assert.ok(
      transactions.length < 24,
      `one transaction per branch: ${JSON.stringify(transactions)}`,
    );
  });

  void test("a retry on the kept producer finds the marker: already-done, one copy", async () => {
    const p = await started();
    const branchId = f.branchId();
    const { first, retry } = await decided(p, branchId, messages("kept"));
    const payload = payloadOf(messages("kept"));
    assert.equal((await p.commit({ branchId, payload }, first)).outcome, "done");
    assert.equal((await p.commit({ branchId, payload }, retry)).outcome, "already-done");
    assert.deepEqual(await mine("kept"), ["kept-a", "kept-b"]);
    assert.equal(await markers(branchId), 1);
  });

  void test("a retry queued behind its own first call goes in a later batch and finds the marker", async () => {
    const p = await started();
    const branchId = f.branchId();
    const { first, retry } = await decided(p, branchId, messages("twice"));
    const payload = payloadOf(messages("twice"));
    const outcomes = await Promise.all([
      p.commit({ branchId, payload }, first),
      p.commit({ branchId, payload }, retry),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.outcome),
      ["done", "already-done"],
    );
    assert.deepEqual(await mine("twice"), ["twice-a", "twice-b"]);
    assert.equal(await markers(branchId), 1);
  });

  void test("a first call arriving after a retry of its branch here checks the marker", async () => {
    const p = await started();
    const branchId = f.branchId();
    const { first, retry } = await decided(p, branchId, messages("late"));
    const payload = payloadOf(messages("late"));
    assert.equal((await p.commit({ branchId, payload }, retry)).outcome, "done");
    assert.equal((await p.commit({ branchId, payload }, first)).outcome, "already-done");
    assert.deepEqual(await mine("late"), ["late-a", "late-b"]);
    assert.equal(await markers(branchId), 1);
  });

  void test("a kept producer fenced by another instance fails its batch; the retry commits once", async () => {
    const a = await started();
    await a.fence();
    const b = await started();
    await b.fence(); // a's producer is now refused
    const branchId = f.branchId();
    const { first, retry } = await decided(a, branchId, messages("fenced"));
    const payload = payloadOf(messages("fenced"));
    const error = await a.commit({ branchId, payload }, first).then(
      () => "",
      (err: unknown) =>
        `${String((err as { kafkaErrorType?: unknown }).kafkaErrorType)} ${String(err)}`,
    );
    assert.match(error, fencingError);
    assert.deepEqual(await mine("fenced"), []);
    assert.equal((await a.commit({ branchId, payload }, retry)).outcome, "done");
    assert.deepEqual(await mine("fenced"), ["fenced-a", "fenced-b"]);
    assert.equal(await markers(branchId), 1);
  });

  void test("a branch the broker refuses fails its batch; retried alone, the others commit once", async () => {
    const small = await f.topic("small", 1);
    const p = await started();
    await p.fence();
    const poison = f.branchId();
    const big = [{ topic: small, value: "x".repeat(4096) }];
    const poisonCtx = await decided(p, poison, big); // prepare sees the topic's limit of now
    await f.admin.alterConfigs({
      validateOnly: false,
      resources: [
        { type: 2, name: small, configEntries: [{ name: "max.message.bytes", value: "1024" }] },
      ],
    });
    const others = Array.from({ length: 6 }, (_, i) => ({ branchId: f.branchId(), tag: `p${i}` }));
    const otherCtx = await Promise.all(others.map((o) => decided(p, o.branchId, messages(o.tag))));
    const firstCalls = await Promise.allSettled([
      p.commit({ branchId: poison, payload: payloadOf(big) }, poisonCtx.first),
      ...others.map((o, i) =>
        p.commit({ branchId: o.branchId, payload: payloadOf(messages(o.tag)) }, otherCtx[i]!.first),
      ),
    ]);
    assert.equal(
      firstCalls.every((c) => c.status === "rejected"),
      true,
      "the batch was not one",
    );
    // The failed transaction stays open until the next fence: read below its LSO.
    for (const partition of [0, 1]) {
      const read = await f.reader.readPartition(topic, partition);
      assert.equal(
        read.values.some((v) => others.some((o) => v.startsWith(`${o.tag}-`))),
        false,
        "part of a failed batch is visible",
      );
    }
    const retries = await Promise.allSettled([
      p.commit({ branchId: poison, payload: payloadOf(big) }, poisonCtx.retry),
      ...others.map((o, i) =>
        p.commit({ branchId: o.branchId, payload: payloadOf(messages(o.tag)) }, otherCtx[i]!.retry),
      ),
    ]);
    assert.equal(retries[0].status, "rejected");
    assert.deepEqual(
      retries.slice(1).map((r) => (r.status === "fulfilled" ? r.value.outcome : String(r.reason))),
      others.map(() => "done"),
    );
    for (const o of others) {
      assert.deepEqual(await mine(o.tag), [`${o.tag}-a`, `${o.tag}-b`]);
      assert.equal(await markers(o.branchId), 1);
    }
    assert.equal(await markers(poison), 0);
  });
});
