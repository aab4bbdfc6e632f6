/**
 * The decision watch in a cluster: two Verdict processes over the real etcd of deploy/local
 * (a cluster id of this test) and the real PostgreSQL. Proves:
 * - a standby does not forward an event stream: it answers 503 not-leader naming the leader's
 *   URL, and the SDK's outcome() sent to the standby follows it and resolves `committed`;
 * - a leadership change ends the stream on the old leader (without a finished state), and the
 *   SDK's outcome(), waiting since before the handover, subscribes again on the new leader
 *   and resolves `committed` once the new leader commits (balances read from PostgreSQL).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import { openStream, statesOf } from "../api/event-stream.js";
import { createAccounts, raw, type Accounts } from "../api/harness.js";
import { startCluster, type Cluster } from "../../support/cluster.js";
import { ensureBuilt, killLeftovers } from "../../support/process-node.js";

const leaseTtlMs = 3_000;

async function preparedTransfer(client: VerdictClient, accounts: Accounts, amount: number) {
  const { xid } = await client.begin({ timeoutMs: 60_000 });
  for (const db of ["pg-a", "pg-b"] as const) {
    const sign = db === "pg-a" ? "-" : "+";
    const update = `update ${accounts.table} set balance = balance ${sign} $1 where id = 1`;
    await client.enlist(xid, pgStatements(db, [sql(update, [amount], { expectRows: 1 })]));
  }
  assert.equal((await client.prepare(xid)).state, "prepared");
  return xid;
}

before(() => ensureBuilt());
after(() => killLeftovers());

describe("event streams in a cluster", () => {
  let cluster: Cluster;
  let accounts: Accounts;

  before(async () => {
    accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
    cluster = await startCluster({ nodes: 2, log: { leaseTtlMs } });
  });
  after(async () => {
    await cluster?.destroy();
    await accounts?.drop();
  });

  test("a standby answers not-leader with the leader's URL; outcome() follows it", async () => {
    const { node: leader } = await cluster.waitForLeader();
    const standby = cluster.nodes.find((n) => n.id !== leader.id);
    assert.ok(standby);
    const client = new VerdictClient({ baseUrl: leader.url, token: cluster.clientToken });
    const xid = await preparedTransfer(client, accounts, 10);
    const refused = await raw(standby.url, "GET", `/v1/transactions/${xid}/events`, {
      token: cluster.clientToken,
    });
    assert.equal(refused.status, 503, refused.text);
    const error = (refused.body as { error: { code: string; details: { leaderUrl?: string } } })
      .error;
    assert.equal(error.code, "not-leader");
    assert.equal(error.details.leaderUrl, leader.url);

    const viaStandby = new VerdictClient({ baseUrl: standby.url, token: cluster.clientToken });
    const waiting = viaStandby.outcome(xid, { timeoutMs: 20_000 });
    await sleep(300);
    await client.commit(xid);
    assert.equal((await waiting).state, "committed");
    assert.equal(viaStandby.baseUrl, leader.url, "the SDK moved to the leader");
    client.close();
    viaStandby.close();
  });

  test("a leadership change ends the stream; outcome() subscribes again and resolves", async () => {
    const { node: leader, term } = await cluster.waitForLeader();
    const standby = cluster.nodes.find((n) => n.id !== leader.id);
    assert.ok(standby);
    const client = new VerdictClient({
      baseUrls: [leader.url, standby.url],
      token: cluster.clientToken,
    });
    const xid = await preparedTransfer(client, accounts, 5);
    const stream = await openStream(
      leader.url,
      `/v1/transactions/${xid}/events`,
      cluster.clientToken,
    );
    assert.equal(stream.status, 200);
    const waiting = client.outcome(xid, { timeoutMs: 30_000 });
    await sleep(500);
    assert.deepEqual(statesOf(stream), ["prepared"]);

    const handover = await raw(leader.url, "POST", "/admin/v1/cluster/leadership", {
      token: cluster.adminToken,
      body: { to: standby.id },
    });
    assert.equal(handover.status, 202, handover.text);
    await stream.ended;
    assert.deepEqual(statesOf(stream), ["prepared"], "ended without a finished state");
    const next = await cluster.waitForLeader({ not: leader.id, timeoutMs: 10_000 });
    assert.ok(next.term > term);

    const committer = new VerdictClient({ baseUrl: next.node.url, token: cluster.clientToken });
    assert.equal((await committer.commit(xid)).state, "committed");
    const view = await waiting;
    assert.equal(view.state, "committed");
    assert.equal(await accounts.balance("pg-b", 1), 15);
    client.close();
    committer.close();
  });
});
