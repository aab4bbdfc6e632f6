/**
 * Proves the Redis participant's own view of a branch against the real Redis: a prepared
 * branch shows its staged operations and the locks it holds on its keys (only its own); a
 * committed branch its outcome record and no locks; a rolled-back one its tombstone; an
 * unknown one nothing.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { BranchId } from "../../../participants/participant.js";
import type { RedisParticipant } from "../../../participants/redis/participant.js";
import { branch, createFixture, phase2Ctx, prepareCtx } from "./helpers.js";

const fx = createFixture();
let p: RedisParticipant;

before(async () => {
  p = await fx.started();
});
after(() => fx.cleanup());

const inspect = async (id: BranchId) => {
  const view = await p.inspect(id);
  assert.equal(view.kind, "redis");
  return view;
};

void describe("Redis participant: inspect", () => {
  void test("prepared: staged ops and own locks; committed: outcome, no locks", async () => {
    const ops = [
      { op: "set" as const, key: fx.key("a"), value: "<b>v</b>" },
      { op: "incrby" as const, key: fx.key("n"), by: 3 },
    ];
    const b = branch(fx.branchId(), ops, [{ key: fx.key("a"), absent: true }]);
    const before = Date.now();
    assert.deepEqual(await p.prepare(b, prepareCtx()), { vote: "yes" });
    const view = await inspect(b.branchId);
    assert.equal(view.holds, "prepared");
    assert.ok(view.staged);
    assert.equal(view.staged.ops, 2);
    assert.equal(view.staged.preconditions, 1);
    assert.ok(Math.abs(view.staged.preparedAtMs - before) < 5000);
    assert.deepEqual(view.staged.firstOps, [
      { op: "set", key: fx.key("a"), detail: "<b>v</b>" },
      { op: "incrby", key: fx.key("n"), detail: "3" },
    ]);
    assert.deepEqual([...view.locksHeld].sort(), [fx.key("a"), fx.key("n")].sort());
    assert.equal(view.outcome, null);

    assert.deepEqual(await p.commit(b, phase2Ctx), { outcome: "done" });
    const done = await inspect(b.branchId);
    assert.equal(done.holds, "committed");
    assert.equal(done.staged, null);
    assert.deepEqual(done.locksHeld, []);
    assert.equal(done.outcome?.outcome, "committed");
    assert.equal(done.outcome?.term, phase2Ctx.term);
    assert.equal(done.outcome?.prepared, true);
  });

  void test("rolled back: the tombstone; unknown: absent", async () => {
    const b = branch(fx.branchId(), [{ op: "del", key: fx.key("gone") }]);
    assert.deepEqual(await p.rollback(b, phase2Ctx), { outcome: "done" });
    const view = await inspect(b.branchId);
    assert.equal(view.holds, "rolled-back");
    assert.equal(view.outcome?.outcome, "rolled-back");
    assert.equal(view.outcome?.prepared, false);
    assert.equal((await inspect(fx.branchId())).holds, "absent");
  });
});
