/**
 * Proves the PostgreSQL participant's two-phase protocol against the real server: a
 * prepared branch is invisible until COMMIT PREPARED and absent after ROLLBACK PREPARED;
 * prepare, commit and rollback are idempotent; a rolled-back branch cannot be prepared
 * again (durable tombstone); a branch finished by someone else is reported as heuristic;
 * a rollback stops a prepare in flight; one-phase commit settles by its marker, and the
 * check fences the marker key so a late one-phase COMMIT cannot land after it; two
 * branches on one row serialise on its lock; a prepare or a one-phase commit costs three
 * round trips to the server whatever its number of statements; and nothing prepared is left
 * behind.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { PostgresParticipant } from "../../../participants/postgres/participant.js";
import type { PostgresPayload } from "../../../participants/postgres/payload.js";
import { createFixture, deadlineIn, startProxy, term, type Fixture } from "./helpers.js";

void describe("postgres participant: two-phase commit", () => {
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

  before(async () => {
    fx = await createFixture();
    p = await fx.started();
  });
  after(async () => fx.cleanup());

  void test("prepare hides the change until commit; a repeated commit is already-done", async () => {
    const branchId = fx.branchId();
    const vote = await p.prepare({ branchId, payload: add(1, 10) }, deadlineIn(5000));
    assert.deepEqual(vote, { vote: "yes" });
    assert.equal(await fx.balance(1), 100, "prepared change is invisible to another connection");
    assert.deepEqual(await fx.preparedGids(), [branchId]);
    assert.deepEqual(await p.commit({ branchId, payload: add(1, 10) }, term), { outcome: "done" });
    assert.equal(await fx.balance(1), 110);
    assert.deepEqual(await fx.preparedGids(), []);
    assert.deepEqual(await p.commit({ branchId, payload: add(1, 10) }, term), {
      outcome: "already-done",
    });
  });

  void test("prepare then rollback leaves nothing; a repeated rollback is already-done", async () => {
    const branchId = fx.branchId();
    const payload: PostgresPayload = {
      kind: "statements",
      statements: [{ sql: `insert into ${fx.table} values ($1, $2)`, params: [50, 5] }],
    };
    assert.deepEqual(await p.prepare({ branchId, payload }, deadlineIn(5000)), { vote: "yes" });
    assert.deepEqual(await p.rollback({ branchId, payload }, term), { outcome: "done" });
    assert.equal(await fx.balance(50), undefined);
    assert.deepEqual(await fx.preparedGids(), []);
    assert.deepEqual(await p.rollback({ branchId, payload }, term), { outcome: "already-done" });
  });

  void test("a repeated prepare votes yes without redoing the work", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(2))!;
    assert.deepEqual(await p.prepare({ branchId, payload: add(2, 7) }, deadlineIn(5000)), {
      vote: "yes",
    });
    assert.deepEqual(await p.prepare({ branchId, payload: add(2, 7) }, deadlineIn(5000)), {
      vote: "yes",
    });
    // Concurrent repeats in one process are serialised, then also find the branch prepared.
    const again = await Promise.all(
      [1, 2, 3].map(() => p.prepare({ branchId, payload: add(2, 7) }, deadlineIn(5000))),
    );
    assert.deepEqual(again, [{ vote: "yes" }, { vote: "yes" }, { vote: "yes" }]);
    assert.deepEqual(await fx.preparedGids(), [branchId]);
    // Each repeat's statements went out with its state read and wait on the prepared row:
    // the repeat ends that session, so none is left waiting on the lock.
    let waiting: number | undefined;
    for (let poll = 0; poll < 20 && waiting !== 0; poll++) {
      if (poll > 0) await new Promise((r) => setTimeout(r, 50)); // a signalled backend exits soon after
      const { rows } = await fx.direct.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where wait_event_type = 'Lock' and starts_with(application_name, $1)`,
        [`verdict-stmt:pg-test-${fx.run}`],
      );
      waiting = rows[0]?.n;
    }
    assert.equal(waiting, 0, "no abandoned session waits on the branch's lock");
    assert.deepEqual(await p.commit({ branchId, payload: add(2, 7) }, term), { outcome: "done" });
    assert.equal(await fx.balance(2), before + 7, "the update ran exactly once");
  });

  void test("prepare after rollback votes no (durable tombstone, also from a fresh participant)", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(1))!;
    // Rollback before any prepare (abort of an undecided transaction), then a late prepare.
    assert.deepEqual(await p.rollback({ branchId, payload: add(1, 1) }, term), {
      outcome: "already-done",
    });
    const vote = await p.prepare({ branchId, payload: add(1, 1) }, deadlineIn(5000));
    assert.equal(vote.vote, "no");
    assert.equal(vote.vote === "no" && vote.reason, "rolled-back");
    const restarted = await fx.started();
    const again = await restarted.prepare({ branchId, payload: add(1, 1) }, deadlineIn(5000));
    assert.equal(again.vote === "no" && again.reason, "rolled-back");
    assert.equal(await fx.balance(1), before);
    assert.deepEqual(await fx.preparedGids(), []);
  });

  void test("a DBA's ROLLBACK PREPARED makes commit report heuristic-rollback", async () => {
    const branchId = fx.branchId();
    assert.deepEqual(await p.prepare({ branchId, payload: add(1, 3) }, deadlineIn(5000)), {
      vote: "yes",
    });
    await fx.direct.query(`rollback prepared '${branchId}'`);
    const outcome = await p.commit({ branchId, payload: add(1, 3) }, term);
    assert.equal(outcome.outcome, "heuristic-rollback");
    assert.match(
      outcome.outcome === "heuristic-rollback" ? outcome.detail : "",
      /no commit marker/,
    );
  });

  void test("a DBA's COMMIT PREPARED makes rollback report heuristic-commit", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(2))!;
    assert.deepEqual(await p.prepare({ branchId, payload: add(2, 4) }, deadlineIn(5000)), {
      vote: "yes",
    });
    await fx.direct.query(`commit prepared '${branchId}'`);
    const outcome = await p.rollback({ branchId, payload: add(2, 4) }, term);
    assert.equal(outcome.outcome, "heuristic-commit");
    assert.equal(await fx.balance(2), before + 4);
  });

  void test("a rollback stops a prepare in flight and the prepare votes no", async () => {
    const branchId = fx.branchId();
    const payload: PostgresPayload = {
      kind: "statements",
      statements: [
        { sql: `update ${fx.table} set balance = balance + 1 where id = 1` },
        { sql: "select pg_sleep(10)" },
      ],
    };
    const started = Date.now();
    const prepare = p.prepare({ branchId, payload }, deadlineIn(20_000));
    await new Promise((r) => setTimeout(r, 300));
    const outcome = await p.rollback({ branchId, payload }, term);
    const vote = await prepare;
    assert.equal(outcome.outcome, "already-done");
    assert.equal(vote.vote === "no" && vote.reason, "rolled-back");
    assert.ok(Date.now() - started < 5000, "rollback did not wait for the sleeping statement");
    assert.deepEqual(await fx.preparedGids(), []);
    // The pool still works after its session was terminated.
    const next = fx.branchId();
    assert.deepEqual(await p.prepare({ branchId: next, payload: add(1, 0) }, deadlineIn(5000)), {
      vote: "yes",
    });
    assert.deepEqual(await p.rollback({ branchId: next, payload: add(1, 0) }, term), {
      outcome: "done",
    });
  });

  void test("one-phase commit commits with its marker; isCommitted reads the marker", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(1))!;
    assert.deepEqual(await p.commitOnePhase({ branchId, payload: add(1, 20) }, deadlineIn(5000)), {
      outcome: "committed",
    });
    assert.equal(await fx.balance(1), before + 20);
    assert.equal(await p.isCommitted(branchId), true);
    // A repeated one-phase commit does not apply the work twice.
    assert.deepEqual(await p.commitOnePhase({ branchId, payload: add(1, 20) }, deadlineIn(5000)), {
      outcome: "committed",
    });
    assert.equal(await fx.balance(1), before + 20);

    const failed = fx.branchId();
    const outcome = await p.commitOnePhase(
      { branchId: failed, payload: add(999, 1) },
      deadlineIn(5000),
    );
    assert.equal(outcome.outcome === "aborted" && outcome.reason, "expectation-unmet");
    assert.equal(await p.isCommitted(failed), false);
    assert.deepEqual(await fx.preparedGids(), []);
  });

  void test("isCommitted fences the marker key: a one-phase COMMIT on its way after the check never lands", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(2))!;
    const late = await fx.direct.connect();
    try {
      // A one-phase branch whose COMMIT is still on its way (a paused or cut-off coordinator).
      await late.query("begin");
      await late.query(`update ${fx.table} set balance = balance + 5 where id = 2`);
      assert.equal(await p.isCommitted(branchId), false);
      await late.query(`select "${fx.schema}".mark($1)`, [branchId]).catch(() => undefined);
      const { command } = await late.query("commit");
      assert.equal(command, "ROLLBACK", "the late branch committed after the check said no");
    } finally {
      late.release();
    }
    assert.equal(await fx.balance(2), before);
    assert.equal(await p.isCommitted(branchId), false);
  });

  void test("isCommitted waits out a marker insert in flight and then answers committed", async () => {
    const branchId = fx.branchId();
    const inFlight = await fx.direct.connect();
    try {
      await inFlight.query("begin");
      await inFlight.query(`update ${fx.table} set balance = balance + 1 where id = 2`);
      const marked = await inFlight.query<{ xid: string }>(
        `select "${fx.schema}".mark($1)::text as xid`,
        [branchId],
      );
      await fx.direct.query(
        `insert into "${fx.schema}".branch_xact (gid, xid) values ($1, xid($2::xid8))`,
        [branchId, marked.rows[0]!.xid],
      );
      const answer = p.isCommitted(branchId);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await inFlight.query("commit");
      assert.equal(await answer, true);
    } finally {
      inFlight.release();
    }
  });

  void test("two branches on one row: the second waits for the first, or votes no at its deadline", async () => {
    const first = fx.branchId();
    const second = fx.branchId();
    const third = fx.branchId();
    const before = (await fx.balance(2))!;
    assert.deepEqual(await p.prepare({ branchId: first, payload: add(2, 1) }, deadlineIn(5000)), {
      vote: "yes",
    });

    const started = Date.now();
    const timedOut = await p.prepare({ branchId: second, payload: add(2, 1) }, deadlineIn(400));
    assert.equal(timedOut.vote === "no" && timedOut.reason, "deadline");
    assert.ok(Date.now() - started < 2000, `deadline vote took ${Date.now() - started} ms`);

    const waiting = p.prepare({ branchId: third, payload: add(2, 1) }, deadlineIn(10_000));
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(await p.commit({ branchId: first, payload: add(2, 1) }, term), {
      outcome: "done",
    });
    assert.deepEqual(await waiting, { vote: "yes" });
    assert.deepEqual(await p.commit({ branchId: third, payload: add(2, 1) }, term), {
      outcome: "done",
    });
    assert.equal(await fx.balance(2), before + 2);
  });

  void test("forget collects markers and tombstones", async () => {
    const committed = fx.branchId();
    const rolledBack = fx.branchId();
    await p.commitOnePhase({ branchId: committed, payload: add(1, 0) }, deadlineIn(5000));
    await p.rollback({ branchId: rolledBack, payload: add(1, 0) }, term);
    const count = async () =>
      (
        await fx.direct.query<{ n: number }>(
          `select (select count(*) from ${fx.schema}.marker where gid = any($1))::int
                + (select count(*) from ${fx.schema}.tombstone where gid = any($1))::int as n`,
          [[committed, rolledBack]],
        )
      ).rows[0]!.n;
    assert.equal(await count(), 2);
    await p.forget([committed, rolledBack]);
    assert.equal(await count(), 0);
  });

  void test("a prepare or a one-phase commit is three round trips, with any number of statements", async () => {
    // Every answer of the server is held delayMs: the elapsed time counts the round trips
    // (the flight of BEGIN, statements and marker, then the claim on Verdict's connection,
    // then PREPARE with DISCARD ALL behind it).
    const delayMs = 150;
    const proxy = await startProxy(Number(new URL(fx.url).port), delayMs);
    const url = new URL(fx.url);
    url.port = String(proxy.port);
    const slow = await fx.started({ connectionString: url.toString(), phase2TimeoutMs: 10_000 });
    const three: PostgresPayload = {
      kind: "statements",
      statements: [1, 2, 3].map((n) => ({
        sql: `update ${fx.table} set balance = balance + $1 where id = 1`,
        params: [n],
        expectRows: 1,
      })),
    };
    const before = (await fx.balance(1))!;
    try {
      for (const end of ["prepare", "commit"] as const) {
        // Warm: the pools hold a connection of each role, so no connect is counted.
        const warm = fx.branchId();
        await slow.prepare({ branchId: warm, payload: add(2, 0) }, deadlineIn(10_000));
        await slow.rollback({ branchId: warm, payload: add(2, 0) }, term);
        const branchId = fx.branchId();
        const started = Date.now();
        if (end === "prepare") {
          const vote = await slow.prepare({ branchId, payload: three }, deadlineIn(10_000));
          assert.deepEqual(vote, { vote: "yes" });
        } else {
          const outcome = await slow.commitOnePhase(
            { branchId, payload: three },
            deadlineIn(10_000),
          );
          assert.deepEqual(outcome, { outcome: "committed" });
        }
        const roundTrips = (Date.now() - started) / delayMs;
        assert.ok(roundTrips < 4, `${end}: ${roundTrips.toFixed(1)} round trips`);
        if (end === "prepare") {
          assert.deepEqual(await fx.preparedGids(), [branchId]);
          assert.deepEqual(await slow.commit({ branchId, payload: three }, term), {
            outcome: "done",
          });
        }
      }
      assert.equal(await fx.balance(1), before + 12, "both branches' statements ran once");
    } finally {
      await slow.close();
      await proxy.cut();
    }
  });

  void test("no prepared transactions are left behind", async () => {
    assert.deepEqual(await fx.preparedGids(), []);
  });
});
