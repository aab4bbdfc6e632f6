// Proves the Redis participant's phase 2 and recovery against the real Redis of deploy/local:
// commit applies every operation type exactly as staged (order, TTL, more values than one
// Lua unpack can take) and releases locks, index entry and staged record, leaving an outcome
// record; repeated commits and rollbacks answer already-done without applying twice; a
// rollback of a branch never prepared leaves a tombstone that refuses a later prepare;
// branches decided the other way are reported as heuristics, never thrown; a commit that a
// plain client made impossible applies nothing and throws a retryable error until fixed;
// recover() on a fresh instance after a crash lists exactly this cluster's staged branches;
// one-phase commit and isCommitted agree; forget removes outcome records and tombstones; a
// second cluster id cannot take the namespace.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CommitBlockedError, ClusterMismatchError } from "../../../participants/redis/errors.js";
import type { RedisParticipant } from "../../../participants/redis/participant.js";
import { branch, createFixture, phase2Ctx, prepareCtx } from "./helpers.js";

const fx = createFixture();
let p: RedisParticipant;

before(async () => {
  p = await fx.started();
});
after(() => fx.cleanup());

async function outcomeRecord(branchId: string): Promise<Record<string, string>> {
  return fx.direct.hgetall(fx.internal(`outcome:${branchId}`));
}

void describe("Redis participant: phase 2 and recovery", () => {
  void test("commit applies every operation type as staged and releases everything", async () => {
    const k = (name: string) => fx.key(`apply-${name}`);
    await fx.direct.set(k("gone"), "x");
    await fx.direct.set(k("counter"), "40");
    await fx.direct.hset(k("hash"), "keep", "1", "drop", "2");
    await fx.direct.sadd(k("set"), "a", "b");
    await fx.direct.rpush(k("list"), "middle");
    const many = Array.from({ length: 2_500 }, (_, i) => `v${i}`);
    const b = branch(fx.branchId(), [
      { op: "set", key: k("plain"), value: "hello ✓" },
      { op: "set", key: k("ttl"), value: "soon", ttlMs: 60_000 },
      { op: "del", key: k("gone") },
      { op: "incrby", key: k("counter"), by: 2 },
      { op: "incrby", key: k("fresh"), by: -7 },
      { op: "hset", key: k("hash"), field: "new", value: "3" },
      { op: "hdel", key: k("hash"), field: "drop" },
      { op: "sadd", key: k("set"), values: ["c", "d"] },
      { op: "srem", key: k("set"), values: ["a"] },
      { op: "lpush", key: k("list"), values: ["l1", "l2"] },
      { op: "rpush", key: k("list"), values: ["r1", "r2"] },
      { op: "rpush", key: k("many"), values: many },
    ]);
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await p.recover(), [b.branchId]);
    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "done" });

    assert.equal(await fx.direct.get(k("plain")), "hello ✓");
    assert.equal(await fx.direct.get(k("ttl")), "soon");
    const ttlMs = await fx.direct.pttl(k("ttl"));
    assert.ok(ttlMs > 50_000 && ttlMs <= 60_000, `PX applied, got ${ttlMs}`);
    assert.equal(await fx.direct.exists(k("gone")), 0);
    assert.equal(await fx.direct.get(k("counter")), "42");
    assert.equal(await fx.direct.get(k("fresh")), "-7");
    assert.deepEqual(await fx.direct.hgetall(k("hash")), { keep: "1", new: "3" });
    assert.deepEqual((await fx.direct.smembers(k("set"))).sort(), ["b", "c", "d"]);
    assert.deepEqual(await fx.direct.lrange(k("list"), 0, -1), ["l2", "l1", "middle", "r1", "r2"]);
    assert.deepEqual(await fx.direct.lrange(k("many"), 0, -1), many, "chunks keep the order");

    for (const name of ["plain", "counter", "hash", "many"]) {
      assert.equal(await fx.direct.exists(fx.internal(`lock:${k(name)}`)), 0, `lock of ${name}`);
    }
    assert.equal(await fx.direct.exists(fx.internal(`branch:${b.branchId}`)), 0);
    assert.deepEqual(await p.recover(), []);
    const record = await outcomeRecord(b.branchId);
    assert.equal(record.outcome, "committed");
    assert.equal(record.prepared, "1");
    assert.equal(record.term, String(phase2Ctx.term));
    assert.equal(await fx.direct.pttl(fx.internal(`outcome:${b.branchId}`)), -1, "no TTL");
  });

  void test("a repeated commit answers already-done and applies nothing twice", async () => {
    const k = fx.key("repeat-commit");
    const b = branch(fx.branchId(), [{ op: "incrby", key: k, by: 10 }]);
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "done" });
    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "already-done" });
    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "already-done" });
    assert.equal(await fx.direct.get(k), "10");
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" }, "committed: yes, no redo");
    assert.equal(await fx.direct.get(k), "10");
  });

  void test("a repeated rollback answers already-done; the prepare after it votes no", async () => {
    const k = fx.key("repeat-rollback");
    await fx.direct.set(k, "before");
    const b = branch(fx.branchId(), [{ op: "set", key: k, value: "after" }]);
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await p.rollback(b, phase2Ctx), { outcome: "done" });
    assert.deepEqual(await p.rollback(b, phase2Ctx), { outcome: "already-done" });
    assert.equal(await fx.direct.get(k), "before");
    assert.equal(await fx.direct.exists(fx.internal(`lock:${k}`)), 0);
    assert.deepEqual(await p.recover(), []);
    const record = await outcomeRecord(b.branchId);
    assert.equal(record.outcome, "rolled-back");
    assert.equal(record.prepared, "1");
    const vote = await p.prepare(b, prepareCtx());
    assert.equal(vote.vote === "no" && vote.reason, "rolled-back");
    assert.equal(await fx.direct.get(k), "before");
  });

  void test("a rollback of a branch never prepared leaves a tombstone that refuses its prepare", async () => {
    const k = fx.key("tombstone");
    const b = branch(fx.branchId(), [{ op: "set", key: k, value: "x" }]);
    assert.deepEqual(await p.rollback(b, phase2Ctx), { outcome: "done" });
    const record = await outcomeRecord(b.branchId);
    assert.equal(record.outcome, "rolled-back");
    assert.equal(record.prepared, "0");
    const vote = await p.prepare(b, prepareCtx());
    assert.equal(vote.vote === "no" && vote.reason, "rolled-back");
    assert.equal(await fx.direct.exists(k), 0);
    assert.equal(await fx.direct.exists(fx.internal(`lock:${k}`)), 0);
  });

  void test("branches decided the other way are heuristics, answered and never thrown", async () => {
    const k = fx.key("heuristic");
    // Another coordinator (here another participant instance) rolled the branch back.
    const other = await fx.started();
    const rolledBack = branch(fx.branchId(), [{ op: "set", key: k, value: "x" }]);
    assert.deepEqual(await p.prepare(rolledBack, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await other.rollback(rolledBack, phase2Ctx), { outcome: "done" });
    const outcome = await p.commit(rolledBack, phase2Ctx);
    assert.equal(outcome.outcome, "heuristic-rollback");
    assert.match("detail" in outcome ? outcome.detail : "", /rolled back outside this decision/);
    assert.equal(await fx.direct.exists(k), 0);

    const neverPrepared = branch(fx.branchId(), [{ op: "set", key: k, value: "y" }]);
    const missing = await p.commit(neverPrepared, phase2Ctx);
    assert.equal(missing.outcome, "heuristic-rollback");
    assert.match("detail" in missing ? missing.detail : "", /no staged operations/);

    const committed = branch(fx.branchId(), [{ op: "set", key: k, value: "z" }]);
    assert.deepEqual(await p.prepare(committed, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await other.commit(committed, phase2Ctx), { outcome: "done" });
    const late = await p.rollback(committed, phase2Ctx);
    assert.equal(late.outcome, "heuristic-commit");
    assert.equal(await fx.direct.get(k), "z", "the rollback undid nothing");
  });

  void test("a commit a plain client made impossible applies nothing and throws until fixed", async () => {
    const counter = fx.key("blocked-counter");
    const other = fx.key("blocked-other");
    const b = branch(fx.branchId(), [
      { op: "set", key: other, value: "applied" },
      { op: "incrby", key: counter, by: 1 },
    ]);
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    await fx.direct.set(counter, "not a number"); // locks do not exclude plain clients
    await assert.rejects(p.commit(b, phase2Ctx), (err: unknown) => {
      assert.ok(err instanceof CommitBlockedError, String(err));
      assert.equal(err.retryable, true);
      assert.equal(err.key, counter);
      assert.equal(err.branchId, b.branchId);
      return true;
    });
    assert.equal(await fx.direct.exists(other), 0, "nothing applied half-way");
    assert.deepEqual(await p.recover(), [b.branchId], "still staged");
    await fx.direct.set(counter, "5");
    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "done" });
    assert.equal(await fx.direct.get(counter), "6");
    assert.equal(await fx.direct.get(other), "applied");
  });

  void test("recover() on a fresh instance after a crash lists exactly this cluster's branches", async () => {
    const crashed = await fx.started();
    const keyA = fx.key("crash-a");
    const keyB = fx.key("crash-b");
    const a = branch(fx.branchId(), [{ op: "set", key: keyA, value: "a" }]);
    const b = branch(fx.branchId(), [{ op: "incrby", key: keyB, by: 3 }]);
    assert.deepEqual(await crashed.prepare(a, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await crashed.prepare(b, prepareCtx()), { vote: "yes" });
    await crashed.close(); // no rollback, no commit: the coordinator died here

    // An id that shares the cluster id's characters but not its exact `<clusterId>:` prefix.
    const foreign = `${fx.clusterId}x:other:1`;
    await fx.direct.sadd(fx.internal("prepared"), foreign);

    const fresh = await fx.started();
    assert.deepEqual(await fresh.recover(), [a.branchId, b.branchId].sort());
    assert.deepEqual(await fresh.commit(a, phase2Ctx), { outcome: "done" });
    assert.deepEqual(await fresh.rollback(b, phase2Ctx), { outcome: "done" });
    assert.equal(await fx.direct.get(keyA), "a");
    assert.equal(await fx.direct.exists(keyB), 0);
    assert.deepEqual(await fresh.recover(), []);
    await fx.direct.srem(fx.internal("prepared"), foreign);
  });

  void test("commitOnePhase commits with its outcome record; isCommitted reads and settles it", async () => {
    const k = fx.key("one-phase");
    const b = branch(fx.branchId(), [{ op: "incrby", key: k, by: 4 }], [{ key: k, absent: true }]);
    // Asked before any commit arrived (its coordinator crashed before sending it): "no", and
    // the answer is settled, so the one-phase commit arriving late is refused.
    assert.equal(await p.isCommitted(b.branchId), false);
    const late = await p.commitOnePhase(b, prepareCtx());
    assert.equal(late.outcome === "aborted" && late.reason, "rolled-back");
    assert.equal(await fx.direct.exists(k), 0);

    const fresh = branch(
      fx.branchId(),
      [{ op: "incrby", key: k, by: 4 }],
      [{ key: k, absent: true }],
    );
    assert.deepEqual(await p.commitOnePhase(fresh, prepareCtx()), { outcome: "committed" });
    assert.equal(await fx.direct.get(k), "4");
    assert.equal(await p.isCommitted(fresh.branchId), true);
    assert.deepEqual(await p.commitOnePhase(fresh, prepareCtx()), { outcome: "committed" });
    assert.equal(await fx.direct.get(k), "4", "a repeat applies nothing");
    assert.equal((await outcomeRecord(fresh.branchId)).prepared, "0");

    const refused = branch(
      fx.branchId(),
      [{ op: "incrby", key: k, by: 1 }],
      [{ key: k, absent: true }],
    );
    const outcome = await p.commitOnePhase(refused, prepareCtx());
    assert.equal(outcome.outcome === "aborted" && outcome.reason, "precondition-failed");
    assert.equal(await fx.direct.get(k), "4");
    assert.equal(await p.isCommitted(refused.branchId), false);

    const staged = branch(fx.branchId(), [
      { op: "set", key: fx.key("one-phase-staged"), value: "x" },
    ]);
    assert.deepEqual(await p.prepare(staged, prepareCtx()), { vote: "yes" });
    const twoPhase = await p.commitOnePhase(staged, prepareCtx());
    assert.equal(twoPhase.outcome === "aborted" && twoPhase.reason, "already-prepared");
    assert.equal(await p.isCommitted(staged.branchId), false, "staged: not committed");
    assert.deepEqual(await p.commit(staged, phase2Ctx), { outcome: "done" }, "and not tombstoned");
    assert.equal(await p.isCommitted(staged.branchId), true);
  });

  void test("forget removes outcome records and tombstones", async () => {
    const committed = branch(fx.branchId(), [{ op: "set", key: fx.key("forget"), value: "x" }]);
    const tombstoned = branch(fx.branchId(), [{ op: "set", key: fx.key("forget"), value: "y" }]);
    assert.deepEqual(await p.prepare(committed, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await p.commit(committed, phase2Ctx), { outcome: "done" });
    assert.deepEqual(await p.rollback(tombstoned, phase2Ctx), { outcome: "done" });
    const records = [committed, tombstoned].map((b) => fx.internal(`outcome:${b.branchId}`));
    assert.equal(await fx.direct.exists(...records), 2);
    await p.forget([committed.branchId, tombstoned.branchId]);
    assert.equal(await fx.direct.exists(...records), 0);
    assert.equal(await fx.direct.get(fx.key("forget")), "x", "forget touches no user key");
  });

  void test("a second cluster id is refused in the same namespace", async () => {
    const intruder = fx.participant();
    await assert.rejects(intruder.start(`${fx.clusterId}-other`), (err: unknown) => {
      assert.ok(err instanceof ClusterMismatchError, String(err));
      assert.equal(err.registeredClusterId, fx.clusterId);
      return true;
    });
    assert.equal(await fx.direct.get(fx.internal("cluster")), fx.clusterId);
  });
});
