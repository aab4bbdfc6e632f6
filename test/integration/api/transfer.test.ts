/**
 * The whole coordinator (REST API → engine → WAL → PostgreSQL participants) moves money
 * between two real databases atomically, as the SDK drives it:
 * - a transfer commits on both databases (balances read directly);
 * - 20 concurrent transfers on the same two rows conserve the sum, and each one is either
 *   in both databases or in neither — exactly as its client was told;
 * - a second enlist on the same participant merges into branch 1;
 * - Idempotency-Key: a replay answers the first answer without a second branch, and the same
 *   key with another body is refused (409 idempotency-key-reused);
 * - GET /v1/transactions/{xid} shows state and branches;
 * - a single-branch transaction commits in one phase, its marker committed with it;
 * - the prepare-only endpoint leaves both branches prepared, and commit then finishes them.
 * No prepared transaction of this cluster is left at the end (checked by the harness).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  pgStatements,
  sql,
  TransactionAbortedError,
  VerdictClient,
  type TransactionView,
} from "../../../client/index.js";
import {
  createAccounts,
  preparedOf,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "./harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

const debit = (amount: number, id = 1) =>
  pgStatements("pg-a", [
    sql(`update ${accounts.table} set balance = balance - $1 where id = $2`, [amount, id], {
      expectRows: 1,
    }),
  ]);
const credit = (amount: number, id = 1) =>
  pgStatements("pg-b", [
    sql(`update ${accounts.table} set balance = balance + $1 where id = $2`, [amount, id], {
      expectRows: 1,
    }),
  ]);

before(async () => {
  node = await startApiNode();
  accounts = await createAccounts({
    "pg-a": [
      [1, 1000],
      [2, 3],
    ],
    "pg-b": [
      [1, 0],
      [2, 0],
    ],
  });
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

describe("transfers across two databases", () => {
  test("debit on pg-a and credit on pg-b commit together (200 committed)", async () => {
    const txn = await client.begin({ timeoutMs: 10_000, labels: { purpose: "transfer" } });
    assert.equal(txn.state, "active");
    const a = await client.enlist(txn.xid, debit(100));
    const b = await client.enlist(txn.xid, credit(100));
    assert.deepEqual([a.branch, b.branch], [1, 2]);
    assert.equal(a.branchId, `${node.node.clusterId}:${txn.xid}:1`);

    const answer = await raw(node.url, "POST", `/v1/transactions/${txn.xid}/commit`, {
      token: node.clientToken,
      body: {},
    });
    assert.equal(answer.status, 200, answer.text);
    const view = answer.body as TransactionView;
    assert.equal(view.state, "committed");
    assert.deepEqual(
      view.branches.map((br) => br.state),
      ["committed", "committed"],
    );
    assert.equal(await accounts.balance("pg-a", 1), 900);
    assert.equal(await accounts.balance("pg-b", 1), 100);
  });

  test("20 concurrent transfers on the same two rows: conserved, all-or-nothing, as told", async (t) => {
    const count = 20;
    const started = Date.now();
    // Row 2 of pg-a holds 3: at most 3 transfers of 1 fit (a check constraint refuses more).
    // Each transfer also writes a receipt row (id 1000 + i) in both databases, so its
    // presence can be checked on each side separately.
    const outcomes = await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        // Staggered deadlines: when prepares wait on each other across the two databases,
        // the earliest deadline breaks the cycle and the others go on.
        const txn = await client.begin({ timeoutMs: 1_000 + 150 * i });
        await client.enlist(
          txn.xid,
          pgStatements("pg-a", [
            sql(`update ${accounts.table} set balance = balance - 1 where id = 2`, [], {
              expectRows: 1,
            }),
            sql(`insert into ${accounts.table} values ($1, 0)`, [1000 + i]),
          ]),
        );
        await client.enlist(
          txn.xid,
          pgStatements("pg-b", [
            sql(`update ${accounts.table} set balance = balance + 1 where id = 2`, [], {
              expectRows: 1,
            }),
            sql(`insert into ${accounts.table} values ($1, 0)`, [1000 + i]),
          ]),
        );
        try {
          const view = await client.commit(txn.xid);
          assert.equal(view.state, "committed", JSON.stringify(view));
          return true;
        } catch (err) {
          if (err instanceof TransactionAbortedError) return false;
          throw err;
        }
      }),
    );
    const rowsA = await accounts.rows("pg-a");
    const rowsB = await accounts.rows("pg-b");
    const committed = outcomes.filter(Boolean).length;
    t.diagnostic(`${committed}/${count} committed in ${Date.now() - started} ms`);
    assert.ok(committed >= 1, "at least one transfer commits");
    assert.ok(committed <= 3, "the check constraint bounds the transfers");
    assert.equal(rowsA.get(2), 3 - committed);
    assert.equal(rowsB.get(2), committed);
    assert.equal((rowsA.get(2) ?? 0) + (rowsB.get(2) ?? 0), 3, "sum conserved");
    outcomes.forEach((told, i) => {
      assert.equal(rowsA.has(1000 + i), told, `transfer ${i} in pg-a as its client was told`);
      assert.equal(rowsB.has(1000 + i), told, `transfer ${i} in pg-b as its client was told`);
    });
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
  });

  test("a second enlist on the same participant merges into branch 1", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const first = await raw(node.url, "POST", `/v1/transactions/${txn.xid}/branches`, {
      token: node.clientToken,
      body: pgStatements("pg-a", [sql(`insert into ${accounts.table} values (10, 1)`)]),
    });
    const second = await raw(node.url, "POST", `/v1/transactions/${txn.xid}/branches`, {
      token: node.clientToken,
      body: pgStatements("pg-a", [sql(`insert into ${accounts.table} values (11, 2)`)]),
    });
    assert.equal(first.status, 201, first.text);
    assert.equal(second.status, 200, second.text);
    assert.deepEqual(second.body, first.body);
    const view = await client.status(txn.xid);
    assert.equal(view.branches.length, 1);
    assert.equal((await client.commit(txn.xid)).state, "committed");
    const rows = await accounts.rows("pg-a");
    assert.equal(rows.get(10), 1);
    assert.equal(rows.get(11), 2);
  });

  test("Idempotency-Key: same key and body replay the first answer, no second branch", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const path = `/v1/transactions/${txn.xid}/branches`;
    const body = pgStatements("pg-a", [sql(`insert into ${accounts.table} values (20, 5)`)]);
    const headers = { "idempotency-key": "enlist-20" };
    const first = await raw(node.url, "POST", path, { token: node.clientToken, body, headers });
    const again = await raw(node.url, "POST", path, { token: node.clientToken, body, headers });
    assert.equal(first.status, 201, first.text);
    assert.deepEqual(again.body, first.body);
    const view = await client.status(txn.xid);
    assert.equal(view.branches.length, 1);
    assert.equal((await client.commit(txn.xid)).state, "committed");
    // Applied once: a replayed insert would have failed the branch with a duplicate key.
    assert.equal(await accounts.balance("pg-a", 20), 5);
    // The route promises that a repeat "answers the first answer" — its status too.
    assert.equal(again.status, first.status, "a replay answers the first status");
  });

  test("Idempotency-Key: same key, other statements → 409 idempotency-key-reused", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const path = `/v1/transactions/${txn.xid}/branches`;
    const headers = { "idempotency-key": "enlist-once" };
    const first = await raw(node.url, "POST", path, {
      token: node.clientToken,
      headers,
      body: pgStatements("pg-a", [sql(`insert into ${accounts.table} values (30, 1)`)]),
    });
    assert.equal(first.status, 201, first.text);
    const reused = await raw(node.url, "POST", path, {
      token: node.clientToken,
      headers,
      body: pgStatements("pg-a", [sql(`insert into ${accounts.table} values (31, 1)`)]),
    });
    assert.equal(reused.status, 409, reused.text);
    assert.equal((reused.body as { error: { code: string } }).error.code, "idempotency-key-reused");
    await client.abort(txn.xid);
  });

  test("Idempotency-Key: same key, another participant → 409, no second branch", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const path = `/v1/transactions/${txn.xid}/branches`;
    const headers = { "idempotency-key": "enlist-one-participant" };
    const first = await raw(node.url, "POST", path, {
      token: node.clientToken,
      headers,
      body: pgStatements("pg-a", [sql(`insert into ${accounts.table} values (40, 1)`)]),
    });
    assert.equal(first.status, 201, first.text);
    const reused = await raw(node.url, "POST", path, {
      token: node.clientToken,
      headers,
      body: pgStatements("pg-b", [sql(`insert into ${accounts.table} values (40, 1)`)]),
    });
    const branches = (await client.status(txn.xid)).branches.length;
    await client.abort(txn.xid);
    assert.equal(reused.status, 409, reused.text);
    assert.equal(branches, 1, "the reused key added no branch");
  });

  test("Idempotency-Key on begin: a replay returns the same transaction", async () => {
    const headers = { "idempotency-key": "begin-once" };
    const body = { timeoutMs: 10_000, labels: { k: "v" } };
    const first = await raw(node.url, "POST", "/v1/transactions", {
      token: node.clientToken,
      body,
      headers,
    });
    const again = await raw(node.url, "POST", "/v1/transactions", {
      token: node.clientToken,
      body,
      headers,
    });
    const other = await raw(node.url, "POST", "/v1/transactions", {
      token: node.clientToken,
      body: { timeoutMs: 9_000 },
      headers,
    });
    assert.equal(first.status, 201, first.text);
    assert.equal(again.status, 201, again.text);
    const xid = (first.body as TransactionView).xid;
    assert.equal((again.body as TransactionView).xid, xid);
    assert.equal(other.status, 409, other.text);
    assert.equal((other.body as { error: { code: string } }).error.code, "idempotency-key-reused");
    await client.abort(xid);
  });

  test("GET /v1/transactions/{xid} shows state and branches through the life", async () => {
    const txn = await client.begin({ timeoutMs: 10_000, labels: { order: "42" } });
    await client.enlist(txn.xid, debit(1));
    await client.enlist(txn.xid, credit(1));
    const active = await raw(node.url, "GET", `/v1/transactions/${txn.xid}`, {
      token: node.clientToken,
    });
    assert.equal(active.status, 200, active.text);
    const view = active.body as TransactionView;
    assert.equal(view.xid, txn.xid);
    assert.equal(view.state, "active");
    assert.deepEqual(view.labels, { order: "42" });
    assert.equal(view.deadline, txn.deadline);
    assert.deepEqual(
      view.branches.map((b) => [b.branch, b.participant, b.kind, b.state]),
      [
        [1, "pg-a", "postgres", "enlisted"],
        [2, "pg-b", "postgres", "enlisted"],
      ],
    );
    await client.commit(txn.xid);
    const done = await client.status(txn.xid);
    assert.equal(done.state, "committed");
    assert.equal(done.decision, "commit");
    assert.deepEqual(
      done.branches.map((b) => b.state),
      ["committed", "committed"],
    );
  });

  test("a single-branch transaction commits in one phase with its marker", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const { branchId } = await client.enlist(
      txn.xid,
      pgStatements("pg-b", [sql(`insert into ${accounts.table} values (50, 7)`)]),
    );
    const view = await client.commit(txn.xid);
    assert.equal(view.state, "committed");
    assert.equal(await accounts.balance("pg-b", 50), 7);
    assert.ok(await accounts.markerExists("pg-b", node.schema, branchId), "marker committed");
  });

  test("prepare-only endpoint leaves both branches prepared; commit then finishes", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const a = await client.enlist(txn.xid, debit(5));
    const b = await client.enlist(txn.xid, credit(5));
    const before = [await accounts.balance("pg-a", 1), await accounts.balance("pg-b", 1)];

    const prepared = await raw(node.url, "POST", `/v1/transactions/${txn.xid}/prepare`, {
      token: node.clientToken,
      body: {},
    });
    assert.equal(prepared.status, 200, prepared.text);
    const view = prepared.body as TransactionView;
    assert.equal(view.state, "prepared");
    assert.deepEqual(
      view.branches.map((br) => [br.state, br.vote]),
      [
        ["prepared", "yes"],
        ["prepared", "yes"],
      ],
    );
    const gids = (await preparedOf(node.node.clusterId)).map((r) => [r.gid, r.database]);
    assert.deepEqual(gids.sort(), [
      [a.branchId, "verdict_a"],
      [b.branchId, "verdict_b"],
    ]);
    // Prepared, not committed: nothing visible yet.
    assert.deepEqual(
      [await accounts.balance("pg-a", 1), await accounts.balance("pg-b", 1)],
      before,
    );

    const committed = await client.commit(txn.xid);
    assert.equal(committed.state, "committed");
    assert.equal(await accounts.balance("pg-a", 1), (before[0] ?? 0) - 5);
    assert.equal(await accounts.balance("pg-b", 1), (before[1] ?? 0) + 5);
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
  });
});
