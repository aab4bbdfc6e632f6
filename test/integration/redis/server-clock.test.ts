// Proves that the Redis participant decides its prepare and one-phase deadline on the
// server's clock (TIME inside the scripts), not only on its own: a participant whose clock
// runs a minute behind accepts a deadline that has passed on the server's clock, and the
// script refuses it. Prepare votes no with `deadline` and stages nothing (no branch record,
// no lock, not in the prepared index, no outcome record); a one-phase commit aborts with
// `deadline` and writes nothing (read directly). The same participant, given a deadline
// ahead on both clocks, votes yes: what the refusal shows is the deadline.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createRedisParticipant,
  type RedisParticipant,
} from "../../../participants/redis/participant.js";
import { branch, createFixture, phase2Ctx } from "./helpers.js";

/** How far the participant's own clock runs behind the real (and the server's) one. */
const behindMs = 60_000;

const fx = createFixture();
let p: RedisParticipant;

/** Passed a second ago on the server's clock; 59 s ahead on the participant's. */
const passedOnServer = () => ({ deadlineMs: Date.now() - 1_000 });

before(async () => {
  p = createRedisParticipant(
    { name: `redis-clock-${fx.run}`, url: fx.url, namespace: fx.namespace },
    { nowMs: () => Date.now() - behindMs },
  );
  await p.start(fx.clusterId);
});
after(async () => {
  await p?.close();
  await fx.cleanup();
});

/** Nothing of branch `id` touching `key` is in Redis: staged, locked, indexed or recorded. */
async function assertNothingOf(id: string, key: string): Promise<void> {
  assert.equal(await fx.direct.exists(fx.internal(`branch:${id}`)), 0, "branch record");
  assert.equal(await fx.direct.exists(fx.internal(`lock:${key}`)), 0, "lock");
  assert.equal(await fx.direct.sismember(fx.internal("prepared"), id), 0, "prepared index");
  assert.equal(await fx.direct.exists(fx.internal(`outcome:${id}`)), 0, "outcome record");
  assert.equal(await fx.direct.exists(key), 0, "the user key");
}

void describe("Redis participant: deadlines on the server's clock", () => {
  void test("a prepare past the deadline on the server's clock votes no with deadline", async () => {
    const k = fx.key("late-prepare");
    const b = branch(fx.branchId(), [{ op: "set", key: k, value: "late" }]);
    const vote = await p.prepare(b, passedOnServer());
    assert.equal(vote.vote, "no", JSON.stringify(vote));
    assert.equal(vote.vote === "no" && vote.reason, "deadline");
    assert.match(vote.vote === "no" ? vote.detail : "", /server clock/);
    await assertNothingOf(b.branchId, k);
  });

  void test("a one-phase commit past the deadline on the server's clock aborts with deadline", async () => {
    const k = fx.key("late-one-phase");
    const b = branch(fx.branchId(), [{ op: "set", key: k, value: "late" }]);
    const outcome = await p.commitOnePhase(b, passedOnServer());
    assert.equal(outcome.outcome, "aborted", JSON.stringify(outcome));
    assert.equal(outcome.outcome === "aborted" && outcome.reason, "deadline");
    await assertNothingOf(b.branchId, k);
  });

  void test("the same participant votes yes on a deadline ahead on both clocks", async () => {
    const k = fx.key("in-time");
    const b = branch(fx.branchId(), [{ op: "set", key: k, value: "in time" }]);
    assert.deepEqual(await p.prepare(b, { deadlineMs: Date.now() + 10_000 }), { vote: "yes" });
    assert.equal(await fx.direct.sismember(fx.internal("prepared"), b.branchId), 1);
    assert.equal((await p.rollback(b, phase2Ctx)).outcome, "done");
  });
});
