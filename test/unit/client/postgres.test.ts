// Proves runServicePrepared against the real PostgreSQL of deploy/local (database
// verdict_b), with a scripted coordinator on 127.0.0.1: the service's work is prepared
// under the gid Verdict issued (seen in pg_prepared_xacts, invisible until COMMIT
// PREPARED, marker committed with it) and then reported; when the work fails, nothing
// stays prepared, nothing is reported and the connection is left outside a transaction.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { VerdictClient } from "../../../client/index.js";
import { runServicePrepared } from "../../../client/postgres.js";
import { createSchemaStatements } from "../../../participants/postgres/schema.js";
import { schemaTables } from "../../../shared/postgres/marker-tables.js";
import { services } from "../../support/services.js";

const table = "sdk_service_prepared_test";
const tables = schemaTables("verdict");
const seen: { method: string; url: string; body: string }[] = [];
let gid = "";
/** Every gid issued, so that a failed test leaves no prepared transaction behind. */
const issued: string[] = [];
let server: http.Server;
let baseUrl = "";
let admin: pg.Client;

before(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", body });
      const enlist = req.url?.endsWith("/branches") === true;
      res.writeHead(enlist ? 201 : 200, { "content-type": "application/json" });
      res.end(
        JSON.stringify(
          enlist
            ? { branch: 1, branchId: gid, participant: "pg-b", kind: "postgres" }
            : {
                branch: 1,
                branchId: gid,
                participant: "pg-b",
                kind: "postgres",
                state: "prepared",
                vote: "yes",
              },
        ),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  admin = new pg.Client({ connectionString: services.pgUrlB });
  await admin.connect();
  for (const ddl of createSchemaStatements(tables)) await admin.query(ddl);
  await admin.query(`create table if not exists ${table} (id text primary key)`);
});

after(async () => {
  for (const g of issued) {
    if (await prepared(g)) await admin.query(`rollback prepared '${g}'`);
  }
  await admin.query(`drop table if exists ${table}`);
  await admin.end();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function prepared(g: string): Promise<boolean> {
  const r = await admin.query(
    "select 1 from pg_prepared_xacts where gid = $1 and database = current_database()",
    [g],
  );
  return r.rowCount === 1;
}

async function rowExists(id: string): Promise<boolean> {
  return (await admin.query(`select 1 from ${table} where id = $1`, [id])).rowCount === 1;
}

describe("runServicePrepared", () => {
  const client = () => new VerdictClient({ baseUrl, token: "t", retry: { attemptsMax: 2 } });

  test("prepares the service's work under the issued gid, then reports it", async () => {
    seen.length = 0;
    gid = `sdktest-${randomUUID()}:tx-1:1`;
    issued.push(gid);
    const id = randomUUID();
    const conn = new pg.Client({ connectionString: services.pgUrlB });
    await conn.connect();
    try {
      const enlisted = await runServicePrepared(client(), "tx-1", "pg-b", conn, async (c) => {
        await c.query(`insert into ${table} (id) values ($1)`, [id]);
      });
      assert.equal(enlisted.branchId, gid);
      assert.ok(await prepared(gid), "the gid is in pg_prepared_xacts");
      assert.equal(await rowExists(id), false, "the work is invisible until the decision");
      assert.deepEqual(
        seen.map((s) => `${s.method} ${s.url}`),
        ["POST /v1/transactions/tx-1/branches", "POST /v1/transactions/tx-1/branches/1/prepared"],
      );
      assert.deepEqual(JSON.parse(seen[0]!.body), { participant: "pg-b", servicePrepared: true });
      // The session is free again: the prepared transaction no longer belongs to it.
      assert.equal((await conn.query<{ one: number }>("select 1 as one")).rows[0]?.one, 1);
    } finally {
      await conn.end();
    }
    await admin.query(`commit prepared '${gid}'`);
    assert.ok(await rowExists(id));
    const marker = await admin.query(`select 1 from ${tables.marker} where gid = $1`, [gid]);
    assert.equal(marker.rowCount, 1, "the marker committed with the branch");
    await admin.query(`delete from ${tables.marker} where gid = $1`, [gid]);
    await admin.query(`delete from ${table} where id = $1`, [id]);
  });

  test("a failing work rolls back, prepares nothing and reports nothing", async () => {
    seen.length = 0;
    gid = `sdktest-${randomUUID()}:tx-2:1`;
    issued.push(gid);
    const id = randomUUID();
    const conn = new pg.Client({ connectionString: services.pgUrlB });
    await conn.connect();
    try {
      await assert.rejects(
        runServicePrepared(client(), "tx-2", "pg-b", conn, async (c) => {
          await c.query(`insert into ${table} (id) values ($1)`, [id]);
          throw new Error("the service changed its mind");
        }),
        /changed its mind/,
      );
      assert.equal(await prepared(gid), false);
      assert.equal(await rowExists(id), false);
      assert.equal(seen.length, 1, "only the enlist was sent");
      // Rolled back: left open, the work's insert would still hold a transaction id here.
      const tx = await conn.query<{ x: string | null }>("select txid_current_if_assigned() as x");
      assert.equal(tx.rows[0]?.x, null);
    } finally {
      await conn.end();
    }
  });
});
