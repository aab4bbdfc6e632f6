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
import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { failpointNames, type FailpointName } from "../../coordinator/failpoints/failpoints.js";
import { seededRandom, type SeededRandom } from "../unit/log/seeded-random.js";
import {
  describeExit,
  ensureBuilt,
  killLeftovers,
  type ProcessNode,
} from "../support/process-node.js";
import { clientFor } from "./bank.js";
import {
  checkMixedTruth,
  makeMixedTransfer,
  runMixedTransfer,
  userKeys,
  type Doom,
} from "./mixed-bank.js";
import { accounts, createMixedCrashCluster, type MixedCrashCluster } from "./mixed-scenario.js";
import { recoveryFailpoints } from "./orphans.js";
import { transferTimeoutMs } from "./scenario.js";

type RecoveryFailpoint = (typeof recoveryFailpoints)[number];
/**
 * The hit that crashes, early in the first round of 18 (a round makes ~45 prepares and about
 * as many phase-2 calls, ~4 rollbacks and 3 one-phase commits).
 */
const crashAt: Record<Exclude<FailpointName, RecoveryFailpoint>, number> = {
  "before-append": 5,
  "after-append": 2,
  "before-decision-append": 5,
  "after-preparing-durable": 5,
  "after-decision-durable": 5,
  "before-prepare": 5,
  "after-prepare": 5,
  "before-commit": 5,
  "after-commit": 5,
  "before-rollback": 2,
  "after-rollback": 2,
  "before-one-phase-commit": 2,
  "after-one-phase-commit": 2,
};
const fireTimeoutMs = 20_000;
const roundsMax = 20;

const seed = Number(process.env.VERDICT_CRASH_SEED ?? randomInt(2 ** 31));
const killCycles = 5;
const workers = 10;
const killAfterMsMin = 300;
const killAfterMsMax = 2_500;
/** Per worker and cycle: bounds a loop that would otherwise only end with the node. */
const transfersPerWorkerMax = 300;

before(ensureBuilt);
after(killLeftovers);

/** Rounds of transfers until the node is gone (or the time is up). */
async function loadUntilExit(c: MixedCrashCluster, node: ProcessNode): Promise<number> {
  const started = Date.now();
  let rounds = 0;
  while (!node.exitStatus() && Date.now() - started < fireTimeoutMs && rounds < roundsMax) {
    await c.round(node);
    rounds += 1;
  }
  const timeout = new Promise<"timeout">((r) =>
    setTimeout(r, Math.max(0, fireTimeoutMs - (Date.now() - started)), "timeout").unref(),
  );
  const exit = await Promise.race([node.exited, timeout]);
  assert.notEqual(exit, "timeout", `the failpoint did not fire within ${fireTimeoutMs} ms`);
  return rounds;
}

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

  test("every failpoint outside recovery has a mixed crash scenario", () => {
    assert.deepEqual(
      [...Object.keys(crashAt), ...recoveryFailpoints].sort(),
      [...failpointNames].sort(),
    );
  });

  for (const [i, name] of (Object.keys(crashAt) as (keyof typeof crashAt)[]).entries()) {
    const spec = `${name}=crash@${crashAt[name]}`;
    test(spec, async (t) => {
      const c = await createMixedCrashCluster(3100 + i);
      try {
        const node = await c.cluster.start({ failpoints: spec });
        const rounds = await loadUntilExit(c, node);
        const exit = await node.exited;
        const why = `exit ${describeExit(exit)}; log:\n${c.cluster.logTail()}`;
        assert.equal(exit.signal, "SIGKILL", why);
        assert.ok(
          c.cluster.readLog().includes(`failpoint ${name}: crash`),
          `not the failpoint: ${why}`,
        );
        const restartedAt = Date.now();
        const restarted = await c.cluster.start();
        const listeningMs = Date.now() - restartedAt;
        const { settledMs } = await c.settleAndCheck(restarted, t);
        t.diagnostic(
          `${rounds} rounds before the crash; listening ${listeningMs} ms after restart, ` +
            `settled ${settledMs} ms later`,
        );
      } finally {
        await c.close();
      }
    });
  }

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

  /** One worker's transfers on its own Redis slot against `node`, until it is killed. */
  async function work(
    c: MixedCrashCluster,
    node: ProcessNode,
    random: SeededRandom,
    slot: number,
    prefix: string,
  ): Promise<void> {
    const client = clientFor(node.url, c.cluster.clientToken);
    for (let k = 0; k < transfersPerWorkerMax && !node.exitStatus(); k++) {
      const kind = random.chance(0.2) ? "redis-one-phase" : "mixed";
      let doom: Doom = "none";
      if (random.chance(0.15)) doom = kind === "mixed" && random.chance(0.5) ? "pg" : "redis";
      const spec = makeMixedTransfer(`${prefix}-${k}`, kind, slot, doom, accounts, (max) =>
        random.int(1, max),
      );
      c.outcomes.push(await runMixedTransfer(client, c.world, spec, transferTimeoutMs));
    }
  }

  test(`random SIGKILLs under mixed load (seed ${seed})`, async (t) => {
    assert.ok(Number.isSafeInteger(seed), `VERDICT_CRASH_SEED must be an integer, got ${seed}`);
    t.diagnostic(`seed ${seed} (replay: VERDICT_CRASH_SEED=${seed})`);
    const random = seededRandom(seed);
    const c = await createMixedCrashCluster(seed);
    try {
      for (let cycle = 0; cycle < killCycles; cycle++) {
        const startedAt = Date.now();
        const node = await c.cluster.start();
        const listeningMs = Date.now() - startedAt;
        const killAfterMs = random.int(killAfterMsMin, killAfterMsMax);
        const before = c.outcomes.length;
        const load = Array.from({ length: workers }, (_, w) =>
          work(c, node, seededRandom(seed + 1 + cycle * workers + w), w, `c${cycle}w${w}`),
        );
        await sleep(killAfterMs);
        assert.equal(node.exitStatus(), undefined, "the node died before it was killed");
        node.kill("SIGKILL");
        const exit = await node.exited;
        assert.equal(exit.signal, "SIGKILL");
        await Promise.all(load);
        t.diagnostic(
          `cycle ${cycle + 1}: listening after ${listeningMs} ms, killed ${killAfterMs} ms ` +
            `later, ${c.outcomes.length - before} transfers`,
        );
      }
      const restartedAt = Date.now();
      const node = await c.cluster.start();
      const listeningMs = Date.now() - restartedAt;
      const { settledMs, summary } = await c.settleAndCheck(node, t);
      t.diagnostic(`final restart: listening after ${listeningMs} ms, settled ${settledMs} ms`);
      // A run in which nothing committed (or nothing was cut short) would prove little.
      assert.ok(summary.committed > 0, "no transfer committed");
      assert.ok(summary.told.unknown > 0 || summary.told["not-sent"] > 0, "no kill hit a transfer");
    } finally {
      await c.close();
    }
  });
});
