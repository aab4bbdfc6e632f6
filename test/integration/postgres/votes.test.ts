/**
 * Proves every no-vote of a coordinator-executed PostgreSQL branch against the real
 * server, each leaving nothing committed and nothing prepared: a failing statement (with
 * its SQLSTATE), an unmet row expectation, a refused transaction-control statement, a
 * multi-statement string (rejected by the extended protocol), the deadline. Also that a
 * pooled session is reset between branches, and that a vanished server yields a no-vote
 * from prepare and a retryable error from commit, never a heuristic outcome.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Vote } from "../../../participants/participant.js";
import { ParticipantUnavailableError } from "../../../participants/postgres/errors.js";
import type { PostgresParticipant } from "../../../participants/postgres/participant.js";
import type { PostgresPayload, PostgresStatement } from "../../../participants/postgres/payload.js";
import { services } from "../../support/services.js";
import { createFixture, deadlineIn, startProxy, term, type Fixture } from "./helpers.js";

const noReason = (vote: Vote): string => (vote.vote === "no" ? vote.reason : "yes");
const noDetail = (vote: Vote): string => (vote.vote === "no" ? vote.detail : "");

void describe("postgres participant: no-votes", () => {
  let fx: Fixture;
  let p: PostgresParticipant;
  const statements = (...list: PostgresStatement[]): PostgresPayload => ({
    kind: "statements",
    statements: list,
  });
  const insert = (id: number): PostgresStatement => ({
    sql: `insert into ${fx.table} values ($1, 1)`,
    params: [id],
  });

  /** Prepares, asserts a no-vote with `reason`, and that nothing was committed or left prepared. */
  const expectNo = async (
    payload: PostgresPayload,
    reason: string,
    deadlineMs = 5000,
  ): Promise<Vote> => {
    const vote = await p.prepare({ branchId: fx.branchId(), payload }, deadlineIn(deadlineMs));
    assert.equal(noReason(vote), reason, noDetail(vote));
    assert.deepEqual(await fx.preparedGids(), []);
    return vote;
  };

  before(async () => {
    fx = await createFixture();
    p = await fx.started({ poolSize: 1 }); // one session: every branch reuses it
  });
  after(async () => fx.cleanup());

  void test("a failing statement votes statement-failed with its SQLSTATE", async () => {
    const vote = await expectNo(
      statements(insert(60), { sql: "select 1 / $1::int", params: [0] }),
      "statement-failed",
    );
    assert.match(noDetail(vote), /SQLSTATE 22012 in statement 2/);
    assert.equal(await fx.balance(60), undefined);
  });

  void test("an unmet row expectation votes expectation-unmet", async () => {
    const vote = await expectNo(
      statements(insert(61), {
        sql: `update ${fx.table} set balance = 0 where id = $1`,
        params: [999],
        expectRows: 1,
      }),
      "expectation-unmet",
    );
    assert.match(noDetail(vote), /reported 0 rows, expected 1/);
    assert.equal(await fx.balance(61), undefined);
  });

  void test("transaction-control and session statements are refused before anything runs", async () => {
    for (const sql of [
      "COMMIT",
      "  /* a /* nested */ comment */ -- and a line\n commit",
      "rollback",
      "end",
      "prepare transaction 'x'",
      "savepoint s",
      "set search_path = nowhere",
      "set session statement_timeout = 0",
      "reset all",
      "discard all",
      "listen x",
      "copy accounts from stdin",
    ]) {
      const vote = await expectNo(statements(insert(62), { sql }), "statement-refused");
      assert.match(noDetail(vote), /statement 2/, sql);
    }
    assert.equal(await fx.balance(62), undefined);
  });

  void test("SET LOCAL is allowed: it ends with the transaction", async () => {
    const branchId = fx.branchId();
    const payload = statements({ sql: "set local lock_timeout = '1s'" }, insert(63));
    assert.deepEqual(await p.prepare({ branchId, payload }, deadlineIn(5000)), { vote: "yes" });
    assert.deepEqual(await p.rollback({ branchId, payload }, term), { outcome: "done" });
  });

  void test("a multi-statement string is rejected by the server (extended protocol)", async () => {
    for (const sql of [
      `insert into ${fx.table} values (64, 1); commit`,
      `select 1; insert into ${fx.table} values (64, 1)`,
    ]) {
      const vote = await expectNo(statements({ sql }), "statement-failed");
      assert.match(noDetail(vote), /SQLSTATE 42601/);
    }
    assert.equal(await fx.balance(64), undefined);
  });

  void test("a statement past the prepare deadline votes deadline", async () => {
    const started = Date.now();
    const vote = await expectNo(
      statements(insert(65), { sql: "select pg_sleep(5)" }),
      "deadline",
      300,
    );
    const elapsedMs = Date.now() - started;
    assert.ok(elapsedMs < 1500, `deadline vote took ${elapsedMs} ms`);
    assert.match(noDetail(vote), /statement 2/);
    assert.equal(await fx.balance(65), undefined);
    const late = await p.prepare(
      { branchId: fx.branchId(), payload: statements(insert(65)) },
      deadlineIn(-1),
    );
    assert.equal(noReason(late), "deadline");
  });

  void test("a temporary table cannot be prepared: PREPARE fails and votes no", async () => {
    await expectNo(
      statements({ sql: `create temp table tmp_${fx.run} (x int)` }),
      "statement-failed",
    );
  });

  void test("the pooled session is reset between branches", async () => {
    // Session-level changes made through functions (not refusable by keyword), in a
    // branch that prepares (so they are not undone by a rollback of its transaction)…
    const dirtyId = fx.branchId();
    const dirty = statements(
      { sql: "select set_config('search_path', 'nowhere', false)" },
      { sql: "select pg_advisory_lock(42)" },
    );
    assert.deepEqual(await p.prepare({ branchId: dirtyId, payload: dirty }, deadlineIn(5000)), {
      vote: "yes",
    });
    assert.deepEqual(await p.rollback({ branchId: dirtyId, payload: dirty }, term), {
      outcome: "done",
    });
    // …are gone for the next branch on the same (single) session.
    const branchId = fx.branchId();
    const check = statements(
      { sql: "select 1 where current_setting('search_path') <> 'nowhere'", expectRows: 1 },
      {
        sql: "select 1 from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()",
        expectRows: 0,
      },
    );
    assert.deepEqual(await p.prepare({ branchId, payload: check }, deadlineIn(5000)), {
      vote: "yes",
    });
    assert.deepEqual(await p.rollback({ branchId, payload: check }, term), { outcome: "done" });
  });

  void test("a vanished server: prepare votes no, commit and rollback throw retryable errors", async () => {
    const proxy = await startProxy(Number(new URL(services.pgUrlA).port));
    const url = new URL(fx.url);
    url.port = String(proxy.port);
    const down = await fx.started({
      connectionString: url.toString(),
      connectTimeoutMs: 500,
      phase2TimeoutMs: 1000,
    });
    const branchId = fx.branchId();
    assert.deepEqual(
      await down.prepare({ branchId, payload: statements(insert(66)) }, deadlineIn(5000)),
      {
        vote: "yes",
      },
    );
    await proxy.cut();

    const vote = await down.prepare(
      { branchId: fx.branchId(), payload: statements(insert(67)) },
      deadlineIn(3000),
    );
    assert.equal(noReason(vote), "participant-unavailable", noDetail(vote));
    for (const call of [
      () => down.commit({ branchId, payload: statements(insert(66)) }, term),
      () => down.rollback({ branchId, payload: statements(insert(66)) }, term),
      () => down.recover(),
    ]) {
      await assert.rejects(
        call,
        (err) => err instanceof ParticipantUnavailableError && err.retryable,
      );
    }
    const health = await down.health();
    assert.equal(health.ok, false);
    // The branch is still prepared on the real server; the reachable participant finishes it.
    assert.deepEqual(await fx.preparedGids(), [branchId]);
    assert.deepEqual(await p.rollback({ branchId, payload: statements(insert(66)) }, term), {
      outcome: "done",
    });

    const closedPort = fx.participant({ connectionString: url.toString(), connectTimeoutMs: 500 });
    await assert.rejects(closedPort.start(fx.clusterId), ParticipantUnavailableError);
  });

  void test("health answers ok for a reachable server", async () => {
    const health = await p.health();
    assert.equal(health.ok, true, health.detail);
  });
});
