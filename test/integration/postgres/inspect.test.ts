/**
 * Proves the PostgreSQL participant's own view of a branch against the real server: a
 * prepared branch shows its pg_prepared_xacts row (owner, database, prepared at), the locks it
 * holds and the backend it blocks (with that backend's query); a committed branch shows its
 * verified marker and no locks; a rolled-back one its tombstone; an unknown one nothing.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import type { PostgresParticipant } from "../../../participants/postgres/participant.js";
import type { PostgresPayload } from "../../../participants/postgres/payload.js";
import { createFixture, deadlineIn, term, type Fixture } from "./helpers.js";

void describe("postgres participant: inspect", () => {
  let fx: Fixture;
  let p: PostgresParticipant;
  const add = (id: number, amount: number): PostgresPayload => ({
    kind: "statements",
    statements: [
      {
        sql: `update ${fx.table} set balance = balance + $1 where id = $2`,
        params: [amount, id],
        expectRows: 1,
      },
    ],
  });
  const inspect = async (id: Parameters<PostgresParticipant["inspect"]>[0]) => {
    const view = await p.inspect(id);
    assert.equal(view.kind, "postgres");
    return view;
  };

  before(async () => {
    fx = await createFixture();
    p = await fx.started();
  });
  after(async () => fx.cleanup());

  void test("a prepared branch: its row, its locks, and the backend waiting on them", async () => {
    const branchId = fx.branchId();
    const before = Date.now();
    assert.deepEqual(await p.prepare({ branchId, payload: add(1, 5) }, deadlineIn(5000)), {
      vote: "yes",
    });
    const blocker = new pg.Client({ connectionString: fx.url });
    await blocker.connect();
    const waiting = blocker
      .query(`update ${fx.table} set balance = balance + 1 where id = 1 /* blocked-probe */`)
      .catch(() => undefined);
    try {
      let view = await inspect(branchId);
      for (let i = 0; i < 50 && view.locks.blocked.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        view = await inspect(branchId);
      }
      assert.equal(view.holds, "prepared");
      assert.ok(view.prepared, "the pg_prepared_xacts row");
      assert.equal(view.prepared.database, new URL(fx.url).pathname.slice(1));
      assert.ok(view.prepared.owner.length > 0);
      assert.ok(Math.abs(view.prepared.preparedAtMs - before) < 5000);
      assert.ok(view.locks.held > 0, "a prepared update holds locks");
      assert.ok(view.locks.relations.includes(fx.table), `locks ${view.locks.relations.join()}`);
      assert.equal(view.locks.blocked.length, 1, "the other update waits on the row lock");
      assert.match(view.locks.blocked[0]!.query, /blocked-probe/);
      assert.equal(
        view.locks.blocked[0]!.pid,
        (blocker as unknown as { processID: number }).processID,
      );
      assert.equal(view.marker.present, false);
      assert.equal(view.tombstone.present, false);
    } finally {
      assert.deepEqual(await p.commit({ branchId, payload: add(1, 5) }, term), { outcome: "done" });
      await waiting;
      await blocker.end();
    }
    const done = await inspect(branchId);
    assert.equal(done.holds, "committed");
    assert.equal(done.prepared, null);
    assert.equal(done.locks.held, 0);
    assert.equal(done.marker.present, true);
    assert.ok(done.marker.atMs !== undefined);
  });

  void test("a rolled-back branch shows its tombstone; an unknown one is absent", async () => {
    const branchId = fx.branchId();
    await p.prepare({ branchId, payload: add(2, 1) }, deadlineIn(5000));
    assert.deepEqual(await p.rollback({ branchId, payload: add(2, 1) }, term), { outcome: "done" });
    const view = await inspect(branchId);
    assert.equal(view.holds, "rolled-back");
    assert.equal(view.tombstone.present, true);
    assert.equal(view.marker.present, false);
    const unknown = await inspect(fx.branchId());
    assert.equal(unknown.holds, "absent");
    assert.deepEqual(unknown.locks, { held: 0, heldForMs: 0, relations: [], blocked: [] });
  });
});
