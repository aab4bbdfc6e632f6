/**
 * Recovery settles prepared branches the decision log does not explain, and nothing else:
 * - on demand (POST /admin/v1/recovery): branches prepared straight in PostgreSQL under this
 *   cluster's prefix, for xids the log never knew (one begun long ago, two new, one with a
 *   branch in each database), are found and rolled back — the counts say so, no prepared
 *   transaction of ours is left, their row changes are gone, and each xid is shown aborted
 *   with reason presumed-abort, principal verdict-recovery and a `recovery` history entry;
 *   a branch of another cluster whose id merely starts like ours is left alone (G6);
 * - it reports only what it verified: when the rollback cannot be carried out (a failpoint
 *   holds the rollback past the scan's wait), the branch counts as pending, not rolled back,
 *   and stays prepared;
 * - periodically: with a small `recoveryIntervalMs` orphans disappear with no call at all;
 * - recovery never hurts the living: scans every 5 ms under concurrent load (coordinator-
 *   executed and service-prepared branches, some held prepared between prepare and commit)
 *   saw prepared branches and left every one of them; no heuristic outcome, every transfer
 *   meant to commit committed, and the databases hold exactly what the answers said.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import {
  pgStatements,
  sql,
  TransactionAbortedError,
  VerdictClient,
} from "../../../client/index.js";
import { runServicePrepared } from "../../../client/postgres.js";
import type { RecoveryResponse } from "../../../coordinator/api/contract/schemas.js";
import { newXid } from "../../../coordinator/core/ids.js";
import { prepareServiceBranch } from "../../../client/service-branch.js";
import {
  adminView,
  createAccounts,
  databases,
  dbaRollback,
  metricValue,
  preparedOf,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
  type Db,
} from "./harness.js";

const dayMs = 86_400_000;

/**
 * Prepares `work` in `db` under `gid` on a connection of its own, as a transaction that never
 * went through the coordinator: the orphan a crash between prepare and `preparing` leaves.
 */
async function prepareOrphan(db: Db, gid: string, schema: string, work: string): Promise<void> {
  const c = new pg.Client({ connectionString: databases[db] });
  await c.connect();
  try {
    await c.query("begin");
    const r = await c.query(work);
    assert.equal(r.rowCount, 1, work);
    await prepareServiceBranch(c, gid, { schema });
  } finally {
    await c.end();
  }
}

const orphanXid = (beganAtMs: number) => newXid(beganAtMs, randomBytes(10).toString("hex"));

async function runRecovery(node: ApiNode): Promise<RecoveryResponse> {
  const answer = await raw(node.url, "POST", "/admin/v1/recovery", {
    token: node.adminToken,
    body: {},
  });
  assert.equal(answer.status, 200, answer.text);
  return answer.body as RecoveryResponse;
}

const noneOfOurs = (node: ApiNode) => async () =>
  (await preparedOf(node.node.clusterId)).length === 0 ? true : undefined;

async function assertPresumedAborted(node: ApiNode, xid: string, branches: number): Promise<void> {
  const view = await adminView(node, xid);
  assert.ok(view, `recovery recorded ${xid}`);
  assert.equal(view.state, "aborted");
  assert.equal(view.decision, "abort");
  assert.equal(view.reason?.code, "presumed-abort");
  assert.equal(view.principal, "verdict-recovery");
  assert.equal(view.heuristic, undefined);
  assert.deepEqual(
    view.branches.map((b) => b.state),
    Array.from({ length: branches }, () => "rolled-back"),
  );
  assert.ok(
    view.history.some((h) => h.entry === "recovery"),
    `a recovery entry in ${JSON.stringify(view.history)}`,
  );
}

describe("recovery on demand", () => {
  let node: ApiNode;
  let accounts: Accounts;
  let foreignGid: string | undefined;

  before(async () => {
    // No periodic scan during the test: the call below is the one that finds the orphans.
    node = await startApiNode({ protocol: { recoveryIntervalMs: 3_600_000 } });
    accounts = await createAccounts({
      "pg-a": [
        [1, 100],
        [2, 100],
        [3, 100],
      ],
      "pg-b": [[1, 100]],
    });
  });
  after(async () => {
    if (foreignGid) await dbaRollback("pg-a", foreignGid).catch(() => undefined);
    try {
      await node?.stop();
    } finally {
      await accounts?.drop();
    }
  });

  test("orphans unknown to the log, new or old, are rolled back and shown presumed-abort", async () => {
    const cluster = node.node.clusterId;
    const t = accounts.table;
    const fresh = orphanXid(Date.now());
    const old = orphanXid(Date.now() - 30 * dayMs);
    const inserted = orphanXid(Date.now());
    await prepareOrphan(
      "pg-a",
      `${cluster}:${fresh}:1`,
      node.schema,
      `update ${t} set balance = 0 where id = 1`,
    );
    await prepareOrphan(
      "pg-b",
      `${cluster}:${fresh}:2`,
      node.schema,
      `update ${t} set balance = 0 where id = 1`,
    );
    await prepareOrphan(
      "pg-a",
      `${cluster}:${old}:1`,
      node.schema,
      `update ${t} set balance = 0 where id = 2`,
    );
    await prepareOrphan(
      "pg-a",
      `${cluster}:${inserted}:3`,
      node.schema,
      `insert into ${t} values (9, 9)`,
    );
    // Another cluster's branch whose id starts with our id: not ours (exact `<id>:` prefix).
    foreignGid = `${cluster}x:${orphanXid(Date.now())}:1`;
    await prepareOrphan(
      "pg-a",
      foreignGid,
      node.schema,
      `update ${t} set balance = 0 where id = 3`,
    );
    assert.equal((await preparedOf(cluster)).length, 4);

    const report = await runRecovery(node);
    assert.deepEqual(
      {
        found: report.branchesFound,
        committed: report.branchesCommitted,
        rolledBack: report.branchesRolledBack,
        pending: report.branchesPending,
        left: report.branchesLeft,
        errors: report.errors,
      },
      { found: 4, committed: 0, rolledBack: 4, pending: 0, left: 0, errors: [] },
    );
    assert.ok(Date.parse(report.finishedAt) >= Date.parse(report.startedAt));

    // Each rollback follows its durable `recover` entry: wait for them, bounded.
    await waitFor("no prepared branch of this cluster", noneOfOurs(node));
    await assertPresumedAborted(node, fresh, 2);
    await assertPresumedAborted(node, old, 1);
    const insertedView = await adminView(node, inserted);
    assert.deepEqual(
      insertedView?.branches.map((b) => [b.branch, b.participant, b.state]),
      [[3, "pg-a", "rolled-back"]],
    );
    assert.equal(insertedView?.reason?.code, "presumed-abort");

    // The orphans' work is gone; the other cluster's branch still holds its row.
    assert.equal(await accounts.balance("pg-a", 1), 100);
    assert.equal(await accounts.balance("pg-b", 1), 100);
    assert.equal(await accounts.balance("pg-a", 2), 100);
    assert.equal(await accounts.balance("pg-a", 9), undefined);
    const { rows } = await accounts.pools["pg-a"].query<{ gid: string }>(
      "select gid from pg_prepared_xacts where gid = $1",
      [foreignGid],
    );
    assert.equal(rows.length, 1, "another cluster's prepared branch is not ours to touch");
    await dbaRollback("pg-a", foreignGid);
    foreignGid = undefined;

    // Nothing left to do: a second scan finds nothing and writes nothing.
    const again = await runRecovery(node);
    assert.equal(again.branchesFound, 0);
    assert.equal(
      await metricValue(node.url, "verdict_recovery_branches_total", { action: "rolled-back" }),
      4,
    );
  });
});

describe("recovery reports what it verified", () => {
  let node: ApiNode;

  before(async () => {
    // The first rollback hangs until the driver's call bound (5 s); the scan verifies for 1 s.
    process.env.VERDICT_FAILPOINTS = "before-rollback=hang";
    try {
      node = await startApiNode({
        protocol: {
          recoveryIntervalMs: 3_600_000,
          recoveryVerifyMs: 1_000,
          participantCallTimeoutMs: 5_000,
        },
      });
    } finally {
      delete process.env.VERDICT_FAILPOINTS;
    }
  });
  after(async () => node?.stop());

  test("a rollback that cannot be carried out is pending, never counted rolled back", async () => {
    const cluster = node.node.clusterId;
    const accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [] });
    const gid = `${cluster}:${orphanXid(Date.now())}:1`;
    try {
      await prepareOrphan("pg-a", gid, node.schema, `update ${accounts.table} set balance = 0`);
      const report = await runRecovery(node);
      assert.deepEqual(
        [report.branchesFound, report.branchesRolledBack, report.branchesPending],
        [1, 0, 1],
      );
      assert.deepEqual(
        (await preparedOf(cluster)).map((p) => p.gid),
        [gid],
      );
    } finally {
      await dbaRollback("pg-a", gid).catch(() => undefined);
      await accounts.drop();
    }
  });
});

describe("periodic recovery", () => {
  let node: ApiNode;
  let accounts: Accounts;

  before(async () => {
    node = await startApiNode({ protocol: { recoveryIntervalMs: 50 } });
    accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [[1, 100]] });
  });
  after(async () => {
    try {
      await node?.stop();
    } finally {
      await accounts?.drop();
    }
  });

  test("orphans disappear without any call", async () => {
    const cluster = node.node.clusterId;
    const t = accounts.table;
    const xids = [orphanXid(Date.now()), orphanXid(Date.now() - 365 * dayMs)];
    await prepareOrphan(
      "pg-a",
      `${cluster}:${xids[0]}:1`,
      node.schema,
      `update ${t} set balance = 1 where id = 1`,
    );
    await prepareOrphan(
      "pg-b",
      `${cluster}:${xids[1]}:1`,
      node.schema,
      `update ${t} set balance = 1 where id = 1`,
    );
    await waitFor("the periodic scan rolled the orphans back", noneOfOurs(node));
    for (const xid of xids) {
      await waitFor(`${xid} aborted`, async () =>
        (await adminView(node, xid))?.state === "aborted" ? true : undefined,
      );
      await assertPresumedAborted(node, xid, 1);
    }
    assert.equal(await accounts.balance("pg-a", 1), 100);
    assert.equal(await accounts.balance("pg-b", 1), 100);
  });
});

describe("recovery never hurts the living", () => {
  const workers = 12;
  const transfersMax = 200;
  const loadMs = 90_000;
  const initial = 1_000;
  let node: ApiNode;
  let accounts: Accounts;
  let client: VerdictClient;
  /** One service connection to pg-b per worker (a connection runs one transaction at a time). */
  const services: pg.Client[] = [];

  before(async () => {
    node = await startApiNode({ protocol: { recoveryIntervalMs: 5 } });
    const rows = Array.from({ length: workers }, (_, w): [number, number] => [w + 1, initial]);
    accounts = await createAccounts({ "pg-a": rows, "pg-b": rows });
    client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
    for (let w = 0; w < workers; w++) {
      const c = new pg.Client({ connectionString: databases["pg-b"] });
      await c.connect();
      services.push(c);
    }
  });
  after(async () => {
    for (const c of services) await c.end();
    try {
      await node?.stop();
    } finally {
      await accounts?.drop();
    }
  });

  /** What one transfer was meant to do and what the coordinator answered. */
  interface Outcome {
    readonly xid: string;
    readonly row: number;
    readonly meantToCommit: boolean;
    readonly state: string;
  }

  /**
   * Transfer k of worker row `row`: 1 from pg-a to pg-b. Every 3rd credits pg-b through a
   * service-prepared branch; every 2nd is held prepared a moment before commit (so scans see
   * its branches prepared); every 10th is meant to fail (pg-b expects a row that is not there).
   */
  async function transfer(k: number, row: number): Promise<Outcome> {
    const meantToCommit = k % 10 !== 9;
    const { xid } = await client.begin({ timeoutMs: 30_000 });
    const t = accounts.table;
    await client.enlist(
      xid,
      pgStatements("pg-a", [
        sql(`update ${t} set balance = balance - 1 where id = $1`, [row], { expectRows: 1 }),
      ]),
    );
    const credited = meantToCommit ? row : -row;
    if (k % 3 === 0) {
      await runServicePrepared(
        client,
        xid,
        "pg-b",
        services[row - 1] as pg.Client,
        async (c) => {
          // A missing row updates nothing and prepares nothing: the branch never reports in.
          const r = await c.query(`update ${t} set balance = balance + 1 where id = $1`, [
            credited,
          ]);
          if (r.rowCount !== 1) throw new Error(`no row ${credited}`);
        },
        { schema: node.schema },
      ).catch((err: unknown) => {
        if (meantToCommit) throw err;
      });
    } else {
      await client.enlist(
        xid,
        pgStatements("pg-b", [
          sql(`update ${t} set balance = balance + 1 where id = $1`, [credited], {
            expectRows: 1,
          }),
        ]),
      );
    }
    try {
      if (k % 2 === 0) {
        await client.prepare(xid);
        await sleep(15);
      }
      const answer = await client.commit(xid);
      return { xid, row, meantToCommit, state: answer.state };
    } catch (err) {
      if (!(err instanceof TransactionAbortedError)) throw err;
      return { xid, row, meantToCommit, state: "aborted" };
    }
  }

  test("scans every 5 ms under load leave every live branch alone", async (t) => {
    const startedMs = Date.now();
    const until = startedMs + loadMs;
    let next = 0;
    const outcomes: Outcome[] = [];
    await Promise.all(
      Array.from({ length: workers }, async (_, w) => {
        while (next < transfersMax && Date.now() < until) {
          const k = next++;
          outcomes.push(await transfer(k, w + 1));
        }
      }),
    );
    assert.equal(outcomes.length, transfersMax, "every transfer ran within the time bound");

    const unexpected = outcomes.filter((o) => o.meantToCommit === (o.state === "aborted"));
    assert.deepEqual(unexpected, [], "every transfer meant to commit did; the others aborted");

    // Every committed answer is (or becomes) committed, with both branches.
    for (const o of outcomes.filter((x) => x.meantToCommit)) {
      const view = await waitFor(`${o.xid} committed`, async () => {
        const v = await adminView(node, o.xid);
        return v?.state === "committed" ? v : undefined;
      });
      assert.deepEqual(
        view.branches.map((b) => b.state),
        ["committed", "committed"],
      );
    }
    await waitFor("no prepared branch left", async () =>
      (await preparedOf(node.node.clusterId)).length === 0 ? true : undefined,
    );

    // The databases agree with the answers, row by row.
    const rowsA = await accounts.rows("pg-a");
    const rowsB = await accounts.rows("pg-b");
    for (let row = 1; row <= workers; row++) {
      const committed = outcomes.filter((o) => o.row === row && o.meantToCommit).length;
      assert.equal(rowsA.get(row), initial - committed, `pg-a row ${row}`);
      assert.equal(rowsB.get(row), initial + committed, `pg-b row ${row}`);
    }

    // Scans ran while branches were prepared, and every one of them left them alone.
    const metric = (labels: Record<string, string>) =>
      metricValue(node.url, "verdict_recovery_branches_total", labels);
    const left = await metric({ action: "left" });
    t.diagnostic(`${transfersMax} transfers in ${Date.now() - startedMs} ms; scans left ${left}`);
    assert.ok(left > 0, `scans saw prepared branches (left ${left})`);
    assert.equal(await metric({ action: "committed" }), 0);
    assert.equal(await metric({ action: "rolled-back" }), 0);
    assert.equal(await metricValue(node.url, "verdict_heuristic_outcomes_total"), 0);
    assert.equal(await metricValue(node.url, "verdict_recovery_errors_total"), 0);
  });
});
