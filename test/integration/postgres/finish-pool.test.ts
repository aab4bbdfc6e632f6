/**
 * Proves that phase 2 never waits for a connection behind the prepares it would unblock: with
 * every branch connection taken by prepares queued on a row lock that a prepared transaction
 * holds, that transaction's COMMIT PREPARED still runs (on the role's finish pool), and the
 * queued prepares then go on. On one shared pool the commit waited for a connection until
 * `connectTimeoutMs` and failed, leaving the locks held.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { PostgresPayload } from "../../../participants/postgres/payload.js";
import { createFixture, deadlineIn, term, type Fixture } from "./helpers.js";

let fx: Fixture;
before(async () => {
  fx = await createFixture();
});
after(async () => {
  await fx.cleanup();
});

const add = (...ids: number[]): PostgresPayload => ({
  kind: "statements",
  statements: ids.map((id) => ({
    sql: `update ${fx.table} set balance = balance + 1 where id = $1`,
    params: [id],
    expectRows: 1,
  })),
});

test("COMMIT PREPARED runs while prepares blocked on its locks fill the branch pool", async () => {
  const poolSize = 2;
  // No lock_timeout: the queued prepares would wait until their deadline.
  const p = await fx.started({ poolSize, lockTimeoutMs: 0, connectTimeoutMs: 1_000 });
  // The holder locks rows 1 and 2; each queued branch waits on one of them.
  const holder = { branchId: fx.branchId(), payload: add(1, 2) };
  assert.deepEqual(await p.prepare(holder, deadlineIn(10_000)), { vote: "yes" });

  const queued = [1, 2].map((id) => ({ branchId: fx.branchId(), payload: add(id) }));
  const votes = queued.map((b) => p.prepare(b, deadlineIn(20_000)));
  // Every branch connection is now waiting on a row the prepared holder locked.
  await waitForLockWaiters(poolSize);

  assert.deepEqual(await p.commit(holder, term), { outcome: "done" });
  for (const vote of await Promise.all(votes)) assert.deepEqual(vote, { vote: "yes" });
  for (const b of queued) assert.deepEqual(await p.commit(b, term), { outcome: "done" });
  assert.deepEqual([await fx.balance(1), await fx.balance(2)], [102, 202]);
  assert.deepEqual(await fx.preparedGids(), []);
});

/** Until `count` sessions wait for a lock on the fixture's table. */
async function waitForLockWaiters(count: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await fx.direct.query<{ n: number }>(
      `select count(*)::int as n from pg_stat_activity
        where wait_event_type = 'Lock' and strpos(query, $1) > 0`,
      [fx.table],
    );
    if ((rows[0]?.n ?? 0) >= count) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`fewer than ${count} sessions waited on ${fx.table}`);
}
