/**
 * A DBA's ROLLBACK PREPARED, seen through the coordinator (G2: detected and reported, never
 * hidden): a prepared two-branch transfer loses branch 1 by hand, the client commits, and the
 * transaction ends committed with `heuristic: "heuristic-mixed"` — branch 1
 * `heuristic-rollback`, branch 2 committed (pg-b has the credit, pg-a never had the debit).
 * The metric counts the branch, the admin list shows the case, and it outlives the retention
 * time (a plain transaction committed beside it is forgotten meanwhile) until an operator
 * forgets it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { VerdictClient } from "../../../client/index.js";
import type { AdminListResponse } from "../../../coordinator/api/contract/schemas.js";
import {
  adminView,
  createAccounts,
  dbaRollback,
  metricValue,
  preparedOf,
  preparedTransfer,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
} from "./harness.js";

const retentionMs = 300;
/** A transaction is forgotten after its deadline too (plus the clock skew): keep both short. */
const clockSkewMsMax = 100;
const plainTimeoutMs = 3_000;

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

before(async () => {
  node = await startApiNode({ protocol: { retentionMs, clockSkewMsMax } });
  accounts = await createAccounts({
    "pg-a": [
      [1, 100],
      [2, 100],
    ],
    "pg-b": [
      [1, 100],
      [2, 100],
    ],
  });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
});
after(async () => {
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
  }
});

async function listed(): Promise<AdminListResponse["transactions"]> {
  const answer = await raw(node.url, "GET", "/admin/v1/transactions", { token: node.adminToken });
  assert.equal(answer.status, 200, answer.text);
  return (answer.body as AdminListResponse).transactions;
}

describe("a DBA rolls a prepared branch back", () => {
  test("the commit ends heuristic-mixed, counted, listed, and kept until an operator forgets it", async () => {
    const txn = await preparedTransfer(client, accounts, 1, 10);
    const gidA = txn.branches[0]?.branchId;
    assert.ok(gidA);
    await dbaRollback("pg-a", gidA);
    await client.commit(txn.xid);

    const view = await waitFor("the transaction finished", async () => {
      const v = await adminView(node, txn.xid);
      return v?.state === "committed" ? v : undefined;
    });
    assert.equal(view.decision, "commit");
    assert.equal(view.heuristic, "heuristic-mixed");
    assert.deepEqual(
      view.branches.map((b) => [b.branch, b.state]),
      [
        [1, "heuristic-rollback"],
        [2, "committed"],
      ],
    );
    assert.ok(
      view.history.some((h) => h.entry === "heuristic"),
      JSON.stringify(view.history),
    );
    assert.equal(await accounts.balance("pg-a", 1), 100, "the DBA's rollback stands");
    assert.equal(await accounts.balance("pg-b", 1), 110);
    assert.deepEqual(await preparedOf(node.node.clusterId), []);
    assert.equal(
      await metricValue(node.url, "verdict_heuristic_outcomes_total", {
        outcome: "heuristic-rollback",
      }),
      1,
    );
    assert.equal(await metricValue(node.url, "verdict_heuristic_outcomes_total"), 1);
    const row = (await listed()).find((t) => t.xid === txn.xid);
    assert.equal(row?.heuristic, "heuristic-mixed");
    assert.equal(row?.state, "committed");

    // Past the retention time a plain transaction is forgotten; the heuristic case is not.
    const plain = await preparedTransfer(client, accounts, 2, 10, plainTimeoutMs);
    assert.equal((await client.commit(plain.xid)).state, "committed");
    await waitFor("the plain transaction forgotten", async () =>
      (await adminView(node, plain.xid)) === undefined ? true : undefined,
    );
    assert.ok(Date.now() - Date.parse(view.history.at(-1)?.at ?? "") > retentionMs);
    assert.equal((await adminView(node, txn.xid))?.heuristic, "heuristic-mixed");
    assert.ok((await listed()).some((t) => t.xid === txn.xid));

    const forget = await raw(node.url, "POST", `/admin/v1/transactions/${txn.xid}/resolve`, {
      token: node.adminToken,
      body: { action: "forget", reason: "pg-a row 1 credited back by hand, ticket OPS-12" },
    });
    assert.equal(forget.status, 200, forget.text);
    assert.equal(await adminView(node, txn.xid), undefined);
    assert.ok(!(await listed()).some((t) => t.xid === txn.xid));
  });
});
