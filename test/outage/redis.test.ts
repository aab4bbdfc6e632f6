/**
 * A Redis participant that goes away (its server SIGKILLed mid-test, then restarted on the
 * same port and AOF): before a decision the Redis branch votes no promptly and the transfer
 * aborts, with the reason in the admin API; after a commit decision phase 2 keeps retrying
 * and, once the server is back, the staged INCRBY is applied exactly once (read from Redis).
 * Never a hang past the participant's timeouts, never a lost decision.
 */
import { after, before, describe, test } from "node:test";
import { redis, redisOps } from "../../client/index.js";
import { redisName, startOutageFixture, timeouts, type OutageFixture } from "./fixture.js";
import { commitThroughOutage, voteNoWhileDown, type Subject } from "./scenarios.js";

let f: OutageFixture;
let subject: Subject;

/** INCRBY by this amount per transfer: the key's value counts how often a branch applied. */
const by = 7;

describe("a Redis participant that goes away", () => {
  before(async () => {
    f = await startOutageFixture();
    subject = {
      participant: redisName,
      prepareBoundMs: timeouts.redisConnectMs + timeouts.redisCommandMs,
      branch: (tag) => redisOps(redisName, [redis.incrby(`{outage}:${tag}`, by)]),
      async applied(tag) {
        const value = Number((await f.redisReader.get(`{outage}:${tag}`)) ?? "0");
        if (value % by !== 0) throw new Error(`assertion: {outage}:${tag} holds ${value}`);
        return value / by;
      },
      stop: () => f.redis.kill(),
      start: () => f.redis.restart(),
      restartBoundMs: 10_000,
    };
  });
  after(async () => {
    await f?.close();
  });

  test("before a decision: prepare votes no promptly and the transaction aborts", async () => {
    await voteNoWhileDown(f, subject);
  });

  test("after a commit decision: phase 2 retries until Redis is back, then applies once", async () => {
    await commitThroughOutage(f, subject);
  });
});
