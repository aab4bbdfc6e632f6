/**
 * Hostile SQL from a client token cannot reach Verdict's bookkeeping, stall its work, or
 * stop other principals (docs/security.md). A real node with statement roles (pg-a, pg-b on
 * deploy/local's PostgreSQL); client-b, scoped to pg-a, is the attacker; client-a keeps
 * transferring between pg-a and pg-b. For every attack: client-a's transfers commit, no
 * row of Verdict's schema was added, changed or removed except by its own bookkeeping of
 * the real branches, and the attacker's transaction ends cleanly (aborted, nothing left
 * prepared) within a bound. Attacks: LOCK TABLE on each Verdict table; insert, update and
 * delete on markers and tombstones; pg_terminate_backend and pg_cancel_backend on
 * Verdict's sessions; set_config('role'), SET LOCAL ROLE, RESET ROLE, SET SESSION
 * AUTHORIZATION; reading pg_prepared_xacts and Verdict's tables (also through error text);
 * lo_import and pg_read_file; an advisory lock held across prepare (a participant still
 * starts on the same schema); pg_sleep against the deadline; a lock on a business table
 * (other transfers end fast, never past their deadline).
 * Run against the single-role configuration (VERDICT_SECURITY_SINGLE_ROLE=1) these fail.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { pgStatements, sql, VerdictClient, type Statement } from "../../client/index.js";
import { createPostgresParticipant } from "../../participants/postgres/participant.js";
import { ddlLockKey } from "../../participants/postgres/schema.js";
import {
  createAccounts,
  databases,
  preparedOf,
  raw,
  startApiNode,
  waitFor,
  type Accounts,
  type ApiNode,
} from "../integration/api/harness.js";
import { services } from "../support/services.js";

const singleRole = process.env.VERDICT_SECURITY_SINGLE_ROLE === "1";

let node: ApiNode;
let accounts: Accounts;
let victim: VerdictClient;
let attacker: VerdictClient;
let verdictDb: pg.Pool;

before(async () => {
  node = await startApiNode({
    scopedParticipants: ["pg-a"],
    ...(singleRole ? { postgres: { statementRoles: undefined, unsafeSingleRole: true } } : {}),
  });
  accounts = await createAccounts({ "pg-a": [[1, 1_000_000]], "pg-b": [[1, 0]] });
  victim = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  attacker = new VerdictClient({ baseUrl: node.url, token: node.otherClientToken });
  // Verdict's own role, to read its schema; bounded so that a wedged table fails the test.
  verdictDb = new pg.Pool({ connectionString: databases["pg-a"], max: 2, lock_timeout: 3_000 });
});

after(async () => {
  try {
    await node?.stop();
  } finally {
    await accounts?.drop();
    await verdictDb?.end();
  }
});

const schema = (): string => `"${node.schema}"`;

/** Every row of Verdict's tables on pg-a, as `table|gid|xid` strings. */
async function verdictRows(): Promise<Set<string>> {
  const { rows } = await verdictDb.query<{ r: string }>(
    `select 'marker|' || gid || '|' || coalesce(xid::text, '') || '|' || coalesce(kind, '') as r from ${schema()}.marker
     union all select 'tombstone|' || gid from ${schema()}.tombstone
     union all select 'branch_xact|' || gid || '|' || xid::text from ${schema()}.branch_xact
     union all select 'cluster|' || cluster_id from ${schema()}.cluster`,
  );
  return new Set(rows.map((r) => r.r));
}

/** One transfer of client-a from pg-a to pg-b; returns its xid and final state. */
async function transfer(timeoutMs = 5_000): Promise<{ xid: string; state: string }> {
  const { xid } = await victim.begin({ timeoutMs });
  const move = (db: "pg-a" | "pg-b", sign: string) =>
    pgStatements(db, [
      sql(`update ${accounts.table} set balance = balance ${sign} 1 where id = 1`, [], {
        expectRows: 1,
      }),
    ]);
  await victim.enlist(xid, move("pg-a", "-"));
  await victim.enlist(xid, move("pg-b", "+"));
  const answer = await raw(node.url, "POST", `/v1/transactions/${xid}/commit`, {
    token: node.clientToken,
    body: {},
  });
  return { xid, state: (answer.body as { state: string }).state };
}

interface AttackResult {
  readonly xid: string;
  /** The prepare answer: `prepared`, or the abort with its reason. */
  readonly prepareState: string;
  readonly message: string;
}

/**
 * client-b enlists `statements` on pg-a and prepares; while its branch is prepared (or
 * after its no vote) client-a transfers; then client-b aborts. Asserts the three promises
 * of the suite and returns what the attacker saw.
 */
async function attack(
  statements: Statement[],
  opts: { timeoutMs?: number; victimsMustCommit?: boolean } = {},
): Promise<AttackResult> {
  const before = await verdictRows();
  const { xid } = await attacker.begin({ timeoutMs: opts.timeoutMs ?? 4_000 });
  await attacker.enlist(xid, pgStatements("pg-a", statements));
  const prepared = await raw(node.url, "POST", `/v1/transactions/${xid}/prepare`, {
    token: node.otherClientToken,
    body: {},
  });
  const view = prepared.body as { state: string; reason?: { message?: string } };
  const victims = [];
  if (opts.victimsMustCommit !== false) {
    for (let i = 0; i < 3; i += 1) {
      const started = Date.now();
      const done = await transfer();
      assert.equal(done.state, "committed", `client-a's transfer ${i + 1} commits`);
      assert.ok(Date.now() - started < 5_000, "client-a's transfer is not held up");
      victims.push(done.xid);
    }
  }
  // The attacker's transaction ends cleanly, within a bound.
  const abort = await raw(node.url, "POST", `/v1/transactions/${xid}/abort`, {
    token: node.otherClientToken,
    body: {},
  });
  assert.ok([200, 409].includes(abort.status), abort.text);
  await waitFor(
    "the attacker's transaction is aborted with nothing left prepared",
    async () => {
      const status = await attacker.status(xid);
      const left = (await preparedOf(node.node.clusterId)).filter((r) => r.gid.includes(xid));
      return status.state === "aborted" && left.length === 0 ? true : undefined;
    },
    10_000,
  );
  // Verdict's schema: nothing removed or changed; new rows only for the real branches.
  const afterRows = await verdictRows();
  for (const row of before) assert.ok(afterRows.has(row), `row ${row} of Verdict's schema kept`);
  const ours = [xid, ...victims];
  for (const row of afterRows) {
    if (before.has(row)) continue;
    assert.ok(
      ours.some((x) => row.includes(`:${x}:`)),
      `row ${row} of Verdict's schema is bookkeeping of a real branch`,
    );
  }
  // Its rollback claims the key with a `rolled-back` row; a commit marker would be a breach.
  const attackerGid = `${node.node.clusterId}:${xid}:1`;
  assert.ok(
    ![...afterRows].some((r) => r.startsWith(`marker|${attackerGid}|`) && r.endsWith("|commit")),
    "no commit marker for the attacker",
  );
  return { xid, prepareState: view.state, message: view.reason?.message ?? "" };
}

/** The attack was refused: the attacker's branch voted no. */
function refused(result: AttackResult, pattern: RegExp): void {
  assert.equal(result.prepareState, "aborted", "the attacker's branch voted no");
  assert.match(result.message, pattern);
}

describe("Verdict's tables are out of reach", () => {
  for (const table of ["marker", "tombstone", "cluster", "branch_xact"]) {
    test(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`, async () => {
      const r = await attack([sql(`lock table ${schema()}.${table} in access exclusive mode`)]);
      refused(r, /permission denied/);
    });
  }

  const writes: [string, () => string][] = [
    [
      "insert a forged tombstone",
      () => `insert into ${schema()}.tombstone (gid) values ('forged')`,
    ],
    ["insert a forged marker", () => `insert into ${schema()}.marker (gid) values ('forged')`],
    ["delete the markers", () => `delete from ${schema()}.marker`],
    ["update the markers", () => `update ${schema()}.marker set gid = gid || 'x'`],
    ["delete the tombstones", () => `delete from ${schema()}.tombstone`],
    ["rewrite the transaction records", () => `update ${schema()}.branch_xact set xid = '1'`],
  ];
  for (const [name, text] of writes) {
    test(name, async () => {
      // Some real branches first, so that there is something to delete or change.
      assert.equal((await transfer()).state, "committed");
      refused(await attack([sql(text())]), /permission denied/);
    });
  }

  test("reading Verdict's tables and pg_prepared_xacts, also through error text", async () => {
    const held = await transfer();
    assert.equal(held.state, "committed");
    for (const text of [
      `select cluster_id from ${schema()}.cluster`,
      `select (select cluster_id from ${schema()}.cluster)::int`,
      `select (select string_agg(gid, ',') from ${schema()}.marker)::int`,
      "select (select string_agg(gid, ',') from pg_prepared_xacts)::int",
      "select gid from pg_prepared_xacts",
    ]) {
      const r = await attack([sql(text)], { victimsMustCommit: false });
      refused(r, /permission denied/);
      assert.ok(!r.message.includes(node.node.clusterId), `${text}: no cluster id in the answer`);
      assert.ok(!r.message.includes(held.xid), `${text}: no other branch in the answer`);
    }
  });
});

describe("roles and sessions", () => {
  const attempts: [string, string, RegExp][] = [
    ["set_config('role')", "select set_config('role', 'verdict', true)", /permission denied/],
    ["SET LOCAL ROLE", "set local role verdict", /permission denied/],
    ["RESET ROLE", "reset role", /refused/],
    ["SET SESSION AUTHORIZATION", "set session authorization verdict", /SET outlives/],
    [
      "SET LOCAL SESSION AUTHORIZATION",
      "set local session authorization verdict",
      /permission denied/,
    ],
    [
      "pg_terminate_backend on Verdict's sessions",
      "select pg_terminate_backend(pid) from pg_stat_activity where usename = 'verdict' and application_name like 'verdict:%' and datname = current_database()",
      /permission denied|must be a member/,
    ],
    [
      "pg_cancel_backend on Verdict's sessions",
      "select pg_cancel_backend(pid) from pg_stat_activity where usename = 'verdict' and application_name like 'verdict:%' and datname = current_database()",
      /permission denied|must be a member/,
    ],
    ["lo_import", "select lo_import('/etc/passwd')", /permission denied/],
    ["pg_read_file", "select pg_read_file('/etc/passwd')", /permission denied/],
  ];
  for (const [name, text, pattern] of attempts) {
    test(name, async () => {
      refused(await attack([sql(text)]), pattern);
    });
  }
});

describe("holding things across prepare", () => {
  test("an advisory lock on Verdict's DDL key: the branch holds it, a participant still starts", async () => {
    const before = await preparedOf(node.node.clusterId);
    const { xid } = await attacker.begin({ timeoutMs: 30_000 });
    await attacker.enlist(
      xid,
      pgStatements("pg-a", [sql("select pg_advisory_xact_lock($1)", [ddlLockKey])]),
    );
    assert.equal((await attacker.prepare(xid)).state, "prepared");
    assert.equal((await preparedOf(node.node.clusterId)).length, before.length + 1);
    const restarted = createPostgresParticipant({
      name: "pg-a",
      connectionString: services.pgUrlA,
      schema: node.schema,
      ...(singleRole ? { unsafeSingleRole: true } : { statementRoles: services.pgStatementRoles }),
      phase2TimeoutMs: 3_000,
    });
    try {
      const started = Date.now();
      await restarted.start(node.node.clusterId);
      assert.ok(Date.now() - started < 3_000, "start did not wait on the advisory lock");
    } finally {
      await restarted.close();
    }
    assert.equal((await transfer()).state, "committed");
    assert.equal((await attacker.abort(xid)).state, "aborted");
  });

  test("pg_sleep against the deadline: a fast no vote, others commit meanwhile", async () => {
    const started = Date.now();
    const r = await attack([sql("select pg_sleep(60)")], { timeoutMs: 1_500 });
    refused(r, /deadline|timeout|cancel/);
    assert.ok(Date.now() - started < 20_000);
  });

  test("a lock on a business table: others' transfers end by their deadline, then commit again", async () => {
    const { xid } = await attacker.begin({ timeoutMs: 30_000 });
    await attacker.enlist(
      xid,
      pgStatements("pg-a", [sql(`lock table ${accounts.table} in access exclusive mode`)]),
    );
    assert.equal((await attacker.prepare(xid)).state, "prepared");
    const started = Date.now();
    const blocked = await transfer(1_500);
    assert.equal(blocked.state, "aborted", "a fast abort, not a hang");
    assert.ok(Date.now() - started < 6_000, `ended in ${Date.now() - started} ms`);
    assert.equal((await attacker.abort(xid)).state, "aborted");
    assert.equal((await transfer()).state, "committed");
  });
});
