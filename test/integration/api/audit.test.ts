/**
 * The audit trail on a real node (GET /admin/v1/audit):
 * - an operator's resolve is recorded with who, what, why, and the state before and after;
 * - refused admin calls are recorded too: without a token (principal null, 401), with a
 *   client token (403 forbidden), and an action the engine refuses (409, with its code);
 * - a heuristic outcome (a DBA's ROLLBACK PREPARED found by phase 2) is recorded by the node;
 * - the records outlive `forget`, which removes the heuristic case from the decision log;
 * - pages follow the cursor, oldest first.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { VerdictClient } from "../../../client/index.js";
import type { AuditRecord } from "../../../coordinator/audit/audit-log.js";
import {
  adminView,
  createAccounts,
  dbaRollback,
  preparedTransfer,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
} from "./harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;

before(async () => {
  node = await startApiNode();
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

async function trail(limit = 500): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < 100; i++) {
    const query: string = cursor === null ? `?limit=${limit}` : `?limit=${limit}&cursor=${cursor}`;
    const answer = await raw(node.url, "GET", `/admin/v1/audit${query}`, {
      token: node.adminToken,
    });
    assert.equal(answer.status, 200, answer.text);
    const body = answer.body as { records: AuditRecord[]; nextCursor: string | null };
    out.push(...body.records);
    cursor = body.nextCursor;
    if (cursor === null) return out;
  }
  assert.fail("the audit pages did not end");
}

const resolve = (xid: string, action: string, reason: string) =>
  raw(node.url, "POST", `/admin/v1/transactions/${xid}/resolve`, {
    token: node.adminToken,
    body: { action, reason },
  });

test("an operator's resolve is recorded with state before and after", async () => {
  const txn = await preparedTransfer(client, accounts, 1, 5);
  const answer = await resolve(txn.xid, "abort", "INC-42: client gone");
  assert.equal(answer.status, 200, answer.text);

  const mine = (await trail()).filter((r) => r.xid === txn.xid);
  assert.deepEqual(
    mine.map((r) => [r.principal, r.action, r.status, r.reason, r.stateBefore]),
    [["admin", "adminResolveTransaction", 200, "INC-42: client gone", "prepared"]],
  );
  assert.ok(["aborting", "aborted"].includes(mine[0]?.stateAfter ?? ""), mine[0]?.stateAfter);
  assert.ok(!Number.isNaN(Date.parse(mine[0]?.at ?? "")));
});

test("refused admin calls are recorded with their code", async () => {
  const noToken = await raw(node.url, "GET", "/admin/v1/transactions");
  assert.equal(noToken.status, 401);
  const asClient = await raw(node.url, "GET", "/admin/v1/cluster", { token: node.clientToken });
  assert.equal(asClient.status, 403);
  const txn = await preparedTransfer(client, accounts, 2, 1);
  assert.equal((await client.commit(txn.xid)).state, "committed");
  const refused = await resolve(txn.xid, "abort", "too late");
  assert.equal(refused.status, 409, refused.text);

  const records = await trail();
  const find = (f: (r: AuditRecord) => boolean) => records.find(f);
  assert.ok(
    find((r) => r.principal === null && r.status === 401 && r.action === "adminListTransactions"),
  );
  assert.ok(find((r) => r.principal === "client-a" && r.status === 403 && r.code === "forbidden"));
  const late = find((r) => r.xid === txn.xid && r.status === 409);
  assert.equal(late?.code, "transaction-committed");
  assert.equal(late?.reason, "too late");
  assert.equal(late?.stateBefore, "committed");
});

test("a heuristic outcome is recorded by the node, and outlives forget", async () => {
  const txn = await preparedTransfer(client, accounts, 1, 3);
  const gidA = txn.branches[0]?.branchId;
  assert.ok(gidA);
  await dbaRollback("pg-a", gidA);
  await client.commit(txn.xid);
  const found = await waitFor("the heuristic record", async () =>
    (await trail()).find((r) => r.xid === txn.xid && r.action === "heuristic-outcome"),
  );
  assert.equal(found.principal, null);
  assert.equal(found.branch, 1);
  assert.equal(found.code, "heuristic-rollback");

  await waitFor("finished", async () =>
    (await adminView(node, txn.xid))?.state === "committed" ? true : undefined,
  );
  const forget = await resolve(txn.xid, "forget", "INC-43: accounts fixed by hand");
  assert.equal(forget.status, 200, forget.text);
  assert.equal(await adminView(node, txn.xid), undefined, "forgotten by the log");
  const mine = (await trail()).filter((r) => r.xid === txn.xid);
  assert.deepEqual(
    mine.map((r) => [r.action, r.code ?? r.stateAfter]),
    [
      ["heuristic-outcome", "heuristic-rollback"],
      ["adminResolveTransaction", "forgotten"],
    ],
  );
});

test("pages follow the cursor, oldest first, without gaps", async () => {
  const seqs = (await trail(2)).map((r) => r.seq);
  assert.ok(seqs.length >= 6, `${seqs.length} records`);
  assert.deepEqual(
    seqs,
    seqs.map((_, i) => i + 1),
  );
});
