/**
 * Proves that the PostgreSQL participant decides its prepare and one-phase deadline on the
 * server's clock (clock_timestamp()), not only on its own: a participant whose clock runs a
 * minute behind accepts a deadline that has passed on the server's clock, and the server
 * refuses it. Prepare votes no with `deadline`, a one-phase commit aborts with `deadline`,
 * and each leaves nothing prepared (pg_prepared_xacts), nothing written, and no marker or
 * transaction record (read directly). The same participant, given a deadline ahead on both
 * clocks, votes yes: what the refusal shows is the deadline, not the skewed clock.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { BranchId } from "../../../participants/participant.js";
import {
  createPostgresParticipant,
  type PostgresParticipant,
} from "../../../participants/postgres/participant.js";
import type { PostgresPayload } from "../../../participants/postgres/payload.js";
import { createFixture, term, type Fixture } from "./helpers.js";

/** How far the participant's own clock runs behind the real (and the server's) one. */
const behindMs = 60_000;

void describe("postgres participant: deadlines on the server's clock", () => {
  let fx: Fixture;
  let p: PostgresParticipant;
  const insert = (id: number): PostgresPayload => ({
    kind: "statements",
    statements: [{ sql: `insert into ${fx.table} values ($1, 1)`, params: [id] }],
  });
  /** Passed a second ago on the server's clock; 59 s ahead on the participant's. */
  const passedOnServer = () => ({ deadlineMs: Date.now() - 1_000 });

  /** Rows Verdict keeps for the branch: its marker and its transaction record. */
  const bookkeepingRows = async (gid: BranchId): Promise<number> => {
    const { rows } = await fx.direct.query<{ n: number }>(
      `select (select count(*) from ${fx.schema}.marker where gid = $1)::int
            + (select count(*) from ${fx.schema}.branch_xact where gid = $1)::int as n`,
      [gid],
    );
    return rows[0]?.n ?? -1;
  };

  before(async () => {
    fx = await createFixture();
    await fx.started(); // creates the schema
    p = createPostgresParticipant(
      { name: `pg-clock-${fx.run}`, connectionString: fx.url, schema: fx.schema, poolSize: 2 },
      { nowMs: () => Date.now() - behindMs },
    );
    await p.start(fx.clusterId);
  });
  after(async () => {
    await p?.close();
    await fx.cleanup();
  });

  void test("a prepare past the deadline on the server's clock votes no with deadline", async () => {
    const gid = fx.branchId();
    const vote = await p.prepare({ branchId: gid, payload: insert(70) }, passedOnServer());
    assert.equal(vote.vote, "no", JSON.stringify(vote));
    assert.equal(vote.vote === "no" && vote.reason, "deadline");
    assert.match(vote.vote === "no" ? vote.detail : "", /server clock/);
    assert.deepEqual(await fx.preparedGids(), []);
    assert.equal(await fx.balance(70), undefined);
    assert.equal(await bookkeepingRows(gid), 0);
  });

  void test("a one-phase commit past the deadline on the server's clock aborts with deadline", async () => {
    const gid = fx.branchId();
    const outcome = await p.commitOnePhase(
      { branchId: gid, payload: insert(71) },
      passedOnServer(),
    );
    assert.equal(outcome.outcome, "aborted", JSON.stringify(outcome));
    assert.equal(outcome.outcome === "aborted" && outcome.reason, "deadline");
    assert.deepEqual(await fx.preparedGids(), []);
    assert.equal(await fx.balance(71), undefined);
    assert.equal(await bookkeepingRows(gid), 0);
  });

  void test("the same participant votes yes on a deadline ahead on both clocks", async () => {
    const gid = fx.branchId();
    const ahead = { deadlineMs: Date.now() + 10_000 };
    assert.deepEqual(await p.prepare({ branchId: gid, payload: insert(72) }, ahead), {
      vote: "yes",
    });
    assert.deepEqual(await fx.preparedGids(), [gid]);
    assert.equal((await p.rollback({ branchId: gid, payload: insert(72) }, term)).outcome, "done");
    assert.deepEqual(await fx.preparedGids(), []);
  });
});
