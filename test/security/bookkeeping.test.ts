/**
 * The PostgreSQL participant's bookkeeping holds against hostile SQL (docs/security.md),
 * on deploy/local's real PostgreSQL:
 * - a marker forged for another branch's gid (by a statement role calling `mark` on its own
 *   connection) is ignored: a branch a DBA rolled back is still reported heuristic, not
 *   "already committed", and health counts the forged marker;
 * - one principal's statements run as its own role: they cannot touch a table granted only
 *   to the default statement role, nor terminate that role's sessions;
 * - with statements on Verdict's own role (unsafe single-role mode), a prepared branch that
 *   holds a SHARE lock on the marker table cannot wedge anything for good: a branch prepared
 *   before it keeps it from taking the lock (it votes no), and a branch after it votes no
 *   (its marker insert times out) and its rollback throws a retryable error while the
 *   `rolled-back` claim is blocked, with health degraded naming that branch; once the locking
 *   branch is rolled back the retry claims the key, finds the branch done, and health recovers.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import type { PostgresPayload } from "../../participants/postgres/payload.js";
import { createFixture, type Fixture } from "../integration/postgres/helpers.js";
import { services } from "../support/services.js";

let f: Fixture;
before(async () => {
  f = await createFixture();
});
after(async () => {
  await f.cleanup();
});

const password = process.env.VERDICT_PG_PASSWORD ?? "verdict-local-only";
const roles = {
  default: { user: services.pgStatementUser, password },
  byPrincipal: { p2: { user: services.pgStatementUser2, password } },
};
const phase2 = { term: 1, decidedAtMs: Date.now() };
const statements = (...sqls: string[]): PostgresPayload => ({
  kind: "statements",
  statements: sqls.map((s) => ({ sql: s })),
});
const deadline = () => ({ deadlineMs: Date.now() + 10_000 });

async function asRole<T>(user: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: services.pgUrlAs(f.url, user) });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}

test("a forged marker for another branch's gid is ignored and reported", async () => {
  const p = await f.started({ statementRoles: roles });
  const gid = f.branchId();
  const payload = statements(`update ${f.table} set balance = balance - 1 where id = 1`);
  assert.deepEqual(await p.prepare({ branchId: gid, payload }, deadline()), { vote: "yes" });
  // A DBA rolls it back by hand (no tombstone); then another role forges its marker.
  await asRole(services.pgStatementUser, (c) => c.query(`rollback prepared '${gid}'`));
  const forged = await asRole(services.pgStatementUser2, (c) =>
    c.query<{ xid: string | null }>(`select "${f.schema}".mark($1) as xid`, [gid]),
  );
  assert.notEqual(forged.rows[0]?.xid, null, "the forger's marker was written");
  const outcome = await p.commit({ branchId: gid, payload }, phase2);
  assert.equal(outcome.outcome, "heuristic-rollback", "the forged marker does not count");
  assert.equal(await p.isCommitted(gid), false);
  const health = await p.health();
  assert.ok(
    health.warnings.some((w) => /forged/.test(w)),
    health.warnings.join("; "),
  );
  assert.equal(await f.balance(1), 100);
});

test("a principal's statements run as its own role", async () => {
  const p = await f.started({ statementRoles: roles });
  const own = await p.prepare(
    { branchId: f.branchId(), payload: statements(`update ${f.table} set balance = 0`) },
    { ...deadline(), principal: "p2" },
  );
  assert.equal(own.vote, "no");
  assert.match(own.vote === "no" ? own.detail : "", /permission denied/);
  const kill = await p.prepare(
    {
      branchId: f.branchId(),
      payload: statements(
        `select pg_terminate_backend(pid) from pg_stat_activity where usename = '${services.pgStatementUser}'`,
      ),
    },
    { ...deadline(), principal: "p2" },
  );
  assert.equal(kill.vote, "no");
  assert.match(kill.vote === "no" ? kill.detail : "", /permission denied|must be a member/);
  assert.equal(await f.balance(1), 100);
});

test("a branch locking the marker table cannot wedge rollbacks (single role)", async () => {
  const p = await f.started({
    unsafeSingleRole: true,
    bookkeepingLockTimeoutMs: 200,
    phase2StuckAfterMs: 100,
  });
  const lockMarkers = () => ({
    branchId: f.branchId(),
    payload: statements(`lock table "${f.schema}".marker in share mode`),
  });
  const transfer = () => ({
    branchId: f.branchId(),
    payload: statements(`update ${f.table} set balance = balance + 1 where id = 2`),
  });

  // A branch already prepared holds its marker row: the lock cannot be taken.
  const earlier = transfer();
  assert.deepEqual(await p.prepare(earlier, deadline()), { vote: "yes" });
  const refused = await p.prepare(lockMarkers(), deadline());
  assert.equal(refused.vote, "no");
  assert.deepEqual(await p.rollback(earlier, phase2), { outcome: "done" });

  // Taken first, the lock blocks the next branch's marker; its rollback retries, then ends.
  const attacker = lockMarkers();
  assert.deepEqual(await p.prepare(attacker, deadline()), { vote: "yes" });
  const victim = transfer();
  assert.equal((await p.prepare(victim, deadline())).vote, "no");
  await assert.rejects(p.rollback(victim, phase2), /marker key/);
  await sleep(150);
  const degraded = await p.health();
  assert.equal(degraded.ok, false);
  assert.match(degraded.detail, new RegExp(`degraded.*${victim.branchId.replace(/[%]/g, ".")}`));
  assert.deepEqual(await p.rollback(attacker, phase2), { outcome: "done" });
  assert.deepEqual(await p.rollback(victim, phase2), { outcome: "already-done" });
  assert.deepEqual(await f.preparedGids(), []);
  assert.equal((await p.health()).ok, true);
  assert.equal(await f.balance(2), 200);
});
