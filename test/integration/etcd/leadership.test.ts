/**
 * Proves the leadership primitives over the real etcd cluster (docs/etcd.md, "Leadership"):
 * - one leader at a time: a second campaign fails while the election key exists;
 * - demotion by the node's own clock: with every renewal black-holed (a fault proxy cuts the
 *   node's only connection), the node demotes less than one TTL after the send time of its
 *   last acknowledged renewal, while etcd still holds its election key (the lease has not
 *   expired); the key goes once the lease does, and another node can then lead;
 * - confirmLeadership is a linearizable read: it refuses once the key is gone even though the
 *   node's lease clock still says it leads; concurrent callers share one read;
 * - resign deletes the key, and a standby's watch sees it go;
 * - nodes/<id> lists the live nodes with their role; a closed node's entry goes with its lease.
 */
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { NotLeaderError } from "../../../coordinator/log/errors.js";
import type { LostReason } from "../../../coordinator/log/etcd/leadership.js";
import { NodeRegistration, listNodes } from "../../../coordinator/log/etcd/node-registry.js";
import { FaultProxy } from "./fault-proxy.js";
import { endpoints, ensureEtcd, TestCluster } from "./helpers.js";

describe("etcd leadership", () => {
  let cluster: TestCluster;
  before(ensureEtcd);
  beforeEach(() => {
    cluster = new TestCluster();
  });
  afterEach(() => cluster.close());

  test("only one node leads while the election key exists", async () => {
    const a = cluster.node("a");
    const b = cluster.node("b");
    const term = await a.leadership.campaign();
    assert.ok(term !== undefined);
    assert.equal(await b.leadership.campaign(), undefined);
    assert.equal(b.leadership.term, undefined);
    assert.deepEqual(await b.leadership.currentLeader(), {
      nodeId: "a",
      url: "http://a.test",
      term,
    });
  });

  describe("with renewals black-holed", () => {
    let proxy: FaultProxy;
    before(async () => {
      proxy = await FaultProxy.start(Number(endpoints[0]?.split(":")[1]));
    });
    after(() => proxy.close());

    test("the leader demotes before its lease can expire", async (t) => {
      const ttlSeconds = 3;
      const a = cluster.node("a", { leaseTtlSeconds: ttlSeconds, demotionMarginMs: 500 }, [
        proxy.endpoint,
      ]);
      const lost = new Promise<{ atMs: number; reason: LostReason; lastAckSendMs: number }>(
        (resolve) =>
          a.leadership.on({
            lostLeadership: (_term, reason, lastAckSendMs) =>
              resolve({ atMs: performance.now(), reason, lastAckSendMs }),
          }),
      );
      const term = await a.leadership.campaign();
      assert.ok(term !== undefined);
      await sleep(1_500); // at least one renewal acknowledged (every TTL/3)
      proxy.cut();
      const demotion = await lost;
      // At the moment of demotion etcd still holds the key: the lease has not expired.
      const key = await cluster.get(cluster.layout.leader);
      assert.equal(key?.create_revision, String(term), "the lease outlives the demotion");
      assert.equal(demotion.reason, "lease-deadline");
      const sinceAckMs = demotion.atMs - demotion.lastAckSendMs;
      assert.ok(
        sinceAckMs < ttlSeconds * 1000,
        `demoted ${sinceAckMs} ms after the last ack's send`,
      );
      assert.ok(sinceAckMs >= ttlSeconds * 1000 - 500 - 50, `not early: ${sinceAckMs} ms`);
      assert.equal(a.leadership.term, undefined);
      t.diagnostic(
        `demoted ${Math.round(sinceAckMs)} ms after the last acknowledged renewal's send`,
      );

      // The key disappears when the lease expires on etcd's side; then another node leads.
      const b = cluster.node("b");
      let bTerm: number | undefined;
      for (let i = 0; i < 40 && bTerm === undefined; i++) {
        bTerm = await b.leadership.campaign();
        if (bTerm === undefined) await sleep(250);
      }
      assert.ok(bTerm !== undefined && bTerm > term);
    });
  });

  test("confirmLeadership reads etcd: it refuses once the key is gone", async () => {
    const a = cluster.node("a");
    assert.ok(await a.leadership.campaign());
    await Promise.all(Array.from({ length: 20 }, () => a.leadership.confirmLeadership()));
    await cluster.deleteLeaderKey();
    assert.ok(a.leadership.term !== undefined, "the lease clock alone still says leader");
    await assert.rejects(a.leadership.confirmLeadership(), NotLeaderError);
    assert.equal(a.leadership.term, undefined, "and the node stepped down");
  });

  test("concurrent confirmations share one read sent after them", async () => {
    const a = cluster.node("a");
    assert.ok(await a.leadership.campaign());
    let ranges = 0;
    const range = a.client.kv.range.bind(a.client.kv);
    a.client.kv.range = (req, options) => {
      ranges++;
      return range(req, options);
    };
    const first = a.leadership.confirmLeadership(); // in flight
    const later = Array.from({ length: 10 }, () => a.leadership.confirmLeadership());
    await Promise.all([first, ...later]);
    assert.equal(ranges, 2, "one read in flight, one shared by the ten later callers");
  });

  test("resign deletes the key and a standby's watch sees it", async () => {
    const a = cluster.node("a");
    const b = cluster.node("b");
    assert.ok(await a.leadership.campaign());
    let resolveGone = () => {};
    const gone = new Promise<void>((resolve) => (resolveGone = resolve));
    // The watch is established when watchLeader resolves.
    const watcher = await b.leadership.watchLeader((leader) => {
      if (leader === undefined) resolveGone();
    });
    try {
      await a.leadership.resign();
      await gone;
    } finally {
      await watcher.cancel();
    }
    assert.equal(await cluster.get(cluster.layout.leader), undefined);
    assert.ok(await b.leadership.campaign());
  });

  test("nodes register on their own leases; a closed node disappears", async () => {
    const a = new NodeRegistration(cluster.admin, cluster.layout, "a", "http://a.test", 5);
    const b = new NodeRegistration(cluster.admin, cluster.layout, "b", "http://b.test", 5);
    await a.register();
    await b.register();
    await a.setRole("leader");
    const roles = (await listNodes(cluster.admin, cluster.layout)).map((n) => [n.nodeId, n.role]);
    assert.deepEqual(roles, [
      ["a", "leader"],
      ["b", "standby"],
    ]);
    await b.close();
    const left = await listNodes(cluster.admin, cluster.layout);
    assert.deepEqual(
      left.map((n) => n.nodeId),
      ["a"],
    );
    await a.close();
  });
});
