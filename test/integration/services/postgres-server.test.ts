// Proves that the PostgreSQL server deploy/local starts does what Verdict's two-phase commit
// relies on: prepared transactions are enabled (max_prepared_transactions ≥ 256) with fsync on;
// a prepared row stays invisible until COMMIT PREPARED from another connection, and is gone after
// ROLLBACK PREPARED; pg_prepared_xacts lists the gid in its database; and the trap the PostgreSQL
// participant must guard against: PREPARE TRANSACTION in a failed transaction answers the ROLLBACK
// tag instead of an error. Nothing prepared is left behind.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { services } from "../../support/services.js";

const preparedTransactionsMin = 256;
const connectionTimeoutMs = 5_000;
const statementTimeoutMs = 10_000;

// Unique per run, so parallel or repeated runs never see each other's rows or gids.
const runId = `${process.pid}_${randomBytes(4).toString("hex")}`;
const gidPrefix = `verdict-svctest:${runId}:`;
const table = `svc_2pc_${runId}`;

function connect(): pg.Client {
  return new pg.Client({
    connectionString: services.pgUrlA,
    connectionTimeoutMillis: connectionTimeoutMs,
    statement_timeout: statementTimeoutMs,
  });
}

// Utility statements take no $n parameters: a gid is written as a literal. Ours contain no quote.
function gidLiteral(gid: string): string {
  assert.ok(!gid.includes("'"), `gid ${gid} must not contain a quote`);
  return `'${gid}'`;
}

void describe("PostgreSQL server for two-phase commit (deploy/local)", () => {
  const first = connect();
  const second = connect();

  async function preparedGids(): Promise<string[]> {
    const result = await second.query<{ gid: string }>(
      `select gid from pg_prepared_xacts
        where database = current_database() and starts_with(gid, $1) order by gid`,
      [gidPrefix],
    );
    return result.rows.map((row) => row.gid);
  }

  async function rowIds(): Promise<number[]> {
    const result = await second.query<{ id: number }>(`select id from ${table} order by id`);
    return result.rows.map((row) => row.id);
  }

  /** BEGIN, insert one row, PREPARE TRANSACTION on the first connection; returns its command tag. */
  async function prepareInsert(gid: string, id: number): Promise<string> {
    await first.query("begin");
    await first.query(`insert into ${table} (id) values ($1)`, [id]);
    const prepared = await first.query(`prepare transaction ${gidLiteral(gid)}`);
    return prepared.command;
  }

  before(async () => {
    await first.connect();
    await second.connect();
    await second.query(`create table ${table} (id integer primary key)`);
  });

  after(async () => {
    // Closing the first connection ends any transaction a failed test left open on it; whatever
    // it left prepared would hold its locks and block vacuum, so it is rolled back.
    try {
      await first.end();
      for (const gid of await preparedGids()) {
        await second.query(`rollback prepared ${gidLiteral(gid)}`);
      }
      await second.query(`drop table if exists ${table}`);
    } finally {
      await second.end();
    }
  });

  void test(`reports max_prepared_transactions ≥ ${preparedTransactionsMin} and fsync on`, async () => {
    const max = await second.query<{ max_prepared_transactions: string }>(
      "show max_prepared_transactions",
    );
    assert.ok(
      Number(max.rows[0]?.max_prepared_transactions) >= preparedTransactionsMin,
      `max_prepared_transactions is ${max.rows[0]?.max_prepared_transactions}`,
    );
    const fsync = await second.query<{ fsync: string }>("show fsync");
    assert.equal(fsync.rows[0]?.fsync, "on");
  });

  void test("a prepared row is invisible until COMMIT PREPARED from another connection", async () => {
    const gid = `${gidPrefix}commit`;
    assert.equal(await prepareInsert(gid, 1), "PREPARE");

    assert.deepEqual(await rowIds(), [], "a prepared row must not be visible");
    const listed = await second.query<{ database: string; current: string }>(
      `select database, current_database() as current from pg_prepared_xacts where gid = $1`,
      [gid],
    );
    assert.equal(listed.rowCount, 1, `${gid} is not in pg_prepared_xacts`);
    assert.equal(listed.rows[0]?.database, listed.rows[0]?.current);

    const committed = await second.query(`commit prepared ${gidLiteral(gid)}`);
    assert.equal(committed.command, "COMMIT");
    assert.deepEqual(await rowIds(), [1]);
    assert.deepEqual(await preparedGids(), []);
  });

  void test("ROLLBACK PREPARED discards the prepared row", async () => {
    const gid = `${gidPrefix}rollback`;
    assert.equal(await prepareInsert(gid, 2), "PREPARE");
    assert.deepEqual(await preparedGids(), [gid]);

    const rolledBack = await second.query(`rollback prepared ${gidLiteral(gid)}`);
    assert.equal(rolledBack.command, "ROLLBACK");
    assert.deepEqual(await rowIds(), [1], "the rolled-back row must not be there");
    assert.deepEqual(await preparedGids(), []);
  });

  void test("PREPARE TRANSACTION in a failed transaction answers ROLLBACK, not an error", async () => {
    const gid = `${gidPrefix}failed`;
    await first.query("begin");
    await first.query(`insert into ${table} (id) values (3)`);
    await assert.rejects(first.query(`insert into ${table} (id) values (1)`), { code: "23505" });

    // The trap: no error is raised, so only the command tag tells that nothing was prepared.
    const prepared = await first.query(`prepare transaction ${gidLiteral(gid)}`);
    assert.equal(prepared.command, "ROLLBACK");
    assert.deepEqual(await preparedGids(), [], "nothing may have been prepared");
    assert.deepEqual(await rowIds(), [1], "the failed transaction's row must not be there");
    const status = await first.query<{ ok: number }>("select 1 as ok");
    assert.equal(status.rows[0]?.ok, 1, "the session is usable again, outside any transaction");
  });

  void test("leaves no prepared transaction of this run behind", async () => {
    assert.deepEqual(await preparedGids(), []);
  });
});
