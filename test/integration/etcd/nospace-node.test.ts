/**
 * A real Verdict process in etcd mode over a throwaway one-member etcd with a 4 MiB quota
 * (tiny-etcd.ts) and the real PostgreSQL. Junk keys outside Verdict's prefix raise etcd's
 * NOSPACE alarm while a transfer is prepared and its commit is asked. Proves that under the
 * alarm the node is not ready (/readyz 503 naming the log's `no-space` state, /healthz the
 * same, `verdict_log_nospace` 1), begin — alone or as a one-request transaction — answers 503
 * `log-full` and changes nothing, the prepared transfer is held (still prepared in PostgreSQL,
 * not rolled back) and the leader keeps its term; and that after docs/etcd.md's runbook
 * (etcdctl: delete the junk, compact, defrag, alarm disarm) the node is ready again, the held
 * commit answers `committed` with its rows in PostgreSQL, a new transfer commits, and the term
 * never changed.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Etcd3 } from "etcd3";
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import { startCluster, type Cluster } from "../../support/cluster.js";
import { ensureBuilt, killLeftovers } from "../../support/process-node.js";
import {
  assertError,
  createAccounts,
  metricValue,
  preparedOf,
  preparedTransfer,
  raw,
  waitFor,
  type Accounts,
} from "../api/harness.js";
import { connect } from "./helpers.js";
import { fillUntilNoSpace, runNoSpaceRunbook, startTinyEtcd, type TinyEtcd } from "./tiny-etcd.js";

const junkPrefix = "/nospace-junk/";

describe("a node whose etcd raises NOSPACE", () => {
  let etcd: TinyEtcd;
  let admin: Etcd3;
  let accounts: Accounts;
  let cluster: Cluster;

  before(async () => {
    ensureBuilt();
    etcd = await startTinyEtcd();
    admin = connect([etcd.endpoint]);
    accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
    cluster = await startCluster({ nodes: 1, endpoints: [etcd.endpoint] });
  });
  after(async () => {
    await cluster?.destroy().catch(() => undefined);
    await killLeftovers();
    admin?.close();
    await accounts?.drop();
    await etcd?.stop();
  });

  test("is not ready and refuses begin, holds the prepared commit, resumes after the runbook", async (t) => {
    const { node, term } = await cluster.waitForLeader();
    t.diagnostic(`leader ${node.id}, term ${term}`);
    const url = node.url;
    const client = new VerdictClient({
      baseUrl: url,
      token: cluster.clientToken,
      timeoutMs: 60_000,
    });
    const held = await preparedTransfer(client, accounts, 1, 100);
    const stateOf = async (xid: string) => (await client.status(xid)).state;

    await fillUntilNoSpace(admin, junkPrefix);
    // The decision's append meets the alarm: held back and re-sent, the call waits.
    const commit = client.commit(held.xid);
    const notReady = await waitFor("readiness 503", async () => {
      const r = await raw(url, "GET", "/readyz");
      return r.status === 503 ? r : undefined;
    });
    assertError(notReady, 503, "unavailable", "readyz");
    assert.match(notReady.text, /no-space/);
    const health = await raw(url, "GET", "/healthz");
    assert.equal((health.body as { log: { state: string } }).log.state, "no-space");
    assert.equal(await metricValue(url, "verdict_log_nospace"), 1);

    const begin = await raw(url, "POST", "/v1/transactions", {
      token: cluster.clientToken,
      body: {},
    });
    assertError(begin, 503, "log-full", "begin");
    const whole = await raw(url, "POST", "/v1/transactions", {
      token: cluster.clientToken,
      body: {
        branches: [
          pgStatements("pg-a", [
            sql(`update ${accounts.table} set balance = balance - 7 where id = 1`, []),
          ]),
        ],
        commit: true,
      },
    });
    assertError(whole, 503, "log-full", "one-request transaction");

    await sleep(3_000); // several lease renewals and re-sends under the alarm
    assert.equal((await cluster.view(node)).term, term, "the leader keeps its term");
    assert.equal(await metricValue(url, "verdict_leadership_changes_total", { change: "lost" }), 0);
    assert.equal(await stateOf(held.xid), "prepared");
    assert.equal((await preparedOf(cluster.clusterId)).length, 2, "both branches still prepared");
    assert.equal(await accounts.balance("pg-a", 1), 1000);
    assert.equal(await accounts.balance("pg-b", 1), 0);

    await runNoSpaceRunbook(etcd, junkPrefix);
    assert.equal((await commit).state, "committed");
    await waitFor("readiness 200", async () =>
      (await raw(url, "GET", "/readyz")).status === 200 ? true : undefined,
    );
    assert.equal(await metricValue(url, "verdict_log_nospace"), 0);
    await waitFor("phase 2 done", async () =>
      (await preparedOf(cluster.clusterId)).length === 0 ? true : undefined,
    );
    assert.equal(await accounts.balance("pg-a", 1), 900);
    assert.equal(await accounts.balance("pg-b", 1), 100);

    const next = await preparedTransfer(client, accounts, 1, 50);
    assert.equal((await client.commit(next.xid)).state, "committed");
    await waitFor("the new transfer's phase 2", async () =>
      (await accounts.balance("pg-b", 1)) === 150 ? true : undefined,
    );
    assert.equal(await accounts.balance("pg-a", 1), 850);
    assert.equal((await cluster.view(node)).term, term, "no failover at any point");
  });
});
