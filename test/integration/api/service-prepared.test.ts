/**
 * Service-prepared (XA-style) branches through the real coordinator: the service does its
 * own work on its own connection and prepares it with the gid Verdict issued (the SDK's
 * runServicePrepared), reports in, and Verdict commits it with COMMIT PREPARED from its own
 * connection — alone, or beside a coordinator-executed branch on the other database.
 * Between report and commit the gid is prepared in the right database and nothing is
 * visible; after commit the work and the marker are. An abort rolls the service's prepared
 * work back. No prepared transaction of this cluster is left at the end.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import { runServicePrepared } from "../../../client/postgres.js";
import {
  createAccounts,
  databases,
  preparedOf,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "./harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;
/** The service's own connection to pg-b's database, as the participant's role. */
let service: pg.Client;

before(async () => {
  node = await startApiNode();
  accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [[1, 0]] });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  service = new pg.Client({ connectionString: databases["pg-b"] });
  await service.connect();
});

after(async () => {
  await service?.end();
  // The node first: its stop rolls back (and reports) any prepared branch holding row locks.
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
  }
});

describe("service-prepared branches", () => {
  test("the service prepares its own work; commit makes it visible with the other branch", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(
      txn.xid,
      pgStatements("pg-a", [
        sql(`update ${accounts.table} set balance = balance - 25 where id = 1`, [], {
          expectRows: 1,
        }),
      ]),
    );
    const enlisted = await runServicePrepared(
      client,
      txn.xid,
      "pg-b",
      service,
      async (conn) => {
        const r = await conn.query(
          `update ${accounts.table} set balance = balance + 25 where id = 1`,
        );
        assert.equal(r.rowCount, 1);
        await conn.query(`insert into ${accounts.table} values (2, 25)`);
      },
      { schema: node.schema },
    );
    assert.equal(enlisted.branch, 2);
    assert.equal(enlisted.branchId, `${node.node.clusterId}:${txn.xid}:2`);

    // Prepared in verdict_b, reported, and nothing visible yet.
    assert.deepEqual(await preparedOf(node.node.clusterId), [
      { gid: enlisted.branchId, database: "verdict_b" },
    ]);
    assert.equal(await accounts.balance("pg-b", 1), 0);
    assert.equal(await accounts.balance("pg-b", 2), undefined);
    const status = await client.status(txn.xid);
    assert.equal(status.state, "active");

    const committed = await client.commit(txn.xid);
    assert.equal(committed.state, "committed");
    assert.equal(await accounts.balance("pg-a", 1), 75);
    assert.equal(await accounts.balance("pg-b", 1), 25);
    assert.equal(await accounts.balance("pg-b", 2), 25);
    assert.ok(await accounts.markerExists("pg-b", node.schema, enlisted.branchId));
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
  });

  test("a service-prepared branch alone commits (never one-phase: the service prepared it)", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const enlisted = await runServicePrepared(
      client,
      txn.xid,
      "pg-b",
      service,
      async (conn) => {
        await conn.query(`insert into ${accounts.table} values (3, 3)`);
      },
      { schema: node.schema },
    );
    const committed = await client.commit(txn.xid);
    assert.equal(committed.state, "committed");
    assert.deepEqual(
      committed.branches.map((b) => [b.branch, b.state]),
      [[enlisted.branch, "committed"]],
    );
    assert.equal(await accounts.balance("pg-b", 3), 3);
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
  });

  test("an abort rolls the service's prepared work back", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const enlisted = await runServicePrepared(
      client,
      txn.xid,
      "pg-b",
      service,
      async (conn) => {
        await conn.query(`insert into ${accounts.table} values (4, 4)`);
      },
      { schema: node.schema },
    );
    assert.equal((await preparedOf(node.node.clusterId)).length, 1);
    const aborted = await client.abort(txn.xid);
    assert.equal(aborted.state, "aborted");
    assert.equal(await accounts.balance("pg-b", 4), undefined);
    assert.equal(await accounts.markerExists("pg-b", node.schema, enlisted.branchId), false);
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
  });
});
