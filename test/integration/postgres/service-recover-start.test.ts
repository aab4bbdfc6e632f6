/**
 * Proves, against the real server: service-prepared branches (the SDK helper prepares on
 * the service's own connection; Verdict votes yes only for a gid it sees prepared in its
 * database, and commits it); recovery lists exactly this cluster's prepared branches of
 * this database — the cluster id holds `_` and `%`, and a foreign gid that a LIKE pattern
 * would match is not returned; and start() refuses a database registered to another
 * cluster and a server whose max_prepared_transactions is below the in-flight limit.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { ServiceBranchPrepareError } from "../../../client/errors.js";
import { ClusterMismatchError, UnsafeServerError } from "../../../participants/postgres/errors.js";
import type { PostgresParticipant } from "../../../participants/postgres/participant.js";
import { prepareServiceBranch } from "../../../client/service-branch.js";
import { services } from "../../support/services.js";
import { createFixture, deadlineIn, prepareRaw, suffix, term, type Fixture } from "./helpers.js";

const servicePrepared = { kind: "service-prepared" } as const;

void describe("postgres participant: service-prepared branches, recovery, start", () => {
  let fx: Fixture;
  let p: PostgresParticipant;
  let service: pg.Client;
  const foreignGids: { url: string; gid: string }[] = [];

  before(async () => {
    fx = await createFixture();
    p = await fx.started();
    service = new pg.Client({ connectionString: fx.url });
    await service.connect();
  });
  after(async () => {
    await service.end();
    for (const { url, gid } of foreignGids) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`rollback prepared '${gid}'`).catch(() => undefined);
      await c.end();
    }
    await fx.cleanup();
  });

  void test("a service prepares with the helper; Verdict votes yes and commits it", async () => {
    const branchId = fx.branchId();
    await service.query("begin");
    await service.query(`insert into ${fx.table} values ($1, $2)`, [70, 7]);
    await prepareServiceBranch(service, branchId, { schema: fx.schema });
    assert.equal(await fx.balance(70), undefined);
    assert.deepEqual(await p.prepare({ branchId, payload: servicePrepared }, deadlineIn(5000)), {
      vote: "yes",
    });
    assert.deepEqual(await p.commit({ branchId, payload: servicePrepared }, term), {
      outcome: "done",
    });
    assert.equal(await fx.balance(70), 7);
    // The helper wrote the marker, so a repeated commit is classified as done, not heuristic.
    assert.deepEqual(await p.commit({ branchId, payload: servicePrepared }, term), {
      outcome: "already-done",
    });
  });

  void test("a branch the service never prepared votes not-prepared", async () => {
    const vote = await p.prepare(
      { branchId: fx.branchId(), payload: servicePrepared },
      deadlineIn(5000),
    );
    assert.equal(vote.vote === "no" && vote.reason, "not-prepared");
  });

  void test("the same gid prepared in another database does not count", async () => {
    const branchId = fx.branchId();
    foreignGids.push({ url: services.pgUrlB, gid: branchId });
    await prepareRaw(services.pgUrlB, branchId);
    const vote = await p.prepare({ branchId, payload: servicePrepared }, deadlineIn(5000));
    assert.equal(vote.vote === "no" && vote.reason, "not-prepared");
  });

  void test("the helper refuses outside a transaction block and after a failed statement", async () => {
    const outside = fx.branchId();
    await assert.rejects(
      prepareServiceBranch(service, outside, { schema: fx.schema }),
      ServiceBranchPrepareError,
    );
    const failed = fx.branchId();
    await service.query("begin");
    await service.query("select 1 / 0").catch(() => undefined);
    await assert.rejects(
      prepareServiceBranch(service, failed, { schema: fx.schema }),
      ServiceBranchPrepareError,
    );
    const { rows } = await fx.direct.query(
      `select gid from ${fx.schema}.marker where gid = any($1)`,
      [[outside, failed]],
    );
    assert.deepEqual(rows, [], "no marker committed on its own");
    assert.deepEqual(await fx.preparedGids(), []);
  });

  void test("one-phase commit of a service-prepared branch commits it", async () => {
    const branchId = fx.branchId();
    await service.query("begin");
    await service.query(`insert into ${fx.table} values ($1, $2)`, [71, 1]);
    await prepareServiceBranch(service, branchId, { schema: fx.schema });
    assert.deepEqual(
      await p.commitOnePhase({ branchId, payload: servicePrepared }, deadlineIn(5000)),
      {
        outcome: "committed",
      },
    );
    assert.equal(await fx.balance(71), 1);
    assert.equal(await p.isCommitted(branchId), true);
  });

  void test("recover lists exactly this cluster's prepared branches in this database", async () => {
    const ours = [fx.branchId(), fx.branchId()];
    for (const branchId of ours) {
      assert.deepEqual(
        await p.prepare(
          { branchId, payload: { kind: "statements", statements: [{ sql: "select 1" }] } },
          deadlineIn(5000),
        ),
        { vote: "yes" },
      );
    }
    // `t_%<run>` as a LIKE pattern also matches `tX<anything><run>`: another cluster's gid.
    const likeMatch = `tXyz${fx.run}:x1:1`;
    assert.ok(likeMatch.startsWith("t") && !likeMatch.startsWith(`${fx.clusterId}:`));
    const { rows } = await fx.direct.query<{ like: boolean }>("select $1::text like $2 as like", [
      likeMatch,
      `${fx.clusterId}:%`,
    ]);
    assert.equal(rows[0]?.like, true, "the foreign gid is one a LIKE prefix match would take");
    foreignGids.push({ url: fx.url, gid: likeMatch });
    await prepareRaw(fx.url, likeMatch);
    // Ours by prefix, but in another database.
    const elsewhere = `${fx.clusterId}:elsewhere-${suffix()}:1`;
    foreignGids.push({ url: services.pgUrlB, gid: elsewhere });
    await prepareRaw(services.pgUrlB, elsewhere);

    assert.deepEqual((await p.recover()).sort(), [...ours].sort());
    for (const branchId of ours) {
      assert.deepEqual(await p.rollback({ branchId, payload: servicePrepared }, term), {
        outcome: "done",
      });
    }
    assert.deepEqual(await p.recover(), []);
  });

  void test("start refuses a database (schema) registered to another cluster", async () => {
    const other = fx.participant();
    await assert.rejects(other.start(`other-${suffix()}`), (err) => {
      assert.ok(err instanceof ClusterMismatchError);
      assert.equal(err.registeredClusterId, fx.clusterId);
      return true;
    });
    // The registered cluster itself may start again (another node, a restart).
    await fx.started();
  });

  void test("start refuses when max_prepared_transactions is below inFlightMax, naming the setting", async () => {
    const tooMany = fx.participant({ inFlightMax: 100_000 });
    await assert.rejects(tooMany.start(fx.clusterId), (err) => {
      assert.ok(err instanceof UnsafeServerError);
      assert.match(err.message, /max_prepared_transactions is \d+, below inFlightMax 100000/);
      assert.match(err.message, /postgresql\.conf and restart/);
      return true;
    });
  });

  void test("no prepared transactions of this cluster are left behind", async () => {
    assert.deepEqual(await fx.preparedGids(), []);
  });
});
