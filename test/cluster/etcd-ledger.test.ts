/**
 * Proves that the etcd ledger (etcd-ledger.ts), which the cluster fault tests read after every
 * case, sees what etcd's own history holds: a clean failover (two terms, each appending only
 * while it held the election key) passes, and a deposed term's write, an overwritten
 * `log/<i>` and a gap in the log — written straight into etcd past the guards — are flagged.
 * Runs on a private etcd cluster (private-etcd.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { encodeBatch } from "../../coordinator/log/etcd/batch-codec.js";
import { TestCluster } from "../integration/etcd/helpers.js";
import { readLedger } from "./etcd-ledger.js";
import { PrivateEtcd } from "./private-etcd.js";

const batchOf = (term: number, index: number, text: string) =>
  encodeBatch({ term, firstIndex: index, payloads: [Buffer.from(JSON.stringify(text))] });

describe("etcd ledger", () => {
  let etcd: PrivateEtcd;
  before(async () => {
    etcd = await PrivateEtcd.start();
  });
  after(() => etcd.close());

  /** Term a appends two batches, is deposed, term b appends one: the clean history. */
  async function failover(cluster: TestCluster) {
    const a = cluster.node("a");
    const aTerm = await cluster.campaign(a);
    const aLog = await cluster.openLog(a);
    await aLog.append(["a-1"]);
    await aLog.append(["a-2", "a-3"]);
    await cluster.deleteLeaderKey();
    const b = cluster.node("b");
    const bTerm = await cluster.campaign(b);
    const bLog = await cluster.openLog(b);
    await bLog.append(["b-4"]);
    assert.ok(aTerm !== undefined && bTerm !== undefined);
    return { aTerm, bTerm };
  }

  test("a clean failover: two terms, each appending while it led", async () => {
    const cluster = new TestCluster(etcd.endpoints);
    try {
      const { aTerm, bTerm } = await failover(cluster);
      const ledger = await readLedger(cluster.admin, cluster.layout.clusterId);
      assert.deepEqual(ledger.violations, []);
      assert.deepEqual(
        ledger.terms.map((t) => [t.term, t.nodeId, t.batches]),
        [
          [aTerm, "a", 2],
          [bTerm, "b", 1],
        ],
      );
      assert.equal(ledger.lastIndex, 4);
    } finally {
      await cluster.close();
    }
  });

  test("flags a deposed term's append, an overwrite and a gap", async () => {
    const cluster = new TestCluster(etcd.endpoints);
    try {
      const { aTerm, bTerm } = await failover(cluster);
      const put = (index: number, bytes: Buffer) =>
        cluster.admin.put(cluster.layout.logKey(index)).value(bytes).exec();
      await put(5, batchOf(aTerm, 5, "late a-5"));
      await put(4, batchOf(bTerm, 4, "b-4 again"));
      await put(9, batchOf(bTerm, 9, "after a gap"));
      const { violations } = await readLedger(cluster.admin, cluster.layout.clusterId);
      const has = (text: string) => violations.some((v) => v.includes(text));
      assert.ok(has(`log/5 appended at`) && has(`by term ${aTerm}`), violations.join("\n"));
      assert.ok(has("log/4 overwritten"), violations.join("\n"));
      assert.ok(has("log/9") && has("expected the next batch"), violations.join("\n"));
    } finally {
      await cluster.close();
    }
  });
});
