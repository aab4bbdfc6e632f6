/**
 * Proves that `prepare` catches every permanent error before the decision, against the real
 * broker (Kafka cannot refuse a decided commit): a missing topic, a missing partition, a
 * record larger than the topic's max.message.bytes, a reserved topic (the marker topic, an
 * internal one), too many messages or bytes for a branch, and an invalid payload each vote
 * no at once with the topic in the detail; valid messages vote yes and produce nothing.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Vote } from "../../../participants/participant.js";
import type { KafkaParticipant } from "../../../participants/kafka/participant.js";
import type { KafkaMessage } from "../../../participants/kafka/payload.js";
import { createFixture, payloadOf, prepareCtx, type Fixture } from "./helpers.js";

void describe("Kafka participant: prepare validates against the broker", () => {
  let f: Fixture;
  let p: KafkaParticipant;
  let topic: string;
  let small: string;

  before(async () => {
    f = await createFixture();
    topic = await f.topic("orders", 2);
    small = await f.topic("small", 1, { "max.message.bytes": "2000" });
    p = await f.started({ messagesPerBranchMax: 5, branchBytesMax: 64 * 1024 });
  });
  after(async () => {
    await f?.cleanup();
  });

  const prepare = (messages: KafkaMessage[]): Promise<Vote> =>
    p.prepare({ branchId: f.branchId(), payload: payloadOf(messages) }, prepareCtx());

  const assertNo = (vote: Vote, reason: string, detail: RegExp) => {
    assert.equal(vote.vote, "no", JSON.stringify(vote));
    if (vote.vote === "no") {
      assert.equal(vote.reason, reason);
      assert.match(vote.detail, detail);
    }
  };

  void test("valid messages vote yes and produce nothing", async () => {
    const vote = await prepare([
      { topic, key: "k", value: "v", headers: { h: "1" } },
      { topic, value: "w", partition: 1 },
      { topic: small, value: "x".repeat(1500) },
    ]);
    assert.equal(vote.vote, "yes");
    assert.match(vote.vote === "yes" ? (vote.evidence ?? "") : "", /^marker-floor:v1:\d+:\d+$/);
    assert.deepEqual(await f.values(topic), []);
    assert.deepEqual(await f.values(small), []);
  });

  void test("a missing topic votes topic-missing", async () => {
    const missing = `verdict-test-missing-${f.run}`;
    assertNo(
      await prepare([
        { topic, value: "ok" },
        { topic: missing, value: "v" },
      ]),
      "topic-missing",
      new RegExp(missing),
    );
    assert.ok(!(await f.admin.listTopics()).includes(missing), "prepare created the topic");
  });

  void test("a missing partition votes partition-missing", async () => {
    assertNo(
      await prepare([{ topic, value: "v", partition: 2 }]),
      "partition-missing",
      new RegExp(`${topic} has 2 partitions, no partition 2`),
    );
  });

  void test("a record over the topic's max.message.bytes votes message-too-large", async () => {
    assertNo(
      await prepare([{ topic: small, value: "x".repeat(2000) }]),
      "message-too-large",
      new RegExp(`${small}.*2000`),
    );
    // Headers and key count too.
    assertNo(
      await prepare([{ topic: small, key: "k".repeat(1000), value: "x".repeat(1000) }]),
      "message-too-large",
      new RegExp(small),
    );
  });

  void test("the marker topic and internal topics are reserved", async () => {
    assertNo(
      await prepare([{ topic: f.markerTopic, value: "v" }]),
      "topic-reserved",
      new RegExp(f.markerTopic),
    );
    assertNo(
      await prepare([{ topic: "__consumer_offsets", value: "v" }]),
      "topic-reserved",
      /__consumer_offsets/,
    );
  });

  void test("the per-branch limits on messages and bytes vote branch-too-large", async () => {
    const six = Array.from({ length: 6 }, (_, i) => ({ topic, value: `m${i}` }));
    assertNo(await prepare(six), "branch-too-large", /6 messages; at most 5/);
    const big = Array.from({ length: 2 }, () => ({ topic, value: "x".repeat(40 * 1024) }));
    assertNo(await prepare(big), "branch-too-large", /record bytes; at most 65536/);
  });

  void test("an invalid payload votes invalid-payload", async () => {
    const vote = await p.prepare(
      {
        branchId: f.branchId(),
        payload: { kind: "messages", messages: [{ topic: "bad topic!", value: "v" }] },
      },
      prepareCtx(),
    );
    assertNo(vote, "invalid-payload", /topic/);
  });

  void test("a deadline already past votes deadline", async () => {
    const vote = await p.prepare(
      { branchId: f.branchId(), payload: payloadOf([{ topic: `${topic}-never`, value: "v" }]) },
      { deadlineMs: Date.now() - 1 },
    );
    assertNo(vote, "deadline", /deadline/);
  });
});
