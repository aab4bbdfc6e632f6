/**
 * A Kafka participant that goes away (its own throwaway broker SIGKILLed mid-test, then
 * restarted on the same ports and data directory; the shared broker is never touched): before
 * a decision the Kafka branch votes no promptly and the transfer aborts, with the reason in the
 * admin API; after a commit decision phase 2 keeps retrying and, once the broker is back, the
 * message is produced exactly once (read back with read_committed). Never a hang past the
 * participant's timeouts, never a lost decision.
 */
import { after, before, describe, test } from "node:test";
import { kafkaMessages, message } from "../../client/index.js";
import { kafkaName, startOutageFixture, timeouts, type OutageFixture } from "./fixture.js";
import { commitThroughOutage, voteNoWhileDown, type Subject } from "./scenarios.js";

let f: OutageFixture;
let subject: Subject;

describe("a Kafka participant that goes away", () => {
  before(async () => {
    f = await startOutageFixture();
    subject = {
      participant: kafkaName,
      prepareBoundMs: timeouts.kafkaPrepareMs,
      branch: (tag) => kafkaMessages(kafkaName, [message(f.topic, `transfer-${tag}`)]),
      async applied(tag) {
        return (await f.topicValues()).filter((v) => v === `transfer-${tag}`).length;
      },
      stop: () => f.kafka.kill(),
      start: () => f.kafka.restart(),
      // A JVM broker restarting after a crash takes 10–20 s here; then one attempt.
      restartBoundMs: 60_000 + timeouts.kafkaAttemptMs,
    };
  });
  after(async () => {
    await f?.close();
  });

  test("before a decision: prepare votes no promptly and the transaction aborts", async () => {
    await voteNoWhileDown(f, subject);
  });

  test("after a commit decision: phase 2 retries until the broker is back, then produces once", async () => {
    await commitThroughOutage(f, subject);
  });
});
