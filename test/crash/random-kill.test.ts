/**
 * Proves that SIGKILL at arbitrary moments — not only at the named failpoints — loses nothing
 * and leaves nothing half-done, across repeated crashes of the same cluster. A seeded run
 * (the seed is printed; VERDICT_CRASH_SEED=N replays its schedule: kill times, transfer
 * kinds, accounts and amounts — the interleaving inside the process stays the OS's) starts a
 * real coordinator process, drives concurrent two-phase and one-phase transfers from several
 * workers, SIGKILLs it at a random moment (sometimes while it is still recovering from the
 * previous kill), and restarts it on the same data directory and schema, for several cycles.
 * After a last restart and once recovery has settled, PostgreSQL is read directly with the
 * same checks as the failpoint tests: all-or-nothing, what clients were told holds, no
 * prepared transaction of the cluster left, money conserved.
 */
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";
import { seededRandom, type SeededRandom } from "../unit/log/seeded-random.js";
import { ensureBuilt, killLeftovers, type ProcessNode } from "../support/process-node.js";
import { clientFor, makeTransfer, runTransfer } from "./bank.js";
import { createCrashCluster, transferTimeoutMs, type CrashCluster } from "./scenario.js";

const seed = Number(process.env.VERDICT_CRASH_SEED ?? randomInt(2 ** 31));
const cycles = 8;
const workers = 12;
const killAfterMsMin = 100;
const killAfterMsMax = 2_500;
/** Per worker and cycle: bounds a loop that would otherwise only end with the node. */
const transfersPerWorkerMax = 500;

before(ensureBuilt);
after(killLeftovers);

/** One worker's transfers against `node`, until it is killed (or its bound). */
async function work(
  c: CrashCluster,
  node: ProcessNode,
  random: SeededRandom,
  prefix: string,
): Promise<void> {
  const client = clientFor(node.url, c.cluster.clientToken);
  for (let k = 0; k < transfersPerWorkerMax && !node.exitStatus(); k++) {
    const kind = random.chance(0.25) ? "one-phase" : "two-phase";
    const spec = makeTransfer(`${prefix}-${k}`, c.bank, kind, random.chance(0.1), (max) =>
      random.int(1, max),
    );
    c.outcomes.push(await runTransfer(client, c.bank, spec, transferTimeoutMs));
  }
}

test(`random SIGKILLs under concurrent load (seed ${seed})`, async (t) => {
  assert.ok(Number.isSafeInteger(seed), `VERDICT_CRASH_SEED must be an integer, got ${seed}`);
  t.diagnostic(`seed ${seed} (replay: VERDICT_CRASH_SEED=${seed})`);
  const random = seededRandom(seed);
  const c = await createCrashCluster(seed);
  try {
    for (let cycle = 0; cycle < cycles; cycle++) {
      const startedAt = Date.now();
      const node = await c.cluster.start();
      const listeningMs = Date.now() - startedAt;
      const killAfterMs = random.int(killAfterMsMin, killAfterMsMax);
      const before = c.outcomes.length;
      const load = Array.from({ length: workers }, (_, w) =>
        work(c, node, seededRandom(seed + 1 + cycle * workers + w), `c${cycle}w${w}`),
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
});
