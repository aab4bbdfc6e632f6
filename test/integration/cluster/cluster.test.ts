/**
 * Three Verdict processes over the real etcd of deploy/local (each test its own cluster id)
 * and the real PostgreSQL. Proves: the nodes elect exactly one leader and every node's view
 * names it; a commit sent to a standby is forwarded and lands (balances read from
 * PostgreSQL); a forwarded call naming a term the leader does not hold answers 503
 * not-leader with a hint; after the leader is SIGKILLed another node leads within about the
 * lease TTL, finishes phase 2 of a transaction decided before the kill, finishes (does not
 * roll back) a prepared one, and answers 409 aborted `leader-changed` for a transaction the
 * dead leader began that never reached preparing (the SDK's runTransaction begins such a one
 * again and commits it); and an operator hands leadership to a named
 * node, through any node, by the API or the CLI.
 */
import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import pg from "pg";
import {
  pgStatements,
  runTransaction,
  sql,
  VerdictClient,
  TransactionAbortedError,
} from "../../../client/index.js";
import { createAccounts, raw, type Accounts } from "../api/harness.js";
import { startCluster, type Cluster } from "../../support/cluster.js";
import { ensureBuilt, killLeftovers } from "../../support/process-node.js";
import { services } from "../../support/services.js";
import { runCli, shown } from "../cli/cli.js";

const leaseTtlMs = 3_000;

function transferBranches(accounts: Accounts, id: number, amount: number) {
  return (["pg-a", "pg-b"] as const).map((db) =>
    pgStatements(db, [
      sql(
        `update ${accounts.table} set balance = balance ${db === "pg-a" ? "-" : "+"} $1 where id = $2`,
        [amount, id],
        { expectRows: 1 },
      ),
    ]),
  );
}

async function transfer(client: VerdictClient, accounts: Accounts, id: number, amount: number) {
  const { xid } = await client.begin({ timeoutMs: 60_000 });
  for (const b of transferBranches(accounts, id, amount)) await client.enlist(xid, b);
  return xid;
}

async function preparedGids(clusterId: string): Promise<string[]> {
  const gids: string[] = [];
  for (const url of [services.pgUrlA, services.pgUrlB]) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      const { rows } = await c.query<{ gid: string }>(
        "select gid from pg_prepared_xacts where gid like $1",
        [`${clusterId}:%`],
      );
      gids.push(...rows.map((r) => r.gid));
    } finally {
      await c.end();
    }
  }
  return gids;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Runs `work`; a failure quotes every node's log. */
async function withLogs(cluster: Cluster, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (e) {
    const logs = cluster.nodes.map((n) => `---- ${n.id}\n${n.logTail()}`).join("\n");
    throw new Error(`${String(e)}\n${logs}`, { cause: e });
  }
}

before(() => ensureBuilt());
after(() => killLeftovers());

describe("a three-node cluster over etcd", () => {
  let cluster: Cluster;
  let accounts: Accounts;

  before(async () => {
    accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
    cluster = await startCluster({ nodes: 3, log: { leaseTtlMs } });
  });
  after(async () => {
    await cluster?.destroy();
    await accounts?.drop();
  });

  test("elects one leader that every node names", async () => {
    const { node: leader, term } = await cluster.waitForLeader();
    for (const n of cluster.nodes) {
      const v = await cluster.view(n);
      assert.equal(v.leaderId, leader.id, `${n.id}'s view`);
      assert.equal(v.term, term);
      assert.deepEqual(v.members.map((m) => m.id).sort(), ["n1", "n2", "n3"]);
      assert.deepEqual(
        v.members.filter((m) => m.leader).map((m) => m.id),
        [leader.id],
      );
    }
  });

  test("a commit sent to a standby is forwarded and lands in PostgreSQL", async () => {
    const { node: leader } = await cluster.waitForLeader();
    const standby = cluster.nodes.find((n) => n.id !== leader.id);
    assert.ok(standby);
    // Only the standby's URL: the SDK cannot find the leader by itself.
    const client = new VerdictClient({ baseUrl: standby.url, token: cluster.clientToken });
    const xid = await transfer(client, accounts, 1, 100);
    const done = await client.commit(xid);
    assert.equal(done.state, "committed");
    assert.equal(client.baseUrl, standby.url.replace(/\/$/, ""));
    assert.equal(await accounts.balance("pg-a", 1), 900);
    assert.equal(await accounts.balance("pg-b", 1), 100);
    // Reads through the standby are the leader's answers.
    assert.equal((await client.status(xid)).state, "committed");
  });

  test("a call naming a term the node does not lead answers 503 not-leader with a hint", async () => {
    const { node: leader, term } = await cluster.waitForLeader();
    const answer = await raw(leader.url, "GET", "/v1/transactions/x1", {
      token: cluster.clientToken,
      headers: { "verdict-target-term": String(term - 1) },
    });
    assert.equal(answer.status, 503, answer.text);
    const body = answer.body as { error: { code: string; details: { leaderId?: string } } };
    assert.equal(body.error.code, "not-leader");
    const standby = cluster.nodes.find((n) => n.id !== leader.id);
    assert.ok(standby);
    // A forwarded call that reached a standby is not forwarded again: one hop at most.
    const loop = await raw(standby.url, "GET", "/v1/transactions/x1", {
      token: cluster.clientToken,
      headers: { "verdict-target-term": String(term) },
    });
    assert.equal(loop.status, 503, loop.text);
    assert.equal(
      (loop.body as { error: { details: { leaderId?: string } } }).error.details.leaderId,
      leader.id,
    );
  });
  test("leadership is handed over to a named node, and work goes on there", async () => {
    const { node: leader, term } = await cluster.waitForLeader();
    const [standby, other] = cluster.nodes.filter((n) => n.id !== leader.id);
    assert.ok(standby && other);
    // Sent to the other standby: forwarded to the leader like any call.
    const answer = await raw(other.url, "POST", "/admin/v1/cluster/leadership", {
      token: cluster.adminToken,
      body: { to: standby.id },
    });
    assert.equal(answer.status, 202, answer.text);
    assert.deepEqual(answer.body, { fromNodeId: leader.id, fromTerm: term, to: standby.id });
    const next = await cluster.waitForLeader({ not: leader.id, timeoutMs: 10_000 });
    assert.equal(next.node.id, standby.id);
    assert.ok(next.term > term);
    const client = new VerdictClient({ baseUrl: leader.url, token: cluster.clientToken });
    const xid = await transfer(client, accounts, 1, 10);
    assert.equal((await client.commit(xid)).state, "committed");
    assert.equal(await accounts.balance("pg-b", 1), 110);
    // A node that is not live is refused.
    const refused = await raw(standby.url, "POST", "/admin/v1/cluster/leadership", {
      token: cluster.adminToken,
      body: { to: "n9" },
    });
    assert.equal(refused.status, 409, refused.text);
  });
  test("the CLI shows the cluster and hands leadership over", async () => {
    const { node: leader, term } = await cluster.waitForLeader();
    const target = cluster.nodes.find((n) => n.id !== leader.id);
    assert.ok(target);
    const env = { VERDICT_ADMIN_TOKEN: cluster.adminToken };
    const shownCluster = await runCli(["admin", "cluster", "--url", target.url], env);
    assert.equal(shownCluster.code, 0, shown(shownCluster));
    assert.match(shownCluster.stdout, /^mode\s+etcd$/m);
    assert.match(shownCluster.stdout, new RegExp(`^leader\\s+${leader.id} `, "m"));
    assert.match(shownCluster.stdout, new RegExp(`^  ${leader.id}\\s+leader\\s+yes`, "m"));
    const handedOver = await runCli(
      ["admin", "cluster", "handover", "--to", target.id, "--url", target.url],
      env,
    );
    assert.equal(handedOver.code, 0, shown(handedOver));
    assert.match(handedOver.stdout, new RegExp(`resigned term ${term}; ${target.id} takes over`));
    assert.equal((await cluster.waitForLeader({ not: leader.id })).node.id, target.id);
  });
});

describe("failover after SIGKILL of the leader", () => {
  let cluster: Cluster;
  let accounts: Accounts;

  before(async () => {
    accounts = await createAccounts({
      "pg-a": [
        [1, 1000],
        [2, 1000],
        [3, 1000],
      ],
      "pg-b": [
        [1, 0],
        [2, 0],
        [3, 0],
      ],
    });
    cluster = await startCluster({
      nodes: 3,
      log: { leaseTtlMs },
      start: false,
    });
    // n1 starts first and leads; its first phase-2 commit call never returns.
    await cluster.node("n1").start({ failpoints: "before-commit=hang" });
    await cluster.node("n2").start();
    await cluster.node("n3").start();
  });
  after(async () => {
    await cluster?.destroy();
    await accounts?.drop();
  });

  test("another node leads within the TTL and finishes what the dead leader began", (t) =>
    withLogs(cluster, () => failover(t)));

  async function failover(t: TestContext): Promise<void> {
    const { node: first, term: firstTerm } = await cluster.waitForLeader();
    assert.equal(first.id, "n1");
    // The SDK's default retries outlast a failover (client/client.ts defaultRetryPolicy).
    const client = new VerdictClient({ baseUrls: cluster.urls(), token: cluster.clientToken });
    // Prepared (a `preparing` entry, both branches voted yes), not yet decided.
    const prepared = await transfer(client, accounts, 2, 50);
    assert.equal((await client.prepare(prepared)).state, "prepared");
    // Decided commit; phase 2 hangs on its first branch, and so does this call.
    const decided = await transfer(client, accounts, 1, 70);
    const committing = client.commit(decided).catch((e: unknown) => e);
    await until(
      "the decision is applied",
      async () => ((await client.status(decided)).state === "committing" ? true : undefined),
      10_000,
    );
    // Begun only: it lives in the leader's memory alone.
    const begun = await client.begin({ timeoutMs: 60_000 });
    // The SDK's runTransaction: its first attempt is begun, then enlists after the kill.
    let attempts = 0;
    let killed!: () => void;
    const afterKill = new Promise<void>((resolve) => (killed = resolve));
    let begunFirst!: () => void;
    const firstBegun = new Promise<void>((resolve) => (begunFirst = resolve));
    const restarted = runTransaction(client, async (xid) => {
      attempts += 1;
      if (attempts === 1) {
        begunFirst();
        await afterKill;
      }
      for (const b of transferBranches(accounts, 3, 5)) await client.enlist(xid, b);
    }).catch((e: unknown) => e);
    await firstBegun;

    const killedAt = Date.now();
    await first.kill("SIGKILL");
    const { node: next, term } = await cluster.waitForLeader({ not: first.id });
    const takeoverMs = Date.now() - killedAt;
    killed();
    t.diagnostic(
      `SIGKILL to the next leader serving: ${takeoverMs} ms (lease TTL ${leaseTtlMs} ms)`,
    );
    assert.ok(term > firstTerm);
    assert.ok(takeoverMs < leaseTtlMs + 3_000, `took over after ${takeoverMs} ms`);

    const survivors = new VerdictClient({ baseUrl: next.url, token: cluster.clientToken });
    // Phase 2 resumed by the new leader.
    await until(
      "the decided transfer committed",
      async () => ((await survivors.status(decided)).state === "committed" ? true : undefined),
      15_000,
    );
    assert.equal(await accounts.balance("pg-a", 1), 930);
    assert.equal(await accounts.balance("pg-b", 1), 70);
    // The SDK's call, cut off by the kill, finds the outcome on the new leader.
    const told = await committing;
    assert.equal((told as { state?: string }).state, "committed", String(told));
    // The prepared one is re-driven, not rolled back: the client's commit finishes it.
    assert.equal((await survivors.commit(prepared)).state, "committed");
    assert.equal(await accounts.balance("pg-a", 2), 950);
    assert.equal(await accounts.balance("pg-b", 2), 50);
    // The begun one died with its leader, and says so.
    await assert.rejects(survivors.commit(begun.xid), (e: unknown) => {
      assert.ok(e instanceof TransactionAbortedError, String(e));
      assert.equal(e.reason?.code, "leader-changed");
      return true;
    });
    // The SDK began the lost one again, on the new leader, and committed it.
    const again = await restarted;
    assert.equal((again as { view?: { state: string } }).view?.state, "committed", String(again));
    assert.equal(attempts, 2);
    assert.equal(await accounts.balance("pg-b", 3), 5);
    assert.deepEqual(await preparedGids(cluster.clusterId), []);
  }
});
