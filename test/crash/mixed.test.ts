/**
 * Proves that a coordinator killed at any protocol step, or at a random moment, loses nothing
 * and leaves nothing half-done across PostgreSQL, Redis and Kafka together. Transfers debit
 * pg-a, credit a Redis counter (and add their id to a set) and produce one Kafka event; some
 * are Redis-only (committed in one phase) and some are doomed (a pg or a Redis no-vote).
 *
 * For every failpoint outside recovery (those have recovery.test.ts; the list is imported, so
 * a new failpoint without a scenario fails here), a real coordinator process runs with
 * `<name>=crash@K` under 18 concurrent transfers until the failpoint SIGKILLs it; then a
 * seeded run SIGKILLs it at random moments under continuous load (VERDICT_CRASH_SEED=N
 * replays its schedule). After a restart without failpoints and once recovery has settled,
 * the stores are read directly (mixed-bank.ts `checkMixedTruth`): every transfer in all three
 * or in none, sums agree, each committed event seen once by a read_committed reader, what
 * each client was told holds, and no prepared, staged or locked branch of the cluster left.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { describeExit, ensureBuilt, killLeftovers } from "../support/process-node.js";
import {
  crashAtDefault,
  crashSeed,
  failpointCrashTests,
  randomKills,
  type CrashAt,
} from "./drivers.js";
import { checkMixedTruth, makeMixedTransfer, userKeys, type Doom } from "./mixed-bank.js";
import { accounts, createMixedCrashCluster } from "./mixed-scenario.js";
import { clientFor } from "./transfer.js";

/**
 * The hit that crashes, early in the first round of 18 (a round makes ~45 prepares and about
 * as many phase-2 calls, ~4 rollbacks and 3 one-phase commits).
 */
const crashAt: CrashAt = {
  ...crashAtDefault,
  "before-rollback": 2,
  "after-rollback": 2,
  "before-one-phase-commit": 2,
  "after-one-phase-commit": 2,
};
const seed = crashSeed();

before(ensureBuilt);
after(killLeftovers);

describe("mixed PostgreSQL + Redis + Kafka transfers", () => {
  test("without a crash: the check passes, and sees a lost Redis write", async (t) => {
    const c = await createMixedCrashCluster(3000);
    try {
      const node = await c.cluster.start();
      await c.round(node);
      const { summary } = await c.settleAndCheck(node, t);
      assert.ok(summary.committed >= 10, `only ${summary.committed} committed`);
      // Each doomed transfer aborts on the no-vote it was built for, so both abort paths ran.
      const doomed = c.outcomes.filter((o) => o.spec.doom !== "none");
      assert.equal(doomed.length, 3);
      for (const o of doomed) {
        const voted = `${o.reasonCode}: ${o.reasonMessage}`;
        assert.equal(o.told, "aborted", `${o.spec.id}: ${voted}`);
        const want = o.spec.doom === "pg" ? /expectation-unmet/ : /precondition-failed/;
        assert.match(voted, want, `${o.spec.id} (${o.spec.kind}, doom ${o.spec.doom})`);
      }
      // The check is not vacuous: a committed transfer's Redis effect removed by hand shows.
      const lost = c.outcomes.find((o) => o.spec.kind === "mixed" && o.told === "committed");
      assert.ok(lost, "no mixed transfer committed");
      await c.world.redisDirect.srem(userKeys(c.world).ids("mixed", lost.spec.slot), lost.spec.id);
      const states = new Map(c.outcomes.map((o) => [o.xid ?? "", "committed" as const]));
      const { violations } = await checkMixedTruth(
        c.world,
        c.outcomes,
        states,
        await c.cluster.clusterId(),
      );
      assert.ok(
        violations.some((v) => v.includes(lost.spec.id) && v.includes("not all-or-nothing")),
        violations.join("\n"),
      );
    } finally {
      await c.close();
    }
  });

  failpointCrashTests({
    coverageTestName: "every failpoint outside recovery has a mixed crash scenario",
    crashAt,
    seedBase: 3100,
    roundsMax: 20,
    create: (s) => createMixedCrashCluster(s),
  });

  // One transfer at a time, its branches acknowledged in a known order (PostgreSQL and Redis,
  // then Kafka), so the third phase-2 call is the first Kafka commit: the crash comes just
  // before it (nothing produced yet) or just after it (produced and committed in Kafka, the
  // acknowledgement not logged). Either way the decision is durable: the restarted node must
  // commit it, and its marker check must keep it to one event.
  for (const [i, spec] of ["before-commit=crash@3", "after-commit=crash@3"].entries()) {
    test(`${spec} on the first Kafka commit, one transfer at a time`, async (t) => {
      const c = await createMixedCrashCluster(3200 + i);
      try {
        const node = await c.cluster.start({ failpoints: spec });
        await c.round(node, { mixed: 3, onePhase: 0, doomed: false, sequential: true });
        const exit = await node.exited;
        assert.equal(exit.signal, "SIGKILL", `exit ${describeExit(exit)}`);
        const first = c.outcomes[0];
        assert.ok(first?.xid !== undefined, "the first transfer did not begin");
        assert.equal(first.told, "unknown", `the crash came after the answer: ${first.error}`);
        const restarted = await c.cluster.start();
        await c.settleAndCheck(restarted, t);
        const view = await clientFor(restarted.url, c.cluster.adminToken).status(first.xid);
        assert.equal(view.state, "committed", "a durable commit decision was not carried out");
      } finally {
        await c.close();
      }
    });
  }

  // Each worker on its own Redis slot.
  test(`random SIGKILLs under mixed load (seed ${seed})`, (t) =>
    randomKills(t, {
      seed,
      cycles: 5,
      workers: 10,
      killAfterMsMin: 300,
      killAfterMsMax: 2_500,
      transfersPerWorkerMax: 300,
      create: (s) => createMixedCrashCluster(s),
      nextTransfer: (_world, id, slot, random) => {
        const kind = random.chance(0.2) ? "redis-one-phase" : "mixed";
        let doom: Doom = "none";
        if (random.chance(0.15)) doom = kind === "mixed" && random.chance(0.5) ? "pg" : "redis";
        return makeMixedTransfer(id, kind, slot, doom, accounts, (max) => random.int(1, max));
      },
    }));
});
