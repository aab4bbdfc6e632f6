/**
 * Proves that a branch waiting on a row lock votes no after the participant's `lockTimeoutMs`,
 * long before its deadline — the way a lock cycle across two databases ends when prepares run
 * in parallel (neither database can see that cycle) — and that with `lockTimeoutMs: 0` the
 * branch waits until the lock is released, then votes yes. The marker's own shorter
 * lock_timeout (`markerLockTimeoutMs`) ends with the marker: the branch's statements wait up
 * to the branch's.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import type { PostgresPayload } from "../../../participants/postgres/payload.js";
import { createFixture, deadlineIn, term, type Fixture } from "./helpers.js";

void describe("postgres participant: lock_timeout of a branch", () => {
  let fx: Fixture;
  let holder: pg.PoolClient;
  const add = (id: number): PostgresPayload => ({
    kind: "statements",
    statements: [
      {
        sql: `update ${fx.table} set balance = balance + 1 where id = $1`,
        params: [id],
        expectRows: 1,
      },
    ],
  });

  before(async () => {
    fx = await createFixture();
    holder = await fx.direct.connect();
  });
  after(async () => {
    await holder.query("rollback").catch(() => undefined);
    holder.release();
    await fx.cleanup();
  });

  /** Another session holds row `id`'s lock until `release` is called. */
  async function lockRow(id: number): Promise<() => Promise<void>> {
    await holder.query("begin");
    await holder.query(`select 1 from ${fx.table} where id = $1 for update`, [id]);
    return async () => void (await holder.query("rollback"));
  }

  void test("a lock wait longer than lockTimeoutMs votes no at once, not at the deadline", async () => {
    const p = await fx.started({ lockTimeoutMs: 200 });
    const release = await lockRow(1);
    try {
      const started = Date.now();
      const vote = await p.prepare(
        { branchId: fx.branchId(), payload: add(1) },
        deadlineIn(10_000),
      );
      const tookMs = Date.now() - started;
      assert.equal(vote.vote, "no");
      assert.match(vote.vote === "no" ? vote.detail : "", /55P03|lock timeout/);
      assert.ok(tookMs < 3000, `the no vote took ${tookMs} ms (deadline 10 s)`);
    } finally {
      await release();
    }
    assert.deepEqual(await fx.preparedGids(), []);
  });

  void test("the statements wait up to lockTimeoutMs, not the marker's shorter lock_timeout", async () => {
    const p = await fx.started({ lockTimeoutMs: 5_000, markerLockTimeoutMs: 100 });
    const release = await lockRow(1);
    const branchId = fx.branchId();
    const vote = p.prepare({ branchId, payload: add(1) }, deadlineIn(10_000));
    await new Promise((resolve) => setTimeout(resolve, 700));
    await release();
    assert.deepEqual(await vote, { vote: "yes" });
    assert.deepEqual(await p.commit({ branchId, payload: add(1) }, term), { outcome: "done" });
    assert.equal(await fx.balance(1), 101); // the first test's branch voted no: 100 before
  });

  void test("lockTimeoutMs 0: the branch waits for the lock, then prepares", async () => {
    const p = await fx.started({ lockTimeoutMs: 0 });
    const release = await lockRow(2);
    const branchId = fx.branchId();
    const vote = p.prepare({ branchId, payload: add(2) }, deadlineIn(10_000));
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await release();
    assert.deepEqual(await vote, { vote: "yes" });
    assert.deepEqual(await p.commit({ branchId, payload: add(2) }, term), { outcome: "done" });
    assert.equal(await fx.balance(2), 201);
  });
});
