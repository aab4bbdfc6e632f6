/**
 * Proves that SIGKILLs at the protocol's failpoints (coordinator/failpoints) and a random mix
 * of every fault, one after another on the same three-node cluster under mixed load, lose,
 * split and leave behind nothing (the checks of cluster-load.ts after the last fault), and
 * that the load makes progress after each fault.
 * - failpoints: in rounds, both standbys restart armed with failpoints not fired yet, then
 *   the leader is killed; each failpoint that fires SIGKILLs the node that leads through it;
 * - the nemesis: the CI size of docs/cluster-faults.md's soak (about 60 s of faults).
 * VERDICT_CLUSTER_SEED=N replays a seed.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { failpointNames, type FailpointName } from "../../coordinator/failpoints/failpoints.js";
import { freshSeed } from "../chaos/soak-workload.js";
import { ensureBuilt } from "../support/process-node.js";
import { seededRandom } from "../unit/log/seeded-random.js";
import { runFaultCase } from "./fault-case.js";
import { linearizabilityChecker } from "./linearizability.js";
import { armStandbys, faultKinds, faults, firedFailpoints, runNemesis } from "./nemesis.js";

const seed = Number(process.env.VERDICT_CLUSTER_SEED ?? freshSeed());
/** Rounds of the failpoint case are started until this much time has passed. */
const failpointBudgetMs = 80_000;
const failpointRoundsMax = 10;

before(() => {
  ensureBuilt();
  linearizabilityChecker();
});

test(`SIGKILL of the leader at failpoints (seed ${seed})`, async (t) => {
  let fired = new Map<FailpointName, number>();
  const r = await runFaultCase("failpoints", seed, async (fc, load) => {
    const random = seededRandom(seed);
    const stalls: string[] = [];
    const deadline = Date.now() + failpointBudgetMs;
    for (let round = 1; round <= failpointRoundsMax && Date.now() < deadline; round++) {
      fired = firedFailpoints(fc);
      const left = failpointNames.filter((n) => !fired.has(n));
      if (left.length === 0) break;
      let next = random.int(0, left.length - 1);
      await armStandbys(fc, () => `${left[next++ % left.length]}=crash@${random.int(1, 2)}`);
      await faults["kill-leader"](fc, random);
      await fc.healAll();
      await fc.awaitLeader(20_000);
      if (!(await load.awaitCommits(3, 30_000))) stalls.push(`no progress after round ${round}`);
    }
    fired = firedFailpoints(fc);
    return stalls;
  });
  t.diagnostic(r.line);
  t.diagnostic(`failpoints fired: ${JSON.stringify(Object.fromEntries(fired))}`);
  t.diagnostic(`never fired: ${failpointNames.filter((n) => !fired.has(n)).join(", ")}`);
  assert.deepEqual(r.verdict.violations, [], `seed ${seed}; evidence ${r.evidenceDir}`);
  assert.ok(fired.size >= 4, `only ${fired.size} failpoints fired`);
});

test(`the nemesis: random faults under load (seed ${seed})`, async (t) => {
  const r = await runNemesis({
    seed,
    durationMs: 60_000,
    kinds: faultKinds,
    say: (line) => t.diagnostic(line),
  });
  t.diagnostic(r.line);
  t.diagnostic(
    `faults ${JSON.stringify(r.faults)}; failpoints ${JSON.stringify(r.failpointsFired)}`,
  );
  assert.deepEqual(r.verdict.violations, [], `seed ${seed}; evidence ${r.evidenceDir}`);
  assert.ok(r.verdict.terms.length >= 2, "no failover happened");
});
