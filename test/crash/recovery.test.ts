/**
 * Proves that recovery's own steps are crash-safe. For each failpoint inside recovery, a real
 * coordinator process is started on a cluster whose databases hold orphans (branches prepared
 * with the cluster's prefix that the log never heard of, each moving money), the failpoint
 * SIGKILLs it mid-recovery, and it is restarted without failpoints. Once settled, PostgreSQL
 * is read directly: every orphan was rolled back (no prepared branch of the cluster left, no
 * orphan leg, money conserved), every transfer is all-or-nothing as in the failpoint tests,
 * and each orphan is in the log as a transaction aborted with reason `presumed-abort`.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { describeExit, ensureBuilt, killLeftovers } from "../support/process-node.js";
import { plantOrphans, recoveryFailpoints } from "./orphans.js";
import { createCrashCluster } from "./scenario.js";
import { clientFor } from "./transfer.js";
const orphansPerDb = 5;
const exitTimeoutMs = 20_000;

before(ensureBuilt);
after(killLeftovers);

describe("SIGKILL inside recovery, then restart", () => {
  for (const [i, name] of recoveryFailpoints.entries()) {
    test(`${name}=crash@1`, async (t) => {
      const c = await createCrashCluster(2000 + i, { protocol: { recoveryIntervalMs: 200 } });
      try {
        // A first life creates the cluster id (the orphans' prefix) and some history.
        const first = await c.cluster.start();
        await c.round(first);
        // Settled first: a branch still prepared would hold the row the orphans write.
        await c.settleAndCheck(first, t);
        await c.cluster.kill();
        const clusterId = await c.cluster.clusterId();
        const orphans = await plantOrphans(c.world, clusterId, c.cluster.schema, orphansPerDb);

        const node = await c.cluster.start({ failpoints: `${name}=crash@1` });
        const timeout = new Promise<"timeout">((r) =>
          setTimeout(r, exitTimeoutMs, "timeout").unref(),
        );
        const exit = await Promise.race([node.exited, timeout]);
        if (exit === "timeout") assert.fail(`the failpoint did not fire:\n${c.cluster.logTail()}`);
        assert.equal(exit.signal, "SIGKILL", `exit ${describeExit(exit)}`);
        assert.ok(c.cluster.readLog().includes(`failpoint ${name}: crash`));

        const restarted = await c.cluster.start();
        await c.round(restarted);
        const { settledMs } = await c.settleAndCheck(restarted, t);
        const admin = clientFor(restarted.url, c.cluster.adminToken);
        for (const o of orphans) {
          const view = await admin.status(o.xid);
          assert.equal(view.state, "aborted", `${o.gid}`);
          assert.equal(view.reason?.code, "presumed-abort", `${o.gid}`);
        }
        t.diagnostic(`${orphans.length} orphans rolled back; settled ${settledMs} ms`);
      } finally {
        await c.close();
      }
    });
  }
});
