/**
 * Targeted cases from the traps of a replicated coordinator, each on three real Verdict
 * processes over a private etcd (the etcd ledger of every case also shows that no log/<i>
 * was ever overwritten, by a lagging leader or anyone):
 * - a forwarding loop: a call that names a term the node does not lead answers 503
 *   not-leader at once, and a standby never forwards a call that was forwarded already;
 * - a re-driven prepare beside a paused old prepare: the leader's PostgreSQL prepare is held
 *   on a row lock the test owns, the leader is cut off from etcd, the new leader re-drives
 *   phase 1 while the old prepare still waits, then the lock is released: the transfer ends
 *   one way everywhere, nothing is left prepared;
 * - a one-phase COMMIT after the fence: the same, with a single PostgreSQL branch (one-phase):
 *   the new leader's fence and the old leader's late COMMIT cannot both win.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import {
  pgStatements,
  sql,
  TransactionAbortedError,
  VerdictClient,
  type EnlistRequest,
} from "../../client/index.js";
import { soakBranches, type SoakSpec } from "../chaos/soak-workload.js";
import { preparedGids } from "../crash/bank.js";
import { ensureBuilt } from "../support/process-node.js";
import { services } from "../support/services.js";
import { readLedger } from "./etcd-ledger.js";
import { FaultCluster } from "./fault-cluster.js";
import { failoverTimeoutMs } from "./nemesis.js";

const targetTermHeader = "verdict-target-term";
/** Why the blocked transfer aborted, if it did (for the diagnostics). */
let reason = "";

before(ensureBuilt);

async function withCluster(run: (fc: FaultCluster) => Promise<void>): Promise<void> {
  const fc = await FaultCluster.create({ accounts: 10 });
  try {
    await fc.startAll();
    await fc.awaitLeader(20_000);
    await run(fc);
    const ledger = await readLedger(fc.etcdAdmin, fc.nodes.clusterId);
    assert.deepEqual(ledger.violations, []);
  } finally {
    await fc.destroy();
  }
}

function sdk(fc: FaultCluster): VerdictClient {
  return new VerdictClient({
    baseUrls: fc.urls,
    token: fc.nodes.clientToken,
    timeoutMs: 10_000,
    outcomeChecksMax: 10,
    outcomeTimeoutMs: 60_000,
  });
}

/** Holds a row lock on account `id` of pg-a until `release` (a session of its own). */
async function lockAccount(fc: FaultCluster, id: number): Promise<() => Promise<void>> {
  const client = new pg.Client({ connectionString: services.pgUrlA });
  await client.connect();
  await client.query("begin");
  await client.query(`select 1 from ${fc.world.bank.acct} where id = $1 for update`, [id]);
  return async () => {
    await client.query("rollback");
    await client.end();
  };
}

async function legsOf(fc: FaultCluster, id: string): Promise<number> {
  const { rows } = await fc.world.bank.pools["pg-a"].query<{ n: string }>(
    `select count(*) as n from ${fc.world.bank.legs} where id = $1`,
    [id],
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Runs one transfer whose pg-a branch blocks on a locked row, cuts the leader off from etcd
 * while it waits, lets the new leader take over, then releases the row. Returns what the
 * client was finally told and the legs pg-a holds.
 */
async function blockedAcrossFailover(
  fc: FaultCluster,
  id: string,
  branches: EnlistRequest[],
): Promise<{ told: "committed" | "aborted"; legs: number }> {
  const release = await lockAccount(fc, 1);
  let released = false;
  try {
    const client = sdk(fc);
    const { xid } = await client.begin({ timeoutMs: 60_000 });
    for (const b of branches) await client.enlist(xid, b);
    const commit = client.commit(xid).then(
      () => "committed" as const,
      (e: unknown) => {
        if (!(e instanceof TransactionAbortedError)) return e;
        reason = JSON.stringify(e.reason);
        return "aborted" as const;
      },
    );
    await sleep(1_000); // the prepare (or one-phase commit) now waits on the row
    const { node, term } = await fc.leaderNode();
    node.cutFromEtcd();
    await fc.awaitLeader(failoverTimeoutMs, (l) => l.term > term && l.nodeId !== node.id);
    await sleep(2_000); // the new leader re-drives while the old call still waits
    await release();
    released = true;
    node.healEtcd();
    const answered = await commit;
    let told: "committed" | "aborted";
    if (answered === "committed" || answered === "aborted") told = answered;
    else {
      // The first commit's outcome was unknown: the status is final once recovery ran.
      const view = await client.status(xid);
      told = view.state === "committed" || view.state === "committing" ? "committed" : "aborted";
    }
    await fc.healAll();
    for (
      let i = 0;
      i < 100 && (await preparedGids(fc.world.bank.pools, fc.nodes.clusterId)).length > 0;
      i++
    ) {
      await sleep(200);
    }
    assert.deepEqual(await preparedGids(fc.world.bank.pools, fc.nodes.clusterId), []);
    return { told, legs: await legsOf(fc, id) };
  } finally {
    if (!released) await release();
  }
}

describe("targeted cluster cases", () => {
  test("a forwarding loop: a call for another term answers not-leader at once", async () => {
    await withCluster(async (fc) => {
      const { node: leader, term } = await fc.leaderNode();
      const begin = (url: string, target?: number) =>
        fetch(`${url}/v1/transactions`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${fc.nodes.clientToken}`,
            "content-type": "application/json",
            ...(target === undefined ? {} : { [targetTermHeader]: String(target) }),
          },
          body: "{}",
          signal: AbortSignal.timeout(5_000),
        });
      for (const n of fc.nodes.nodes) {
        const res = await begin(n.url, term + 1_000);
        const body = await res.text();
        assert.equal(res.status, 503, `${n.id}: ${body}`);
        const parsed = JSON.parse(body) as { error?: { code?: string } };
        assert.equal(parsed.error?.code, "not-leader", body);
        if (n === leader) continue;
        // A forwarded call (it names the leader's term) is never forwarded again.
        const again = await begin(n.url, term);
        assert.equal(again.status, 503, `${n.id} forwarded a forwarded call`);
        // A plain call to a standby is forwarded once and begins.
        assert.equal((await begin(n.url)).status, 201);
      }
    });
  });

  test("a re-driven prepare beside a paused old prepare: one outcome everywhere", async (t) => {
    await withCluster(async (fc) => {
      const spec: SoakSpec = { id: "redrive", client: 0, from: 1, to: 2, amount: 5, doom: "none" };
      const { told, legs } = await blockedAcrossFailover(fc, spec.id, soakBranches(fc.world, spec));
      t.diagnostic(`told ${told} ${reason}, pg-a legs ${legs}`);
      assert.equal(legs, told === "committed" ? 1 : 0, `told ${told}, pg-a legs ${legs}`);
      const key = await fc.world.redisDirect.get(`${fc.world.keyPrefix}soak:t:${spec.id}`);
      assert.equal(key !== null, told === "committed", `told ${told}, redis key ${key}`);
    });
  });

  test("a one-phase COMMIT after the fence: one outcome", async (t) => {
    await withCluster(async (fc) => {
      const legs = `insert into ${fc.world.bank.legs} (id, acct, delta) values ($1, $2, $3)`;
      const branch = pgStatements("pg-a", [
        sql(`update ${fc.world.bank.acct} set balance = balance - 5 where id = 1`, [], {
          expectRows: 1,
        }),
        sql(legs, ["one-phase", 1, -5], { expectRows: 1 }),
      ]);
      const r = await blockedAcrossFailover(fc, "one-phase", [branch]);
      t.diagnostic(`told ${r.told} ${reason}, pg-a legs ${r.legs}`);
      assert.equal(r.legs, r.told === "committed" ? 1 : 0, `told ${r.told}, pg-a legs ${r.legs}`);
    });
  });
});
