/**
 * Proves the graceful shutdown of a real coordinator process (SIGTERM): it stops taking new
 * transactions (a begin answers 503 `unavailable`) while transactions under way may still
 * commit within `protocol.shutdownGraceMs`; what never reached `preparing` by then is aborted
 * durably (reason `shutdown`) before the process exits 0; and after a restart PostgreSQL holds
 * exactly what the clients were told: transfers all-or-nothing, nothing of the abandoned ones,
 * no prepared branch of the cluster left.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { seededRandom } from "../unit/log/seeded-random.js";
import { VerdictError } from "../../client/errors.js";
import { describeExit, ensureBuilt, killLeftovers } from "../support/process-node.js";
import { bankBranches, makeTransfer, type Outcome } from "./bank.js";
import { transferTimeoutMs } from "./crash-scenario.js";
import { createCrashCluster, defaultRound } from "./scenario.js";
import { beginTransfer, clientFor } from "./transfer.js";

const graceMs = 2_000;
/** Held transactions outlive the grace: only the shutdown can end them before their deadline. */
const heldTimeoutMs = 60_000;
const held = 6;
const exitBoundMs = graceMs + 15_000;

before(ensureBuilt);
after(killLeftovers);

describe("graceful shutdown", () => {
  test("SIGTERM drains, aborts what cannot be saved, exits 0; a restart finds it consistent", async (t) => {
    const c = await createCrashCluster(3000, { protocol: { shutdownGraceMs: graceMs } });
    try {
      const node = await c.cluster.start();
      await c.round(node);
      const client = clientFor(node.url, c.cluster.clientToken);
      const random = seededRandom(3000);
      const pick = (max: number) => random.int(1, max);
      const begun: Outcome[] = [];
      for (let i = 0; i < held; i++) {
        const spec = makeTransfer(`held-${i}`, c.world, "two-phase", false, pick);
        begun.push(await beginTransfer(client, spec, bankBranches(c.world, spec), heldTimeoutMs));
      }
      assert.ok(begun.every((o) => o.error === undefined && o.xid !== undefined));
      const load = c.round(node, { ...defaultRound, twoPhase: 10, onePhase: 2 });

      const signalledAt = Date.now();
      node.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 200));
      // Draining: no new transaction …
      await assert.rejects(client.begin({ timeoutMs: transferTimeoutMs }), (err: unknown) => {
        assert.ok(err instanceof VerdictError, String(err));
        assert.equal(err.code, "unavailable");
        return true;
      });
      // … but one under way may still commit.
      const saved = begun[0];
      assert.ok(saved?.xid);
      const view = await client.commit(saved.xid);
      assert.equal(view.state, "committed");
      c.outcomes.push({ ...saved, told: "committed" }, ...begun.slice(1));
      await load;

      const exit = await Promise.race([
        node.exited,
        new Promise<"timeout">((r) => setTimeout(r, exitBoundMs, "timeout").unref()),
      ]);
      if (exit === "timeout") assert.fail(`no exit within ${exitBoundMs} ms`);
      const exitMs = Date.now() - signalledAt;
      assert.equal(exit.code, 0, `exit ${describeExit(exit)}:\n${c.cluster.logTail()}`);
      assert.ok(exitMs >= graceMs, `exited after ${exitMs} ms, before the grace ran out`);

      const restarted = await c.cluster.start();
      await c.settleAndCheck(restarted, t);
      const admin = clientFor(restarted.url, c.cluster.adminToken);
      for (const o of begun.slice(1)) {
        const v = await admin.status(o.xid ?? "");
        assert.equal(v.state, "aborted", o.spec.id);
        assert.equal(v.reason?.code, "shutdown", o.spec.id);
      }
      t.diagnostic(`exited ${exitMs} ms after SIGTERM (grace ${graceMs} ms)`);
    } finally {
      await c.close();
    }
  });
});
