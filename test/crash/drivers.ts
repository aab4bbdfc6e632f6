/**
 * The crash tests' drivers, one for each kind of kill, shared by the PostgreSQL-only and the
 * mixed tests (any world of crash-scenario.ts):
 * - SIGKILL at every failpoint: rounds of load until `<name>=crash@K` fires, a restart
 *   without failpoints on the same data directory and schema, settle, check;
 * - seeded random SIGKILLs under continuous load from several workers, cycle after cycle,
 *   then a last restart, settle, check (VERDICT_CRASH_SEED=N replays the schedule).
 */
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { test, type TestContext } from "node:test";
import { failpointNames, type FailpointName } from "../../coordinator/failpoints/failpoints.js";
import { seededRandom, type SeededRandom } from "../unit/log/seeded-random.js";
import { describeExit, type ProcessNode } from "../support/process-node.js";
import type { CrashScenario, WorldTypes } from "./crash-scenario.js";
import { recoveryFailpoints } from "./orphans.js";
import { clientFor } from "./transfer.js";

type RecoveryFailpoint = (typeof recoveryFailpoints)[number];
/**
 * The hit at which each failpoint crashes the node. Typed: every failpoint needs one, except
 * those inside recovery, which have their own scenarios, with orphans to recover, in
 * recovery.test.ts.
 */
export type CrashAt = Record<Exclude<FailpointName, RecoveryFailpoint>, number>;

/**
 * Early in the first round of load, while it is in flight. A world whose round makes few
 * calls of some kind (rollbacks, one-phase commits) crashes at an earlier hit of those.
 */
export const crashAtDefault: CrashAt = {
  "before-append": 5,
  "after-append": 2,
  "before-decision-append": 5,
  // Clients of the acknowledged transactions were told their outcome before this record.
  "before-acks-append": 3,
  "after-preparing-durable": 5,
  "after-decision-durable": 5,
  "before-prepare": 5,
  "after-prepare": 5,
  "before-commit": 5,
  "after-commit": 5,
  "before-rollback": 5,
  "after-rollback": 5,
  "before-one-phase-commit": 5,
  "after-one-phase-commit": 5,
};
const fireTimeoutMs = 20_000;

export interface FailpointCrashes<T extends WorldTypes> {
  /** The name of the test that every failpoint has a scenario here or in recovery. */
  readonly coverageTestName: string;
  readonly crashAt: CrashAt;
  /** The scenario of the i-th failpoint of `crashAt` is seeded `seedBase + i`. */
  readonly seedBase: number;
  /** Bounds the rounds of load before the failpoint fires. */
  readonly roundsMax: number;
  readonly create: (seed: number) => Promise<CrashScenario<T>>;
}

/** Registers the coverage test, then one crash test per failpoint of `crashAt`. */
export function failpointCrashTests<T extends WorldTypes>(p: FailpointCrashes<T>): void {
  test(p.coverageTestName, () => {
    assert.deepEqual(
      [...Object.keys(p.crashAt), ...recoveryFailpoints].sort(),
      [...failpointNames].sort(),
    );
  });

  for (const [i, name] of (Object.keys(p.crashAt) as (keyof CrashAt)[]).entries()) {
    const spec = `${name}=crash@${p.crashAt[name]}`;
    test(spec, async (t) => {
      const c = await p.create(p.seedBase + i);
      try {
        const node = await c.cluster.start({ failpoints: spec });
        const rounds = await loadUntilExit(node, (n) => c.round(n), p.roundsMax);
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
}

/** Rounds of transfers until the node is gone (or the time or `roundsMax` is up). */
async function loadUntilExit(
  node: ProcessNode,
  round: (node: ProcessNode) => Promise<unknown>,
  roundsMax: number,
): Promise<number> {
  const started = Date.now();
  let rounds = 0;
  while (!node.exitStatus() && Date.now() - started < fireTimeoutMs && rounds < roundsMax) {
    await round(node);
    rounds += 1;
  }
  const timeout = new Promise<"timeout">((r) =>
    setTimeout(r, Math.max(0, fireTimeoutMs - (Date.now() - started)), "timeout").unref(),
  );
  const exit = await Promise.race([node.exited, timeout]);
  assert.notEqual(exit, "timeout", `the failpoint did not fire within ${fireTimeoutMs} ms`);
  return rounds;
}

/** The random-kill seed: VERDICT_CRASH_SEED if set (a replay), else a fresh one. */
export function crashSeed(): number {
  return Number(process.env.VERDICT_CRASH_SEED ?? randomInt(2 ** 31));
}

export interface RandomKills<T extends WorldTypes> {
  readonly seed: number;
  readonly cycles: number;
  readonly workers: number;
  readonly killAfterMsMin: number;
  readonly killAfterMsMax: number;
  /** Per worker and cycle: bounds a loop that would otherwise only end with the node. */
  readonly transfersPerWorkerMax: number;
  readonly create: (seed: number) => Promise<CrashScenario<T>>;
  /** A worker's next transfer, drawn from the worker's own seeded random. */
  readonly nextTransfer: (
    world: T["world"],
    id: string,
    worker: number,
    random: SeededRandom,
  ) => T["spec"];
}

/**
 * SIGKILLs the node at a random moment under load, `cycles` times (sometimes while it is
 * still recovering from the previous kill), then restarts it, settles and checks. Worker w of
 * cycle k draws from seed `seed + 1 + k * workers + w`, the kill times from `seed`.
 */
export async function randomKills<T extends WorldTypes>(
  t: TestContext,
  p: RandomKills<T>,
): Promise<void> {
  assert.ok(Number.isSafeInteger(p.seed), `VERDICT_CRASH_SEED must be an integer, got ${p.seed}`);
  t.diagnostic(`seed ${p.seed} (replay: VERDICT_CRASH_SEED=${p.seed})`);
  const random = seededRandom(p.seed);
  const c = await p.create(p.seed);
  try {
    for (let cycle = 0; cycle < p.cycles; cycle++) {
      const startedAt = Date.now();
      const node = await c.cluster.start();
      const listeningMs = Date.now() - startedAt;
      const killAfterMs = random.int(p.killAfterMsMin, p.killAfterMsMax);
      const before = c.outcomes.length;
      const load = Array.from({ length: p.workers }, (_, w) =>
        work(c, p, node, seededRandom(p.seed + 1 + cycle * p.workers + w), w, `c${cycle}w${w}`),
      );
      await sleep(killAfterMs);
      assert.equal(node.exitStatus(), undefined, "the node died before it was killed");
      node.kill("SIGKILL");
      const exit = await node.exited;
      assert.equal(exit.signal, "SIGKILL");
      await Promise.all(load);
      t.diagnostic(
        `cycle ${cycle + 1}: listening after ${listeningMs} ms, killed ${killAfterMs} ms later, ` +
          `${c.outcomes.length - before} transfers`,
      );
    }
    const restartedAt = Date.now();
    const node = await c.cluster.start();
    const listeningMs = Date.now() - restartedAt;
    const { settledMs, summary } = await c.settleAndCheck(node, t);
    t.diagnostic(`final restart: listening after ${listeningMs} ms, settled ${settledMs} ms later`);
    // A run in which nothing committed (or nothing was cut short) would prove little.
    assert.ok(summary.committed > 0, "no transfer committed");
    assert.ok(summary.told.unknown > 0 || summary.told["not-sent"] > 0, "no kill hit a transfer");
  } finally {
    await c.close();
  }
}

/** One worker's transfers against `node`, until it is killed (or its bound). */
async function work<T extends WorldTypes>(
  c: CrashScenario<T>,
  p: RandomKills<T>,
  node: ProcessNode,
  random: SeededRandom,
  worker: number,
  prefix: string,
): Promise<void> {
  const client = clientFor(node.url, c.cluster.clientToken);
  for (let k = 0; k < p.transfersPerWorkerMax && !node.exitStatus(); k++) {
    const spec = p.nextTransfer(c.world, `${prefix}-${k}`, worker, random);
    c.outcomes.push(await c.transfer(client, spec));
  }
}
