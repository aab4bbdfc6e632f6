/**
 * Smoke test of the decision log on the real filesystem (NodeStorage in a temp
 * directory): concurrent appends, snapshot, truncation, reopen, and a torn tail made
 * by cutting the real segment file, which the next open cuts back to whole records.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat, truncate } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LocalDecisionLog } from "../../../coordinator/log/local-decision-log.js";
import { NodeStorage } from "../../../coordinator/log/node-storage.js";
import { segmentName, snapshotName } from "../../../coordinator/log/wal-files.js";

interface Decision {
  readonly xid: string;
  readonly decision: "commit" | "abort";
}

describe("decision log on the real filesystem", () => {
  test("append, replay, snapshot, truncate, reopen, torn tail", async () => {
    const dir = await mkdtemp(join(tmpdir(), "verdict-wal-"));
    try {
      const open = () =>
        LocalDecisionLog.open<Decision>({ storage: new NodeStorage(), dir, segmentBytesMax: 4096 });
      const log = await open();
      const decisions = Array.from({ length: 200 }, (_, i): Decision => ({
        xid: `x${i}`,
        decision: i % 3 === 0 ? "abort" : "commit",
      }));
      const results = await Promise.all(decisions.map((d) => log.append([d])));
      assert.deepEqual(results.at(-1), { firstIndex: 200, lastIndex: 200, term: 1 });
      assert.ok((await readdir(dir)).length > 1, "rolled over several segments");
      await log.close();

      const second = await open();
      const replayed = await second.replay();
      assert.deepEqual(
        replayed.entries.map((e) => e.record),
        decisions,
      );
      await second.saveSnapshot(150, new TextEncoder().encode("table@150"));
      await second.truncateSuffix(181);
      await second.append([{ xid: "y181", decision: "abort" }]);
      await second.close();

      const third = await open();
      const after = await third.replay();
      assert.equal(after.snapshot?.index, 150);
      assert.deepEqual(
        after.entries.map((e) => e.record.xid),
        [...decisions.slice(150, 180).map((d) => d.xid), "y181"],
      );
      assert.ok((await readdir(dir)).includes(snapshotName(150)));
      await third.close();

      const names = (await readdir(dir)).filter((n) => n.endsWith(".wal")).sort();
      const last = join(dir, names.at(-1) ?? segmentName(1));
      const { size } = await stat(last);
      await truncate(last, size - 5); // tear the last record
      const fourth = await open();
      assert.equal(fourth.recovery.truncatedTail?.file, last);
      const torn = await fourth.replay();
      assert.equal(torn.entries.at(-1)?.record.xid, decisions[179]?.xid);
      assert.equal(fourth.lastIndex(), 180);
      await fourth.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
