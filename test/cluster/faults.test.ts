/**
 * Proves, with three real Verdict processes over a private 3-member etcd and the real
 * PostgreSQL, Redis and Kafka under mixed four-branch load, that each fault loses, splits and
 * leaves behind nothing: after each one the cluster is healed and recovery settles, then
 * every acknowledged commit is in every participant, every acknowledged abort is absent,
 * nothing is left prepared or staged, each Kafka event is there exactly once, the client
 * history is linearizable per transaction (Porcupine), and etcd's own history shows every
 * `log/<i>` written once, by the term that held the election key (cluster-load.ts).
 * Faults: SIGKILL of the leader; SIGSTOP of the leader past its lease, then SIGCONT (its term
 * appends nothing more: etcd's ledger); the leader cut off from etcd (it answers 503, never a
 * stale state); a kill of etcd's own leader (no Verdict failover); two etcd members killed
 * (begin answers 503, nothing lost, the load resumes); a wiped data directory; rapid
 * leadership handovers. VERDICT_CLUSTER_SEED=N replays a seed.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { freshSeed } from "../chaos/soak-workload.js";
import { ensureBuilt } from "../support/process-node.js";
import { seededRandom } from "../unit/log/seeded-random.js";
import { runFaultCase, type CaseResult } from "./fault-case.js";
import { linearizabilityChecker } from "./linearizability.js";
import { failoverTimeoutMs, faults } from "./nemesis.js";

const seed = Number(process.env.VERDICT_CLUSTER_SEED ?? freshSeed());
const random = () => seededRandom(seed);

function assertClean(r: CaseResult, t: { diagnostic(line: string): void }): void {
  t.diagnostic(r.line);
  assert.deepEqual(r.verdict.violations, [], `seed ${seed}; evidence ${r.evidenceDir}`);
  const told = r.verdict.told;
  assert.ok(told.committed + told.committing > 0, JSON.stringify(told));
}

describe("cluster faults under load", () => {
  before(() => {
    ensureBuilt();
    linearizabilityChecker();
  });

  test(`SIGKILL of the leader (seed ${seed})`, async (t) => {
    const r = await runFaultCase("kill-leader", seed, (fc) => faults["kill-leader"](fc, random()));
    assertClean(r, t);
    assert.ok(r.verdict.terms.length >= 2, "a failover");
  });

  test(`SIGSTOP of the leader past its lease, then SIGCONT (seed ${seed})`, async (t) => {
    let deposed: { nodeId: string; term: number } | undefined;
    const r = await runFaultCase("pause-leader", seed, async (fc) => {
      const { node, term } = await fc.leaderNode();
      await node.signal("SIGSTOP");
      deposed = { nodeId: node.id, term };
      await fc.awaitLeader(failoverTimeoutMs, (l) => l.term > term && l.nodeId !== node.id);
      await sleep(fc.leaseTtlMs);
      await node.signal("SIGCONT");
      await sleep(2_000);
      assert.ok(node.running(), `the paused node died: ${node.logTail()}`);
    });
    assertClean(r, t);
    // The ledger already refuses any batch of a term after its key was deleted; this names it.
    const old = r.verdict.terms.find((x) => x.term === deposed?.term);
    assert.ok(old?.endedAt !== undefined, "the paused leader's election key was deleted");
  });

  test(`the leader cut off from etcd (seed ${seed})`, async (t) => {
    const r = await runFaultCase("cut-leader", seed, async (fc) => {
      const { node, term } = await fc.leaderNode();
      node.cutFromEtcd();
      await fc.awaitLeader(failoverTimeoutMs, (l) => l.term > term && l.nodeId !== node.id);
      // Cut off, it cannot confirm its leadership: it must not answer a state from its table.
      const res = await fetch(`${node.url}/v1/transactions/x-0-0`, {
        headers: { authorization: `Bearer ${fc.nodes.clientToken}` },
        signal: AbortSignal.timeout(10_000),
      }).catch((e: unknown) => e);
      if (res instanceof Response) assert.equal(res.status, 503, await res.text());
      node.healEtcd();
    });
    assertClean(r, t);
  });

  test(`etcd's leader killed: no Verdict failover (seed ${seed})`, async (t) => {
    const r = await runFaultCase(
      "kill-etcd-leader",
      seed,
      async (fc, load) => {
        const victim = await fc.etcd.leader();
        await fc.etcd.signal(victim, "SIGKILL");
        assert.ok(await load.awaitCommits(10, 20_000), "commits continue on two members");
        await fc.etcd.restart(victim);
      },
      {
        // The default lease (5 s). At 3 s (margin 0.5 s) renewals now move off a dead member
        // at once (test/integration/etcd/keepalive-failover.test.ts), yet one run in five
        // still stepped down (seed 1979037939): etcd's election took 1.55 s, and the kill
        // fell just before a renewal, leaving 3 - 0.5 - 1 (TTL/3) = 1.5 s (docs/etcd.md).
        leaseTtlMs: 5_000,
        expect: (v) =>
          v.terms.length === 1 ? [] : [`a Verdict failover: terms ${JSON.stringify(v.terms)}`],
      },
    );
    assertClean(r, t);
  });

  test(`two etcd members killed: 503s, nothing lost, resumes (seed ${seed})`, async (t) => {
    const r = await runFaultCase("kill-two-etcd", seed, async (fc) => {
      const first = await fc.etcd.leader();
      const second = first === 1 ? 2 : 1;
      await fc.etcd.signal(first, "SIGKILL");
      await fc.etcd.signal(second, "SIGKILL");
      await sleep(fc.leaseTtlMs);
      // No quorum: a begin cannot be served (the node is not ready, or has no leader).
      const statuses = await Promise.all(
        fc.urls.map(async (url) => {
          const res = await fetch(`${url}/v1/transactions`, {
            method: "POST",
            headers: {
              authorization: `Bearer ${fc.nodes.clientToken}`,
              "content-type": "application/json",
            },
            body: "{}",
            signal: AbortSignal.timeout(10_000),
          }).catch(() => undefined);
          return res?.status;
        }),
      );
      assert.ok(
        statuses.every((s) => s === undefined || s === 503),
        `begin without an etcd quorum answered ${statuses.join(", ")}`,
      );
      await fc.etcd.restart(first);
      await fc.etcd.restart(second);
    });
    assertClean(r, t);
  });

  test(`a wiped data directory (seed ${seed})`, async (t) => {
    const r = await runFaultCase("wipe-node", seed, (fc) => faults["wipe-leader"](fc, random()));
    assertClean(r, t);
  });

  test(`rapid leadership handovers (seed ${seed})`, async (t) => {
    let handovers = 0;
    const r = await runFaultCase("handovers", seed, async (fc) => {
      for (let i = 0; i < 5; i++) {
        await faults.handover(fc, random());
        handovers += 1;
        await sleep(500);
      }
    });
    assertClean(r, t);
    assert.ok(r.verdict.terms.length >= handovers + 1, `${r.verdict.terms.length} terms`);
  });
});
