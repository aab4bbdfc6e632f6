/**
 * Proves that the participant's one way of sending SQL (sql.ts) keeps its two promises with
 * the Query it builds from the text: a statement without parameters still goes through the
 * extended protocol, so a string holding two commands is refused by the server; and the
 * client-side read timeout still ends a call the server does not answer in time.
 */
import assert from "node:assert/strict";
import { after, test } from "node:test";
import pg from "pg";
import { query } from "../../../participants/postgres/sql.js";
import { services } from "../../support/services.js";

const client = new pg.Client({ connectionString: services.pgUrlA });
await client.connect();
after(() => client.end());

test("a parameterless statement goes through the extended protocol: two commands are refused", async () => {
  const one = await query(client, "select 1 as n", [], 5_000);
  assert.equal(one.rows[0]?.n, 1);
  await assert.rejects(
    query(client, "select 1; select 2", [], 5_000),
    /cannot insert multiple commands into a prepared statement/,
  );
});

test("the client-side read timeout ends a call the server has not answered", async () => {
  const startedMs = Date.now();
  await assert.rejects(query(client, "select pg_sleep(3)", [], 300), /Query read timeout/);
  const tookMs = Date.now() - startedMs;
  assert.ok(tookMs < 2_000, `rejected after ${tookMs} ms`);
});
