/**
 * Every kind of no vote aborts the whole transaction through the real coordinator, and
 * leaves nothing in either database (read directly), not even the other branch's effects:
 * a failing statement (division by zero, a constraint violation), an unmet `expectRows`,
 * a statement that tries to COMMIT (refused), the deadline (a statement sleeping past a
 * 500 ms timeout: answered long before the sleep ends), a service-prepared branch the
 * service never prepared. And the decision calls: client abort before commit, abort after
 * commit (409 transaction-committed), commit after abort (409 transaction-aborted), double
 * commit (the same 200). No prepared transaction of this cluster is left at the end.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  pgServicePrepared,
  pgStatements,
  sql,
  VerdictClient,
  type Statement,
  type TransactionView,
} from "../../../client/index.js";
import {
  createAccounts,
  preparedOf,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
  type RawAnswer,
} from "./harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

before(async () => {
  node = await startApiNode();
  accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [[1, 100]] });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
});

after(async () => {
  // The node first: its stop rolls back (and reports) any prepared branch holding row locks.
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
  }
});

const post = (xid: string, action: string): Promise<RawAnswer> =>
  raw(node.url, "POST", `/v1/transactions/${xid}/${action}`, { token: node.clientToken, body: {} });

/** Both databases hold exactly their starting rows. */
async function assertUntouched(): Promise<void> {
  assert.deepEqual([...(await accounts.rows("pg-a"))], [[1, 100]], "pg-a untouched");
  assert.deepEqual([...(await accounts.rows("pg-b"))], [[1, 100]], "pg-b untouched");
  assert.deepEqual(await preparedOf(node.node.clusterId), [], "nothing left prepared");
}

/** A valid pg-b branch that would be visible had the transaction committed. */
const creditB = () =>
  pgStatements("pg-b", [
    sql(`update ${accounts.table} set balance = balance + 10 where id = 1`, [], { expectRows: 1 }),
    sql(`insert into ${accounts.table} values (2, 10)`),
  ]);

interface Aborted {
  readonly view: TransactionView & { error: { code: string } };
  readonly elapsedMs: number;
}

/** Begins, enlists `statementsA` on pg-a and a valid branch on pg-b, commits: expects 409. */
async function commitExpectingAbort(
  statementsA: Statement[],
  timeoutMs = 10_000,
): Promise<Aborted> {
  const txn = await client.begin({ timeoutMs });
  await client.enlist(txn.xid, pgStatements("pg-a", statementsA));
  await client.enlist(txn.xid, creditB());
  const started = Date.now();
  const answer = await post(txn.xid, "commit");
  const elapsedMs = Date.now() - started;
  assert.equal(answer.status, 409, answer.text);
  const view = answer.body as Aborted["view"];
  assert.equal(view.error.code, "transaction-aborted");
  assert.equal(view.state, "aborted");
  assert.equal(view.xid, txn.xid);
  // What GET says agrees with the answer.
  const status = await client.status(txn.xid);
  assert.equal(status.state, "aborted");
  assert.equal(status.decision, "abort");
  return { view, elapsedMs };
}

describe("a no vote aborts everything", () => {
  test("division by zero", async () => {
    const { view } = await commitExpectingAbort([
      sql(`update ${accounts.table} set balance = balance - 10 where id = 1`),
      sql("select 1 / 0"),
    ]);
    assert.equal(view.reason?.code, "vote-no");
    assert.equal(view.reason?.branch, 1);
    assert.match(view.reason?.message ?? "", /division by zero/);
    await assertUntouched();
  });

  test("a constraint violation", async () => {
    const { view } = await commitExpectingAbort([
      sql(`update ${accounts.table} set balance = balance - 1000 where id = 1`),
    ]);
    assert.equal(view.reason?.code, "vote-no");
    assert.match(view.reason?.message ?? "", /check constraint/);
    await assertUntouched();
  });

  test("unmet expectRows", async () => {
    const { view } = await commitExpectingAbort([
      sql(`update ${accounts.table} set balance = balance - 10 where id = 1`, [], {
        expectRows: 1,
      }),
      sql(`update ${accounts.table} set balance = 0 where id = 999`, [], { expectRows: 1 }),
    ]);
    assert.equal(view.reason?.code, "vote-no");
    assert.match(view.reason?.message ?? "", /expectation-unmet/);
    await assertUntouched();
  });

  test("a statement that tries to COMMIT is refused", async () => {
    const { view } = await commitExpectingAbort([
      sql(`update ${accounts.table} set balance = balance - 10 where id = 1`),
      sql("commit"),
    ]);
    assert.equal(view.reason?.code, "vote-no");
    assert.match(view.reason?.message ?? "", /statement-refused/);
    await assertUntouched();
  });

  test("the deadline: pg_sleep(5) under a 500 ms timeout", async (t) => {
    const { view, elapsedMs } = await commitExpectingAbort(
      [
        sql(`update ${accounts.table} set balance = balance - 10 where id = 1`),
        sql("select pg_sleep(5)"),
      ],
      500,
    );
    // Either the participant cut the statement at the deadline (a `deadline` no vote) or
    // the engine's deadline abort won: both are the deadline, named as such.
    const byDeadline =
      view.reason?.code === "deadline-passed" ||
      (view.reason?.code === "vote-no" && /deadline/.test(view.reason.message));
    assert.ok(byDeadline, `aborted by the deadline: ${JSON.stringify(view.reason)}`);
    t.diagnostic(`answered in ${elapsedMs} ms: ${view.reason?.code}: ${view.reason?.message}`);
    assert.ok(elapsedMs < 3_000, `answered in ${elapsedMs} ms, not after the 5 s sleep`);
    await assertUntouched();
  });

  test("a service-prepared branch the service never prepared votes no", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(
      txn.xid,
      pgStatements("pg-a", [
        sql(`update ${accounts.table} set balance = balance - 10 where id = 1`),
      ]),
    );
    const { branch } = await client.enlist(txn.xid, pgServicePrepared("pg-b"));
    const answer = await post(txn.xid, "commit");
    assert.equal(answer.status, 409, answer.text);
    const view = answer.body as TransactionView;
    assert.equal(view.reason?.code, "vote-no");
    assert.equal(view.reason?.branch, branch);
    await assertUntouched();
  });

  test("reporting a service branch prepared that is not → 409 branch-not-prepared", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const { branch } = await client.enlist(txn.xid, pgServicePrepared("pg-b"));
    const report = await post(txn.xid, `branches/${branch}/prepared`);
    const commit = await post(txn.xid, "commit");
    // Whatever the report said, the commit must not go through.
    assert.equal(commit.status, 409, commit.text);
    await assertUntouched();
    assert.equal(report.status, 409, report.text);
    assert.equal((report.body as { error: { code: string } }).error.code, "branch-not-prepared");
  });
});

describe("decision calls", () => {
  test("client abort before commit: 200 aborted, nothing applied; commit after → 409", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(
      txn.xid,
      pgStatements("pg-a", [sql(`update ${accounts.table} set balance = 0 where id = 1`)]),
    );
    await client.enlist(txn.xid, creditB());
    const abort = await post(txn.xid, "abort");
    assert.equal(abort.status, 200, abort.text);
    assert.equal((abort.body as TransactionView).state, "aborted");
    assert.equal((abort.body as TransactionView).reason?.code, "client-abort");
    const again = await post(txn.xid, "abort");
    assert.equal(again.status, 200, again.text);
    const commit = await post(txn.xid, "commit");
    assert.equal(commit.status, 409, commit.text);
    const body = commit.body as TransactionView & { error: { code: string } };
    assert.equal(body.error.code, "transaction-aborted");
    assert.equal(body.reason?.code, "client-abort");
    await assertUntouched();
  });

  test("abort after commit → 409 transaction-committed; double commit → the same 200", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    await client.enlist(
      txn.xid,
      pgStatements("pg-a", [sql(`insert into ${accounts.table} values (3, 1)`)]),
    );
    await client.enlist(
      txn.xid,
      pgStatements("pg-b", [sql(`insert into ${accounts.table} values (3, 1)`)]),
    );
    const first = await post(txn.xid, "commit");
    const second = await post(txn.xid, "commit");
    assert.equal(first.status, 200, first.text);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.body, first.body);
    const abort = await post(txn.xid, "abort");
    assert.equal(abort.status, 409, abort.text);
    assert.equal((abort.body as { error: { code: string } }).error.code, "transaction-committed");
    assert.equal((await client.status(txn.xid)).state, "committed");
    assert.equal(await accounts.balance("pg-a", 3), 1);
    assert.equal(await accounts.balance("pg-b", 3), 1);
    for (const db of ["pg-a", "pg-b"] as const) {
      await accounts.pools[db].query(`delete from ${accounts.table} where id = 3`);
    }
    await assertUntouched();
  });
});
