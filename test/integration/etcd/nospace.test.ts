/**
 * Proves the NOSPACE path of the etcd decision log on a throwaway one-member etcd with a 4 MiB
 * quota (tiny-etcd.ts): once junk keys raise etcd's NOSPACE alarm, appends are held, not failed
 * — the log reports EtcdNoSpaceError as its refusal (the node goes not-ready), keeps its term
 * (no step-down), and re-sends the batch until the runbook (delete, compact, defrag, disarm)
 * frees space; then every held append lands, in call order, after the acknowledged ones, and a
 * replay returns exactly those. A log closed while held back ends its appends with
 * LogClosedError instead of hanging.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { EtcdNoSpaceError } from "../../../coordinator/log/etcd/errors.js";
import { LogClosedError } from "../../../coordinator/log/errors.js";
import { TestCluster } from "./helpers.js";
import { fillUntilNoSpace, runNoSpaceRunbook, startTinyEtcd, type TinyEtcd } from "./tiny-etcd.js";

const junkPrefix = "/nospace-junk/";

describe("etcd decision log under NOSPACE", () => {
  let etcd: TinyEtcd;
  let cluster: TestCluster;

  before(async () => {
    etcd = await startTinyEtcd();
    cluster = new TestCluster([etcd.endpoint]);
  });
  after(async () => {
    await cluster?.close().catch(() => undefined);
    await etcd?.stop();
  });

  test("appends are held while the alarm lasts and land in order after the runbook", async () => {
    const a = cluster.node("a");
    const term = await a.leadership.campaign();
    assert.ok(term !== undefined);
    const log = await cluster.openLog(a);
    await log.append(["before-1"]);
    await log.append(["before-2"]);
    assert.ok((await fillUntilNoSpace(cluster.admin, junkPrefix)) > 5);

    const settled: string[] = [];
    const held = ["held-1", "held-2", "held-3"].map((r) =>
      log.append([r]).then((res) => (settled.push(r), res)),
    );
    for (let i = 0; !(log.refusal() instanceof EtcdNoSpaceError); i++) {
      assert.ok(i < 100, "the log never reported NOSPACE");
      await sleep(50);
    }
    await sleep(1_500); // several re-sends
    assert.deepEqual(settled, [], "nothing lands, nothing fails while the alarm lasts");
    assert.equal(a.leadership.term, term, "NOSPACE is not a reason to step down");
    assert.equal(log.lastIndex(), 2);

    await runNoSpaceRunbook(etcd, junkPrefix);
    const results = await Promise.all(held);
    assert.deepEqual(settled, ["held-1", "held-2", "held-3"]);
    assert.deepEqual(
      results.map((r) => r.firstIndex),
      [3, 4, 5],
    );
    assert.equal(log.refusal(), undefined);
    assert.equal(a.leadership.term, term);
    const replayed = await log.replay();
    assert.deepEqual(
      replayed.entries.map((e) => e.record),
      ["before-1", "before-2", "held-1", "held-2", "held-3"],
    );
    await log.close();
  });

  test("closing a log held back by NOSPACE ends its appends with LogClosedError", async () => {
    const b = cluster.node("b");
    await cluster.deleteLeaderKey();
    assert.ok((await b.leadership.campaign()) !== undefined);
    const log = await cluster.openLog(b);
    await fillUntilNoSpace(cluster.admin, junkPrefix);
    const held = log.append(["held"]);
    for (let i = 0; !(log.refusal() instanceof EtcdNoSpaceError); i++) {
      assert.ok(i < 100, "the log never reported NOSPACE");
      await sleep(50);
    }
    await log.close();
    await assert.rejects(held, LogClosedError);
    await runNoSpaceRunbook(etcd, junkPrefix);
  });
});
