/**
 * Proves the fencing rules of the etcd decision log (docs/etcd.md, "Appends" and "Snapshots"):
 * - a deposed leader (its election key gone, another node elected) that does not know it yet
 *   is refused on its next append with NotLeaderError, never overwrites log/<i>, and stops;
 * - a "new leader" whose view lags (it appends at an index that already landed) is refused by
 *   the create_revision(log/<i>) == 0 compare: LogConflictError, the landed entry unchanged;
 *   the log stops and the node demotes (reason log-stopped): it keeps neither term nor lease;
 * - re-sending the same entry at the same index after a lost response answers "landed" and
 *   rewrites nothing;
 * - a deposed leader's late snapshot cuts no entry; a stale snapshot of the current leader
 *   (the pointer moved since it looked) is refused by the pointer's mod-revision compare.
 */
import { afterEach, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { NotLeaderError } from "../../../coordinator/log/errors.js";
import { sendAppendTxn } from "../../../coordinator/log/etcd/append-txn.js";
import { encodeBatch } from "../../../coordinator/log/etcd/batch-codec.js";
import { LogConflictError, SnapshotConflictError } from "../../../coordinator/log/etcd/errors.js";
import { ensureEtcd, TestCluster, type Node } from "./helpers.js";

const bytesOf = (term: number, index: number, text: string) =>
  encodeBatch({ term, firstIndex: index, payloads: [Buffer.from(JSON.stringify(text))] });

describe("etcd decision log: fencing", () => {
  let cluster: TestCluster;
  before(ensureEtcd);
  beforeEach(() => {
    cluster = new TestCluster();
  });
  afterEach(() => cluster.close());

  /** A leads and appends `count` entries, then loses its key without knowing; B is elected. */
  async function deposeAfter(
    count: number,
  ): Promise<{ a: Node; b: Node; aTerm: number; bTerm: number }> {
    await cluster.deleteLeaderKey();
    const a = cluster.node(`a${Math.random()}`);
    const aTerm = await a.leadership.campaign();
    assert.ok(aTerm !== undefined);
    const aLog = await cluster.openLog(a);
    for (let i = 0; i < count; i++) await aLog.append([`a-${i}`]);
    await cluster.deleteLeaderKey();
    const b = cluster.node(`b${Math.random()}`);
    const bTerm = await b.leadership.campaign();
    assert.ok(bTerm !== undefined && bTerm > aTerm);
    assert.equal(a.leadership.term, aTerm, "A still believes it leads");
    return { a, b, aTerm, bTerm };
  }

  test("a deposed leader's append is refused and never overwrites log/<i>", async () => {
    await cluster.deleteLeaderKey();
    const a = cluster.node("a");
    assert.ok(await a.leadership.campaign());
    const aLog = await cluster.openLog(a);
    await aLog.append(["a-1"]);
    await aLog.append(["a-2"]);
    await cluster.deleteLeaderKey();
    const b = cluster.node("b");
    assert.ok(await b.leadership.campaign());
    // Before B appends: only the leadership compare stands between A and log/3.
    await assert.rejects(aLog.append(["a-3"]), NotLeaderError);
    assert.equal(await cluster.get(cluster.layout.logKey(3)), undefined, "A wrote nothing");
    const bLog = await cluster.openLog(b);
    const landed = await bLog.append(["b-3"]);
    assert.equal(landed.firstIndex, 3);
    const before = await cluster.get(cluster.layout.logKey(3));

    await assert.rejects(aLog.append(["a-4"]), NotLeaderError, "A's log stays stopped");
    // Even sent straight at the landed index, A's term is refused and log/3 stays B's.
    await assert.rejects(
      sendAppendTxn(a.client, cluster.layout, aLog.term, 3, bytesOf(aLog.term, 3, "a-3")),
      NotLeaderError,
    );
    const afterKv = await cluster.get(cluster.layout.logKey(3));
    assert.equal(afterKv?.mod_revision, before?.mod_revision, "log/3 untouched");
    assert.equal(a.leadership.term, undefined, "A stepped down");
    const replayed = await bLog.replay();
    assert.deepEqual(
      replayed.entries.map((e) => e.record),
      ["a-1", "a-2", "b-3"],
    );
  });

  test("a lagging new leader appending at a landed index is refused; the entry stays", async () => {
    const { bTerm } = await deposeAfter(3);
    const key = cluster.layout.logKey(2);
    const before = await cluster.get(key);
    await assert.rejects(
      sendAppendTxn(cluster.admin, cluster.layout, bTerm, 2, bytesOf(bTerm, 2, "b-2")),
      LogConflictError,
    );
    const afterKv = await cluster.get(key);
    assert.ok(before !== undefined && afterKv !== undefined);
    assert.equal(afterKv.mod_revision, before.mod_revision);
    assert.deepEqual(afterKv.value, before.value);
  });

  test("a conflict stops the log and demotes the node: its lease and election key go", async () => {
    const { b, bTerm } = await deposeAfter(2);
    const bLog = await cluster.openLog(b);
    const lost: string[] = [];
    b.leadership.on({ lostLeadership: (term, reason) => lost.push(`${term}:${reason}`) });
    // Another writer (a lagging view of B's own term) lands log/3 behind B's back.
    await sendAppendTxn(cluster.admin, cluster.layout, bTerm, 3, bytesOf(bTerm, 3, "other"));
    await assert.rejects(bLog.append(["b-3"]), LogConflictError);
    assert.deepEqual(lost, [`${bTerm}:log-stopped`]);
    assert.equal(b.leadership.term, undefined, "B stepped down");
    await assert.rejects(bLog.append(["b-4"]), LogConflictError, "the log stays stopped");
    // Demoting revoked B's lease: the election key went with it, so another node can lead.
    for (let i = 0; i < 50 && (await cluster.get(cluster.layout.leader)) !== undefined; i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.equal(await cluster.get(cluster.layout.leader), undefined, "the election key is gone");
  });

  test("re-sending an entry whose response was lost answers landed and rewrites nothing", async () => {
    const { b, bTerm } = await deposeAfter(1);
    const value = bytesOf(bTerm, 2, "b-2");
    // The first send lands; pretend its response was lost and send the same bytes again.
    await sendAppendTxn(b.client, cluster.layout, bTerm, 2, value);
    const first = await cluster.get(cluster.layout.logKey(2));
    assert.equal(await sendAppendTxn(b.client, cluster.layout, bTerm, 2, value), "landed");
    const second = await cluster.get(cluster.layout.logKey(2));
    assert.equal(second?.mod_revision, first?.mod_revision, "not written twice");
  });

  test("a deposed leader's late snapshot cuts nothing", async () => {
    await cluster.deleteLeaderKey();
    const a = cluster.node("a-snap");
    assert.ok(await a.leadership.campaign());
    const aLog = await cluster.openLog(a);
    for (let i = 0; i < 6; i++) await aLog.append([`a-${i}`]);
    await cluster.deleteLeaderKey();
    const b = cluster.node("b-snap");
    assert.ok(await b.leadership.campaign());
    const bLog = await cluster.openLog(b);
    const keysBefore = await cluster.logKeys();

    await assert.rejects(aLog.saveSnapshot(6, Buffer.from("a's late snapshot")), NotLeaderError);
    assert.deepEqual(await cluster.logKeys(), keysBefore, "no log key cut");
    assert.equal(await cluster.get(cluster.layout.snapshotPointer), undefined, "no pointer set");
    const replayed = await bLog.replay();
    assert.equal(replayed.entries.length, 6);
  });

  test("a stale snapshot (the pointer moved since this log read it) is refused", async () => {
    await cluster.deleteLeaderKey();
    const c = cluster.node("c-snap");
    assert.ok(await c.leadership.campaign());
    const first = await cluster.openLog(c);
    for (let i = 0; i < 4; i++) await first.append([`c-${i}`]);
    // A second log of the same term that read the pointer before `first` moved it.
    const stale = await cluster.openLog(c);
    await first.saveSnapshot(3, Buffer.from("snapshot at 3"));
    const keysBefore = await cluster.logKeys();
    await assert.rejects(stale.saveSnapshot(4, Buffer.from("stale at 4")), SnapshotConflictError);
    assert.deepEqual(await cluster.logKeys(), keysBefore, "no log key cut");
    const replayed = await first.replay();
    assert.equal(replayed.snapshot?.index, 3);
  });
});
