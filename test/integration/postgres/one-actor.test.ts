/**
 * Proves "one actor per branch" across coordinator processes against the real server
 * (docs/architecture.md §7.1): two participants on one database stand for a deposed
 * coordinator and its successor, each with its own connections. One's prepare is held
 * inside its transaction, after its marker insert (an advisory lock its last statement waits
 * for); meanwhile the other's rollback refuses to answer until it owns the marker key, and
 * the other's re-driven prepare backs off and then votes yes on the branch the first one
 * prepared. Afterwards pg_prepared_xacts, the marker row's kind and the row itself agree
 * with the outcome.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type pg from "pg";
import type { BranchId } from "../../../participants/participant.js";
import type { PostgresParticipant } from "../../../participants/postgres/participant.js";
import type { PostgresPayload } from "../../../participants/postgres/payload.js";
import { createFixture, deadlineIn, term, type Fixture } from "./helpers.js";

void describe("postgres participant: one actor per branch across processes", () => {
  let fx: Fixture;
  let deposed: PostgresParticipant;
  let successor: PostgresParticipant;
  const lockKey = 0x6f6e6531; // the advisory lock the held prepare waits for

  /** Adds to account 1, then waits for the test's advisory lock: held after its marker insert. */
  const heldAdd = (amount: number): PostgresPayload => ({
    kind: "statements",
    statements: [
      {
        sql: `update ${fx.table} set balance = balance + $1 where id = 1`,
        params: [amount],
        expectRows: 1,
      },
      { sql: "select pg_advisory_xact_lock($1)", params: [lockKey] },
    ],
  });

  before(async () => {
    fx = await createFixture();
    // No lock_timeout on its statements: the advisory lock must hold it as long as the test wants.
    deposed = await fx.started({ lockTimeoutMs: 0 });
    successor = await fx.started({ markerLockTimeoutMs: 100 });
  });
  after(async () => fx.cleanup());

  /** Holds the advisory lock on a session of its own; resolves `release`. */
  async function holdLock(): Promise<{ release(): Promise<void> }> {
    const client: pg.PoolClient = await fx.direct.connect();
    await client.query("select pg_advisory_lock($1)", [lockKey]);
    return {
      async release() {
        await client.query("select pg_advisory_unlock($1)", [lockKey]);
        client.release();
      },
    };
  }

  /** Waits until a backend of the participants waits for the advisory lock. */
  async function untilHeld(): Promise<void> {
    for (let poll = 0; poll < 100; poll++) {
      const { rows } = await fx.direct.query<{ n: number }>(
        `select count(*)::int as n from pg_stat_activity
         where wait_event_type = 'Lock' and wait_event = 'advisory' and starts_with(application_name, $1)`,
        [`verdict-stmt:pg-test-${fx.run}`],
      );
      if (rows[0]!.n > 0) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.fail("the held prepare never reached its advisory lock");
  }

  async function markerKind(gid: BranchId): Promise<string | null | undefined> {
    const { rows } = await fx.direct.query<{ kind: string | null }>(
      `select kind from "${fx.schema}".marker where gid = $1`,
      [gid],
    );
    return rows[0] === undefined ? undefined : rows[0].kind;
  }

  void test("a rollback does not answer while another process's prepare holds the key; then it rolls the prepared branch back", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(1))!;
    const lock = await holdLock();
    const prepare = deposed.prepare({ branchId, payload: heldAdd(5) }, deadlineIn(20_000));
    try {
      await untilHeld();
      // The old rule (a tombstone, nothing prepared yet) answered already-done here, and the
      // held PREPARE then succeeded after it.
      await assert.rejects(successor.rollback({ branchId, payload: heldAdd(5) }, term), (err) => {
        assert.equal((err as { retryable?: unknown }).retryable, true);
        return true;
      });
    } finally {
      await lock.release();
    }
    assert.deepEqual(await prepare, { vote: "yes" });
    assert.deepEqual(await fx.preparedGids(), [branchId]);
    // The engine's retry: the branch is prepared now, so the rollback finishes it.
    assert.deepEqual(await successor.rollback({ branchId, payload: heldAdd(5) }, term), {
      outcome: "done",
    });
    assert.deepEqual(await fx.preparedGids(), []);
    assert.equal(await markerKind(branchId), "rolled-back");
    assert.equal(await fx.balance(1), before);
    // The deposed process's repeated prepare can no longer take effect.
    const late = await deposed.prepare({ branchId, payload: heldAdd(5) }, deadlineIn(5_000));
    assert.equal(late.vote === "no" && late.reason, "rolled-back");
    assert.deepEqual(await fx.preparedGids(), []);
    assert.equal(await fx.balance(1), before);
  });

  void test("a rollback that claimed the key first wins: the held prepare's marker fails on it", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(1))!;
    assert.deepEqual(await successor.rollback({ branchId, payload: heldAdd(3) }, term), {
      outcome: "already-done",
    });
    const vote = await deposed.prepare({ branchId, payload: heldAdd(3) }, deadlineIn(5_000));
    assert.equal(vote.vote === "no" && vote.reason, "rolled-back");
    assert.deepEqual(await fx.preparedGids(), []);
    assert.equal(await markerKind(branchId), "rolled-back");
    assert.equal(await fx.balance(1), before);
  });

  void test("a re-driven prepare waits for the held one and votes yes on the branch it prepared", async () => {
    const branchId = fx.branchId();
    const before = (await fx.balance(1))!;
    const lock = await holdLock();
    const first = deposed.prepare({ branchId, payload: heldAdd(7) }, deadlineIn(20_000));
    let second: Promise<unknown> | undefined;
    try {
      await untilHeld();
      second = successor.prepare({ branchId, payload: heldAdd(7) }, deadlineIn(20_000));
      // Several of its marker inserts time out (100 ms each) while the first holds the key.
      await new Promise((r) => setTimeout(r, 600));
      assert.deepEqual(await fx.preparedGids(), []);
    } finally {
      await lock.release();
    }
    assert.deepEqual(await first, { vote: "yes" });
    assert.deepEqual(await second, { vote: "yes" });
    assert.deepEqual(await fx.preparedGids(), [branchId]);
    assert.deepEqual(await successor.commit({ branchId, payload: heldAdd(7) }, term), {
      outcome: "done",
    });
    assert.deepEqual(await fx.preparedGids(), []);
    assert.equal(await markerKind(branchId), "commit");
    assert.equal(await fx.balance(1), before + 7, "the work ran once");
  });
});
