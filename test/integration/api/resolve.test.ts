/**
 * Operators resolve in-doubt transactions by hand (POST /admin/v1/transactions/{xid}/resolve),
 * audited, and only where no guarantee breaks:
 * - commit of a prepared two-branch transaction commits both databases, records an
 *   `operator-resolution` entry with the admin token's id and the reason; a repeat answers 200
 *   and writes nothing;
 * - commit is refused (409 invalid-state, `details.notPrepared`) when a DBA rolled one branch
 *   back first, and nothing changes;
 * - abort rolls a prepared transaction back in both databases; a repeat answers 200; commit
 *   afterwards is refused; abort after a commit decision is refused (transaction-committed);
 * - settle: a committed transaction whose Redis participant died finishes as committed with
 *   that branch `settled-by-operator`, who and why in its history;
 * - forget: refused for anything but a finished heuristic case; after it the xid is 404;
 * - a client token is refused (403), an unknown xid is 404, a missing reason is 400.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import {
  pgStatements,
  redis,
  redisOps,
  sql,
  VerdictClient,
  type TransactionView,
} from "../../../client/index.js";
import type { AdminTransactionView } from "../../../coordinator/api/contract/schemas.js";
import { newXid } from "../../../coordinator/core/ids.js";
import { startThrowawayRedis, type ThrowawayRedis } from "../../support/throwaway-redis.js";
import {
  adminView,
  assertError,
  createAccounts,
  dbaRollback,
  preparedOf,
  preparedTransfer,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
  type RawAnswer,
} from "./harness.js";

interface Resolve {
  readonly action: string;
  readonly reason?: string;
  readonly branch?: number;
}

const resolve = (node: ApiNode, xid: string, body: Resolve, token = node.adminToken) =>
  raw(node.url, "POST", `/admin/v1/transactions/${xid}/resolve`, { token, body });

function ok(answer: RawAnswer): AdminTransactionView {
  assert.equal(answer.status, 200, answer.text);
  return answer.body as AdminTransactionView;
}

/** The admin view once the transaction reached `state` (phase 2 runs after the answer). */
const reach = (node: ApiNode, xid: string, state: string) =>
  waitFor(`${xid} ${state}`, async () => {
    const v = await adminView(node, xid);
    return v?.state === state ? v : undefined;
  });

/**
 * The admin view once the transaction reached `state` and every branch's outcome is logged:
 * the acks record lands after the answer, in the background, and adds to the history.
 */
const settled = (node: ApiNode, xid: string, state: string) =>
  waitFor(`${xid} ${state}, every branch acknowledged`, async () => {
    const v = await adminView(node, xid);
    const acks = v?.history.filter((h) => h.entry === "acknowledge" || h.entry === "heuristic");
    return v?.state === state && acks?.length === v.branches.length ? v : undefined;
  });

const gids = (t: TransactionView) => t.branches.map((b) => b.branchId);

async function preparedGids(node: ApiNode): Promise<string[]> {
  return (await preparedOf(node.node.clusterId)).map((r) => r.gid);
}

describe("resolve on PostgreSQL branches", () => {
  let node: ApiNode;
  let accounts: Accounts;
  let client: VerdictClient;
  const rows = (n: number) => Array.from({ length: n }, (_, i): [number, number] => [i + 1, 100]);

  before(async () => {
    node = await startApiNode();
    accounts = await createAccounts({ "pg-a": rows(6), "pg-b": rows(6) });
    client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  });
  after(async () => {
    try {
      await node?.stop();
    } finally {
      await accounts?.drop();
    }
  });

  const balances = async (id: number) => [
    await accounts.balance("pg-a", id),
    await accounts.balance("pg-b", id),
  ];

  test("commit of a prepared transaction: committed in both, audited; a repeat changes nothing", async () => {
    const txn = await preparedTransfer(client, accounts, 1, 10);
    const reason = "payment confirmed by phone, ticket OPS-1";
    ok(await resolve(node, txn.xid, { action: "commit", reason }));
    const view = await settled(node, txn.xid, "committed");
    assert.equal(view.decision, "commit");
    assert.deepEqual(
      view.branches.map((b) => b.state),
      ["committed", "committed"],
    );
    assert.deepEqual(await balances(1), [90, 110]);
    assert.deepEqual(await preparedGids(node), []);
    const audit = view.history.filter((h) => h.entry === "operator-resolution");
    assert.equal(audit.length, 1, JSON.stringify(view.history));
    assert.equal(audit[0]?.principal, "admin");
    assert.ok(audit[0]?.detail?.includes(reason), audit[0]?.detail);
    assert.equal((await client.status(txn.xid)).state, "committed");

    const repeat = ok(await resolve(node, txn.xid, { action: "commit", reason: "again" }));
    assert.equal(repeat.state, "committed");
    assert.deepEqual((await adminView(node, txn.xid))?.history, view.history);
    assert.deepEqual(await balances(1), [90, 110]);
  });

  test("commit is refused when a DBA rolled a branch back; nothing changes", async () => {
    const txn = await preparedTransfer(client, accounts, 2, 10);
    const [gidA, gidB] = gids(txn);
    assert.ok(gidA && gidB);
    await dbaRollback("pg-a", gidA);
    const before = await adminView(node, txn.xid);

    const refused = await resolve(node, txn.xid, { action: "commit", reason: "looks stuck" });
    assertError(refused, 409, "invalid-state", "commit with a branch rolled back");
    const details = (refused.body as { error: { details: { notPrepared: number[] } } }).error
      .details;
    assert.deepEqual(details.notPrepared, [1]);
    assert.deepEqual(await adminView(node, txn.xid), before);
    assert.deepEqual(await balances(2), [100, 100]);
    assert.deepEqual(await preparedGids(node), [gidB]);

    // Abort is what is left: it rolls back the other branch.
    ok(await resolve(node, txn.xid, { action: "abort", reason: "branch 1 lost" }));
    const aborted = await reach(node, txn.xid, "aborted");
    assert.equal(aborted.heuristic, undefined);
    assert.deepEqual(await preparedGids(node), []);
    assert.deepEqual(await balances(2), [100, 100]);
  });

  test("abort of a prepared transaction rolls back both; abort again is 200; commit then is 409", async () => {
    const txn = await preparedTransfer(client, accounts, 3, 10);
    const reason = "customer cancelled, ticket OPS-3";
    ok(await resolve(node, txn.xid, { action: "abort", reason }));
    const view = await settled(node, txn.xid, "aborted");
    assert.equal(view.reason?.code, "operator-abort");
    assert.ok(view.reason?.message.includes(reason), view.reason?.message);
    assert.deepEqual(
      view.branches.map((b) => b.state),
      ["rolled-back", "rolled-back"],
    );
    const audit = view.history.filter((h) => h.entry === "operator-resolution");
    assert.deepEqual(
      audit.map((h) => h.principal),
      ["admin"],
    );
    assert.deepEqual(await preparedGids(node), []);
    assert.deepEqual(await balances(3), [100, 100]);

    assert.equal(
      ok(await resolve(node, txn.xid, { action: "abort", reason: "again" })).state,
      "aborted",
    );
    assertError(
      await resolve(node, txn.xid, { action: "commit", reason: "changed my mind" }),
      409,
      "invalid-state",
      "commit after abort",
    );
    assert.deepEqual(await adminView(node, txn.xid), view);
    assert.deepEqual(await balances(3), [100, 100]);
  });

  test("abort after a commit decision is refused", async () => {
    const txn = await preparedTransfer(client, accounts, 4, 10);
    assert.equal((await client.commit(txn.xid)).state, "committed");
    const before = await settled(node, txn.xid, "committed");
    assertError(
      await resolve(node, txn.xid, { action: "abort", reason: "too late" }),
      409,
      "transaction-committed",
      "abort after commit",
    );
    assert.deepEqual(await adminView(node, txn.xid), before);
    assert.deepEqual(await balances(4), [90, 110]);
  });

  test("forget: only a finished heuristic case, and then the xid is gone", async () => {
    const committed = await preparedTransfer(client, accounts, 5, 10);
    await client.commit(committed.xid);
    const notHeuristic = await resolve(node, committed.xid, { action: "forget", reason: "tidy" });
    assertError(notHeuristic, 409, "invalid-state", "forget a plain committed one");
    assert.match(notHeuristic.text, /heuristic/);

    const held = await preparedTransfer(client, accounts, 6, 10);
    const undecided = await resolve(node, held.xid, { action: "forget", reason: "tidy" });
    assertError(undecided, 409, "invalid-state", "forget an undecided one");
    assert.match(undecided.text, /finished/);
    assert.equal((await adminView(node, held.xid))?.state, "prepared");

    // The heuristic case: a DBA rolls back branch 1, the client commits anyway.
    const [gidA] = gids(held);
    assert.ok(gidA);
    await dbaRollback("pg-a", gidA);
    await client.commit(held.xid);
    const mixed = await reach(node, held.xid, "committed");
    assert.equal(mixed.heuristic, "heuristic-mixed");
    const reason = "row 6 fixed by hand, ticket OPS-6";
    ok(await resolve(node, held.xid, { action: "forget", reason }));
    assert.equal(await adminView(node, held.xid), undefined);
    assertError(
      await raw(node.url, "GET", `/v1/transactions/${held.xid}`, { token: node.clientToken }),
      404,
      "transaction-not-found",
      "client view after forget",
    );
  });

  test("a client token is 403, an unknown xid 404, a missing reason 400", async () => {
    const txn = await preparedTransfer(client, accounts, 1, 1);
    const before = await adminView(node, txn.xid);
    assertError(
      await resolve(node, txn.xid, { action: "commit", reason: "r" }, node.clientToken),
      403,
      "forbidden",
    );
    assertError(
      await resolve(node, newXid(Date.now(), "ef".repeat(10)), { action: "abort", reason: "r" }),
      404,
      "transaction-not-found",
    );
    assertError(await resolve(node, txn.xid, { action: "commit" }), 400, "validation-failed");
    assert.deepEqual(await adminView(node, txn.xid), before);
    await client.abort(txn.xid);
    assert.deepEqual(await preparedGids(node), []);
  });
});

describe("settle a branch whose participant is gone", () => {
  let server: ThrowawayRedis;
  let node: ApiNode;
  let accounts: Accounts;
  let client: VerdictClient;

  before(async () => {
    server = await startThrowawayRedis();
    node = await startApiNode({
      // Answer 202 soon: phase 2 on the dead server retries for ever.
      protocol: { commitWaitMs: 500 },
      participants: [
        {
          name: "redis-x",
          kind: "redis",
          url: server.url,
          namespace: `vt${randomBytes(6).toString("hex")}`,
          connectTimeoutMs: 200,
          commandTimeoutMs: 200,
        },
      ],
    });
    accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [] });
    client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  });
  after(async () => {
    try {
      await node?.stop();
    } finally {
      await accounts?.drop();
      await server?.dispose();
    }
  });

  test("commit is 202 while redis is down; settle finishes it, audited", async () => {
    const { xid } = await client.begin({ timeoutMs: 60_000 });
    await client.enlist(
      xid,
      pgStatements("pg-a", [
        sql(`update ${accounts.table} set balance = balance - 5 where id = 1`, [], {
          expectRows: 1,
        }),
      ]),
    );
    await client.enlist(xid, redisOps("redis-x", [redis.incrby("acct:1", 5)]));
    assert.equal((await client.prepare(xid)).state, "prepared");

    // Settling is only for decided transactions.
    assertError(
      await resolve(node, xid, { action: "settle", reason: "early" }),
      409,
      "invalid-state",
      "settle before the decision",
    );

    await server.kill();
    const commit = await raw(node.url, "POST", `/v1/transactions/${xid}/commit`, {
      token: node.clientToken,
      body: {},
    });
    assert.equal(commit.status, 202, commit.text);
    assert.equal((commit.body as TransactionView).state, "committing");
    await waitFor("pg-a committed", async () =>
      (await accounts.balance("pg-a", 1)) === 95 ? true : undefined,
    );
    const stuck = await waitFor("phase 2 retried on redis-x", async () => {
      const v = await adminView(node, xid);
      return (v?.branches[1]?.attempts ?? 0) >= 2 ? v : undefined;
    });
    assert.equal(stuck.state, "committing");
    assert.deepEqual(
      stuck.branches.map((b) => b.state),
      ["committed", "committing"],
    );

    assertError(
      await resolve(node, xid, { action: "settle", reason: "r", branch: 3 }),
      404,
      "branch-not-found",
      "settle a branch the transaction lacks",
    );
    const reason = "redis-x lost for good; credited by hand, ticket OPS-9";
    const settled = ok(await resolve(node, xid, { action: "settle", reason, branch: 2 }));
    assert.equal(settled.state, "committed");
    assert.deepEqual(
      settled.branches.map((b) => [b.participant, b.state]),
      [
        ["pg-a", "committed"],
        ["redis-x", "settled-by-operator"],
      ],
    );
    assert.equal(settled.heuristic, undefined);
    const audit = settled.history.filter((h) => h.entry === "operator-resolution");
    assert.equal(audit.length, 1, JSON.stringify(settled.history));
    assert.equal(audit[0]?.principal, "admin");
    assert.ok(audit[0]?.detail?.includes(reason), audit[0]?.detail);
    assert.equal((await client.status(xid)).state, "committed");
    // A repeat finds nothing left to settle.
    const repeat = ok(await resolve(node, xid, { action: "settle", reason: "again" }));
    assert.deepEqual(repeat.history, settled.history);
  });
});
