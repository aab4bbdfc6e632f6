/**
 * Proves that an etcd leader election is not a Verdict failover: with appends running, the
 * etcd member that leads the Raft group is killed (SIGKILL); appends stall for etcd's
 * election, then continue; every append resolves; the Verdict leader keeps its term; and a
 * later takeover replays every acknowledged record, in order, none lost or doubled.
 * The killed member is restarted afterwards (deploy/local/local.sh up etcd).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import {
  ensureEtcd,
  etcdLeaderEndpoint,
  killMember,
  memberOf,
  restartMembers,
  TestCluster,
} from "./helpers.js";

describe("etcd decision log across an etcd leader failure", () => {
  let cluster: TestCluster;
  before(ensureEtcd);
  before(() => {
    cluster = new TestCluster();
  });
  after(async () => {
    restartMembers();
    await cluster.close();
  });

  test("appends continue after etcd elects a new leader, nothing lost", async (t) => {
    const a = cluster.node("a");
    const term = await a.leadership.campaign();
    assert.ok(term !== undefined);
    const log = await cluster.openLog(a);
    const acknowledged: string[] = [];
    let stop = false;
    let lastAckMs = performance.now();
    let longestStallMs = 0;
    // Eight writers, each appending one record at a time until told to stop.
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const record = `w${w}-${i}`;
        await log.append([record]);
        acknowledged.push(record);
        longestStallMs = Math.max(longestStallMs, performance.now() - lastAckMs);
        lastAckMs = performance.now();
      }
    });
    await sleep(500);
    const beforeKill = acknowledged.length;
    const victim = memberOf(await etcdLeaderEndpoint());
    killMember(victim);
    await sleep(4_000);
    const afterKill = acknowledged.length;
    await sleep(1_000);
    stop = true;
    await Promise.all(writers);
    assert.ok(acknowledged.length > afterKill, "appends continue after etcd's election");
    assert.ok(beforeKill > 0);
    assert.equal(a.leadership.term, term, "the Verdict leader kept its term");
    t.diagnostic(
      `killed member ${victim}; ${acknowledged.length} appends, longest stall ${Math.round(longestStallMs)} ms`,
    );

    await a.leadership.resign();
    const b = cluster.node("b");
    assert.ok(await cluster.campaign(b), "b leads (the killed member is still down)");
    const replayed = await (await cluster.openLog(b)).replay();
    const records = replayed.entries.map((e) => e.record);
    assert.deepEqual(new Set(records), new Set(acknowledged), "every acknowledged record, once");
    assert.equal(records.length, acknowledged.length);
    replayed.entries.forEach((e, i) => assert.equal(e.index, i + 1));
  });
});
