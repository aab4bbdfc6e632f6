// Proves how the Redis participant votes at prepare, against the real Redis of deploy/local:
// a second branch touching a locked key (written or only checked) votes no at once; each kind
// of precondition that does not hold votes no naming the key; an operation that would fail at
// commit (wrong type, non-integer or overflowing INCRBY, also after the branch's own earlier
// operations) votes no; user keys inside Verdict's namespace and malformed payloads are
// refused; a no-vote writes nothing; a staged branch is invisible to readers until commit and a
// repeated prepare redoes nothing; the in-flight limit holds.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Vote } from "../../../participants/participant.js";
import type { RedisParticipant } from "../../../participants/redis/participant.js";
import type { RedisPayload } from "../../../participants/redis/payload.js";
import {
  branch,
  createFixture,
  phase2Ctx,
  prepareCtx,
  type Op,
  type Precondition,
} from "./helpers.js";

const fx = createFixture();
let p: RedisParticipant;

before(async () => {
  p = await fx.started();
});
after(() => fx.cleanup());

function assertNo(vote: Vote, reason: string, detailPattern?: RegExp): void {
  assert.equal(vote.vote, "no", `expected a no vote (${reason}), got ${JSON.stringify(vote)}`);
  if (vote.vote !== "no") return;
  assert.equal(vote.reason, reason, vote.detail);
  if (detailPattern) assert.match(vote.detail, detailPattern);
}

/** Prepares a fresh branch; on a yes vote rolls it back again, so tests stay independent. */
async function voteOn(ops: Op[], preconditions: Precondition[] = []): Promise<Vote> {
  const b = branch(fx.branchId(), ops, preconditions);
  const vote = await p.prepare(b, prepareCtx());
  if (vote.vote === "yes") await p.rollback(b, phase2Ctx);
  return vote;
}

/** Nothing of the branch was left: no lock on `keys`, no staged record, not in the index. */
async function assertNothingStaged(keys: string[]): Promise<void> {
  for (const k of keys) assert.equal(await fx.direct.exists(fx.internal(`lock:${k}`)), 0, k);
  assert.deepEqual(await fx.direct.keys(fx.internal("branch:*")), []);
  assert.deepEqual(await p.recover(), []);
}

void describe("Redis participant: votes", () => {
  void test("a second branch on a locked key votes no with lock-conflict, until the first ends", async () => {
    const k = fx.key("conflict");
    const first = branch(fx.branchId(), [{ op: "set", key: k, value: "first" }]);
    const second = branch(fx.branchId(), [{ op: "incrby", key: k, by: 1 }]);
    assert.deepEqual(await p.prepare(first, prepareCtx()), { vote: "yes" });
    assert.equal(await fx.direct.get(fx.internal(`lock:${k}`)), first.branchId);

    const started = Date.now();
    assertNo(await p.prepare(second, prepareCtx()), "lock-conflict", new RegExp(k));
    assert.ok(Date.now() - started < 1_000, "a conflict votes at once, without waiting");
    assert.equal(await fx.direct.get(fx.internal(`lock:${k}`)), first.branchId);

    assert.deepEqual(await p.rollback(first, phase2Ctx), { outcome: "done" });
    assert.deepEqual(await p.prepare(second, prepareCtx()), { vote: "yes" });
    await p.rollback(second, phase2Ctx);
  });

  void test("a key only checked by a precondition is locked too", async () => {
    const checked = fx.key("checked");
    const written = fx.key("written");
    await fx.direct.set(checked, "v");
    const first = branch(
      fx.branchId(),
      [{ op: "set", key: written, value: "x" }],
      [{ key: checked, equals: "v" }],
    );
    assert.deepEqual(await p.prepare(first, prepareCtx()), { vote: "yes" });
    assertNo(
      await voteOn([{ op: "del", key: checked }]),
      "lock-conflict",
      new RegExp(`${checked}.*${first.branchId}`),
    );
    await p.rollback(first, phase2Ctx);
  });

  void test("each precondition that does not hold votes no, naming the key and the check", async () => {
    const text = fx.key("pre-text");
    const hash = fx.key("pre-hash");
    const missing = fx.key("pre-missing");
    const target = fx.key("pre-target");
    await fx.direct.set(text, "actual");
    await fx.direct.hset(hash, "f", "v");
    const op: Op = { op: "set", key: target, value: "t" };

    assertNo(
      await voteOn([op], [{ key: text, equals: "expected" }]),
      "precondition-failed",
      new RegExp(`${text}.*equals.*value differs`),
    );
    assertNo(
      await voteOn([op], [{ key: hash, equals: "v" }]),
      "precondition-failed",
      /equals.*holds a hash/,
    );
    assertNo(
      await voteOn([op], [{ key: missing, equals: "x" }]),
      "precondition-failed",
      /equals.*does not exist/,
    );
    assertNo(
      await voteOn([op], [{ key: text, absent: true }]),
      "precondition-failed",
      new RegExp(`${text}.*absent.*the key exists`),
    );
    assertNo(
      await voteOn([op], [{ key: missing, exists: true }]),
      "precondition-failed",
      new RegExp(`${missing}.*exists.*does not exist`),
    );
    // The second of two preconditions fails: reported by its position.
    assertNo(
      await voteOn(
        [op],
        [
          { key: text, exists: true },
          { key: text, absent: true },
        ],
      ),
      "precondition-failed",
      /precondition 2 \(absent\)/,
    );
    assert.equal(await fx.direct.exists(target), 0, "a no-vote applies nothing");
    await assertNothingStaged([text, hash, missing, target]);

    assert.deepEqual(
      await voteOn(
        [op],
        [
          { key: text, equals: "actual" },
          { key: missing, absent: true },
          { key: hash, exists: true },
        ],
      ),
      { vote: "yes" },
    );
  });

  void test("an operation that would fail at commit votes no with operation-invalid", async () => {
    const text = fx.key("op-text");
    const big = fx.key("op-big");
    const hash = fx.key("op-hash");
    const set = fx.key("op-set");
    const list = fx.key("op-list");
    await fx.direct.set(text, "abc");
    await fx.direct.set(big, "9223372036854775800");
    await fx.direct.hset(hash, "f", "v");
    await fx.direct.sadd(set, "m");
    await fx.direct.rpush(list, "e");

    const cases: [string, Op[], RegExp][] = [
      ["INCRBY on text", [{ op: "incrby", key: text, by: 1 }], /not an integer/],
      ["INCRBY overflow", [{ op: "incrby", key: big, by: 100 }], /overflow/],
      ["INCRBY on a hash", [{ op: "incrby", key: hash, by: 1 }], /INCRBY on a key holding a hash/],
      ["HSET on a string", [{ op: "hset", key: text, field: "f", value: "v" }], /HSET.*string/],
      ["HDEL on a set", [{ op: "hdel", key: set, field: "f" }], /HDEL.*set/],
      ["SADD on a list", [{ op: "sadd", key: list, values: ["x"] }], /SADD.*list/],
      ["SREM on a hash", [{ op: "srem", key: hash, values: ["x"] }], /SREM.*hash/],
      ["LPUSH on a set", [{ op: "lpush", key: set, values: ["x"] }], /LPUSH.*set/],
      ["RPUSH on a string", [{ op: "rpush", key: text, values: ["x"] }], /RPUSH.*string/],
    ];
    for (const [name, ops, pattern] of cases) {
      const vote = await voteOn(ops);
      assertNo(vote, "operation-invalid", pattern);
      assert.match(vote.vote === "no" ? vote.detail : "", new RegExp(ops[0]!.key), name);
    }
    assert.equal(await fx.direct.get(big), "9223372036854775800", "the check changed nothing");
    assert.equal(await fx.direct.get(text), "abc");
    assert.equal(await fx.direct.exists(fx.internal("scratch")), 0, "no scratch key left");
    await assertNothingStaged([text, big, hash, set, list]);
  });

  void test("the check follows the branch's own earlier operations on the same key", async () => {
    const k = fx.key("chain");
    const hash = fx.key("chain-hash");
    await fx.direct.hset(hash, "f", "v");
    const maxMinusOne = "9223372036854775806";

    assertNo(
      await voteOn([
        { op: "set", key: k, value: "abc" },
        { op: "incrby", key: k, by: 1 },
      ]),
      "operation-invalid",
      /operation 2: INCRBY .*not an integer/,
    );
    assertNo(
      await voteOn([
        { op: "set", key: k, value: maxMinusOne },
        { op: "incrby", key: k, by: 1 },
        { op: "incrby", key: k, by: 1 },
      ]),
      "operation-invalid",
      /operation 3: INCRBY 1: .*overflow/,
    );
    assertNo(
      await voteOn([
        { op: "sadd", key: k, values: ["a"] },
        { op: "hset", key: k, field: "f", value: "v" },
      ]),
      "operation-invalid",
      /operation 2: HSET on a key holding a set/,
    );
    // Earlier operations can also make a later one valid.
    assert.deepEqual(
      await voteOn([
        { op: "del", key: hash },
        { op: "incrby", key: hash, by: 5 },
        { op: "set", key: k, value: maxMinusOne },
        { op: "incrby", key: k, by: 1 },
      ]),
      { vote: "yes" },
    );
    assert.equal(await fx.direct.type(hash), "hash", "nothing applied at prepare");
  });

  void test("user keys inside Verdict's namespace are refused with reserved-key", async () => {
    const reserved = fx.internal("lock:anything");
    assertNo(
      await voteOn([{ op: "set", key: reserved, value: "x" }]),
      "reserved-key",
      /inside Verdict's namespace/,
    );
    assertNo(
      await voteOn(
        [{ op: "set", key: fx.key("ok"), value: "x" }],
        [{ key: fx.internal("cluster"), exists: true }],
      ),
      "reserved-key",
    );
    assert.equal(await fx.direct.exists(reserved), 0);
  });

  void test("a malformed payload votes no with payload-invalid", async () => {
    const bad = [
      { kind: "ops", ops: [], preconditions: [] },
      { kind: "ops", ops: [{ op: "set", key: fx.key("s"), value: "\ud800" }], preconditions: [] },
      { kind: "ops", ops: [{ op: "incrby", key: fx.key("i"), by: 1.5 }], preconditions: [] },
      { kind: "ops", ops: [{ op: "expire", key: fx.key("e") }], preconditions: [] },
    ];
    for (const payload of bad) {
      const vote = await p.prepare(
        { branchId: fx.branchId(), payload: payload as RedisPayload },
        prepareCtx(),
      );
      assertNo(vote, "payload-invalid");
    }
  });

  void test("a staged branch is invisible until commit, and a repeated prepare redoes nothing", async () => {
    const k = fx.key("staged");
    await fx.direct.set(k, "10");
    const b = branch(fx.branchId(), [{ op: "incrby", key: k, by: 5 }]);
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    const record = await fx.direct.hgetall(fx.internal(`branch:${b.branchId}`));
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await fx.direct.hgetall(fx.internal(`branch:${b.branchId}`)), record);
    assert.equal(await fx.direct.get(k), "10", "staged, not applied");
    for (const key of [
      fx.internal(`lock:${k}`),
      fx.internal(`branch:${b.branchId}`),
      fx.internal("prepared"),
    ]) {
      assert.equal(await fx.direct.pttl(key), -1, `${key} has no TTL`);
    }
    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "done" });
    assert.equal(await fx.direct.get(k), "15", "applied once");
  });

  void test("over inFlightMax staged branches, prepare votes no with in-flight-limit", async () => {
    const limited = await fx.started({ inFlightMax: 2 });
    const branches = [1, 2, 3].map((i) =>
      branch(fx.branchId(), [{ op: "set", key: fx.key(`limit-${i}`), value: "x" }]),
    );
    assert.deepEqual(await limited.prepare(branches[0]!, prepareCtx()), { vote: "yes" });
    assert.deepEqual(await limited.prepare(branches[1]!, prepareCtx()), { vote: "yes" });
    assertNo(await limited.prepare(branches[2]!, prepareCtx()), "in-flight-limit");
    await limited.rollback(branches[0]!, phase2Ctx);
    assert.deepEqual(await limited.prepare(branches[2]!, prepareCtx()), { vote: "yes" });
    await limited.rollback(branches[1]!, phase2Ctx);
    await limited.rollback(branches[2]!, phase2Ctx);
  });

  void test("a prepare whose deadline has passed votes no with deadline", async () => {
    const b = branch(fx.branchId(), [{ op: "set", key: fx.key("late"), value: "x" }]);
    assertNo(await p.prepare(b, { deadlineMs: Date.now() - 1 }), "deadline");
    assert.deepEqual(await p.recover(), []);
  });
});
