/**
 * A whole transaction in one request (`POST /v1/transactions` with `branches` and
 * `commit: true`), against a real node and two PostgreSQL databases (balances read
 * directly):
 * - a transfer commits on both databases and answers 200 committed with both branches;
 * - a branch that votes no aborts it: 409 transaction-aborted, neither database changed;
 * - a retry with the same Idempotency-Key answers the same transaction and moves the money
 *   once; the same key with another body is refused;
 * - a branch the token may not enlist, or an unknown participant, is refused before anything
 *   begins (no transaction, no change); an empty `branches` list is a 400;
 * - without `commit`, the branches are enlisted and the transaction is left active;
 * - `commit: true` without branches commits the empty transaction at once (200 committed);
 * - the SDK's `transact` does the same in one call.
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
  assertError,
  createAccounts,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "./harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

const move = (db: "pg-a" | "pg-b", sign: "-" | "+", amount: number, id = 1) =>
  pgStatements(db, [
    sql(`update ${accounts.table} set balance = balance ${sign} $1 where id = $2`, [amount, id], {
      expectRows: 1,
    }),
  ]);
const transfer = (amount: number, id = 1) => [
  move("pg-a", "-", amount, id),
  move("pg-b", "+", amount, id),
];

before(async () => {
  node = await startApiNode({ scopedParticipants: ["pg-a"] });
  accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
});

after(async () => {
  client?.close();
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
  }
});

const balances = async () => [await accounts.balance("pg-a", 1), await accounts.balance("pg-b", 1)];
const post = (body: unknown, headers: Record<string, string> = {}, token = node.clientToken) =>
  raw(node.url, "POST", "/v1/transactions", { token, body, headers });

describe("one-request transactions", () => {
  test("a transfer commits on both databases: 200 committed with its branches", async () => {
    const before = await balances();
    const answer = await post({ timeoutMs: 10_000, branches: transfer(10), commit: true });
    assert.equal(answer.status, 200, answer.text);
    const view = answer.body as TransactionView;
    assert.equal(view.state, "committed");
    assert.deepEqual(
      view.branches.map((b) => [b.participant, b.state]),
      [
        ["pg-a", "committed"],
        ["pg-b", "committed"],
      ],
    );
    assert.deepEqual(await balances(), [before[0]! - 10, before[1]! + 10]);
  });

  test("a no vote aborts it: 409 transaction-aborted, nothing changed", async () => {
    const before = await balances();
    // Row 2 does not exist: the credit expects one row and votes no.
    const answer = await post({
      branches: [move("pg-a", "-", 5), move("pg-b", "+", 5, 2)],
      commit: true,
    });
    assertError(answer, 409, "transaction-aborted");
    assert.equal((answer.body as { reason: { code: string } }).reason.code, "vote-no");
    assert.deepEqual(await balances(), before);
  });

  test("a retry with the same Idempotency-Key repeats nothing", async () => {
    const before = await balances();
    const body = { branches: transfer(7), commit: true };
    const headers = { "idempotency-key": `one-request-${Date.now()}` };
    const first = await post(body, headers);
    const again = await post(body, headers);
    assert.equal(first.status, 200, first.text);
    assert.equal(again.status, 200, again.text);
    assert.equal((again.body as TransactionView).xid, (first.body as TransactionView).xid);
    assert.deepEqual(await balances(), [before[0]! - 7, before[1]! + 7]);
    assertError(
      await post({ ...body, labels: { other: "body" } }, headers),
      409,
      "idempotency-key-reused",
    );
  });

  test("a refused branch begins nothing", async () => {
    const before = await balances();
    const listed = async () => {
      const answer = await raw(node.url, "GET", "/admin/v1/transactions?limit=500", {
        token: node.adminToken,
      });
      const body = answer.body as { transactions: { xid: string }[] };
      return body.transactions.map((t) => t.xid);
    };
    const known = new Set(await listed());
    // The other token may enlist only pg-a.
    assertError(
      await post({ branches: transfer(3), commit: true }, {}, node.otherClientToken),
      403,
      "participant-forbidden",
    );
    assertError(
      await post({ branches: [{ participant: "pg-nowhere", statements: [{ sql: "select 1" }] }] }),
      400,
      "unknown-participant",
    );
    assertError(await post({ commit: true, branches: [] }), 400, "validation-failed");
    const begun = (await listed()).filter((xid) => !known.has(xid));
    assert.deepEqual(begun, [], "no transaction was begun");
    assert.deepEqual(await balances(), before);
  });

  test("commit: true without branches commits the empty transaction at once", async () => {
    const answer = await post({ commit: true });
    assert.equal(answer.status, 200, answer.text);
    assert.equal((answer.body as { state: string }).state, "committed");
  });

  test("without commit the branches are enlisted and the transaction stays active", async () => {
    const answer = await post({ branches: transfer(1) });
    assert.equal(answer.status, 201, answer.text);
    const view = answer.body as TransactionView;
    assert.equal(view.state, "active");
    assert.equal(view.branches.length, 2);
    assert.equal((await client.abort(view.xid)).state, "aborted");
  });

  test("the SDK's transact commits in one call, and throws when it aborts", async () => {
    const before = await balances();
    const view = await client.transact(transfer(4), { timeoutMs: 10_000 });
    assert.equal(view.state, "committed");
    await assert.rejects(
      client.transact([move("pg-a", "-", 4), move("pg-b", "+", 4, 2)]),
      TransactionAbortedError,
    );
    assert.deepEqual(await balances(), [before[0]! - 4, before[1]! + 4]);
  });
});
