/**
 * Proves, against the real 3-member etcd cluster, that the etcd decision log:
 * - keeps every acknowledged append: a new leader's takeover replay returns exactly the
 *   records appended, at the indices the appends were given, in call order;
 * - commits in groups: many concurrent appends share few Txns (one in flight at a time);
 * - replays a snapshot plus the entries after it, and the snapshot cut the covered keys;
 * - refuses to lead on a log with a hole: a takeover replay that finds log/<i> missing
 *   between landed entries rejects LogGapError.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { LogGapError } from "../../../coordinator/log/etcd/errors.js";
import { ensureEtcd, TestCluster } from "./helpers.js";

describe("etcd decision log: append and replay", () => {
  let cluster: TestCluster;
  before(ensureEtcd);
  before(() => {
    cluster = new TestCluster();
  });
  after(() => cluster.close());

  test("concurrent appends share Txns, and a new leader replays every one in order", async () => {
    const a = cluster.node("a");
    assert.ok(await a.leadership.campaign());
    let txns = 0;
    const log = await cluster.openLog(a, { onAppendTxn: () => txns++ });
    const appends = 400;
    const results = await Promise.all(
      Array.from({ length: appends }, (_, i) => log.append([`record-${i}`])),
    );
    // Indices in call order, consecutive from 1.
    results.forEach((r, i) => assert.equal(r.firstIndex, i + 1));
    assert.equal(log.lastIndex(), appends);
    assert.ok(txns < appends / 4, `group commit: ${txns} Txns for ${appends} appends`);
    assert.equal((await cluster.logKeys()).length, txns, "one log key per Txn");

    await a.leadership.resign();
    const b = cluster.node("b");
    const term = await b.leadership.campaign();
    assert.ok(term !== undefined && term > log.term);
    const replayed = await (await cluster.openLog(b)).replay();
    assert.deepEqual(
      replayed.entries.map((e) => [e.index, e.record]),
      Array.from({ length: appends }, (_, i) => [i + 1, `record-${i}`]),
    );
    assert.ok(replayed.entries.every((e) => e.term === log.term));
  });

  test("a snapshot replaces the entries it covers; replay returns it and the rest", async () => {
    const c = cluster.node("c");
    await cluster.deleteLeaderKey();
    assert.ok(await c.leadership.campaign());
    const log = await cluster.openLog(c, { chunkBytesMax: 1000 });
    for (let i = 0; i < 5; i++) await log.append([`more-${i}`]);
    const last = log.lastIndex();
    const data = Buffer.alloc(4500, 7); // five chunks of at most 1000 bytes
    await log.saveSnapshot(last - 2, data);
    const keys = await cluster.logKeys();
    assert.deepEqual(keys, [last - 1, last], "keys covered by the snapshot are deleted");
    const replayed = await log.replay();
    assert.equal(replayed.snapshot?.index, last - 2);
    assert.deepEqual(Buffer.from(replayed.snapshot.data), data);
    assert.deepEqual(
      replayed.entries.map((e) => e.record),
      ["more-3", "more-4"],
    );
  });

  test("a takeover replay refuses a log with a hole", async () => {
    await cluster.deleteLeaderKey();
    const d = cluster.node("d");
    assert.ok(await d.leadership.campaign());
    const log = await cluster.openLog(d);
    for (let i = 0; i < 3; i++) await log.append([`hole-${i}`]);
    await cluster.admin
      .delete()
      .key(cluster.layout.logKey(log.lastIndex() - 1))
      .exec();
    await assert.rejects(log.replay(), LogGapError);
  });
});
