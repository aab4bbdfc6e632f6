/**
 * Shared set-up of the whole-coordinator tests: a real node in this process (REST API,
 * engine, WAL, PostgreSQL participants pg-a → verdict_a and pg-b → verdict_b), an account
 * table with a unique name in both databases, direct connections that read the truth, raw
 * HTTP for the bad-input tests, and a check that no prepared branch of ours is left; for the
 * operators' tests, a prepared transfer, a DBA's ROLLBACK PREPARED, the admin view, a metric
 * read from /metrics and a bounded wait.
 * Nodes come from test/support/node.ts (each with its own marker schema, dropped at the end).
 */
import { randomBytes } from "node:crypto";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import assert from "node:assert/strict";
import pg from "pg";
import type { AdminTransactionView } from "../../../coordinator/api/contract/schemas.js";
import {
  pgStatements,
  sql,
  type TransactionView,
  type VerdictClient,
} from "../../../client/index.js";
import { startTestNode, type TestNode, type TestNodeOptions } from "../../support/node.js";
import { services } from "../../support/services.js";

const runId = (): string => randomBytes(4).toString("hex");

export type ApiNodeOptions = TestNodeOptions;
/** A test node whose `stop` also checks that it left no prepared branch. */
export type ApiNode = TestNode;

/** Databases by participant name. */
export const databases = { "pg-a": services.pgUrlA, "pg-b": services.pgUrlB } as const;
export type Db = keyof typeof databases;

export async function startApiNode(opts: ApiNodeOptions = {}): Promise<ApiNode> {
  const t = await startTestNode(opts);
  return {
    ...t,
    async stop() {
      await t.node.stop();
      const left = await preparedOf(t.node.clusterId);
      // Roll back whatever is left so the server is clean, then fail the file.
      await rollbackPrepared(left);
      await t.cleanup();
      assert.deepEqual(left, [], "prepared branches of this cluster left behind");
    },
  };
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

interface PreparedRow {
  readonly gid: string;
  readonly database: string;
}

/** Prepared transactions of this cluster in any database of the server (exact prefix). */
export async function preparedOf(clusterId: string): Promise<PreparedRow[]> {
  return withClient(services.pgAdminUrl, async (c) => {
    const { rows } = await c.query<PreparedRow>(
      "select gid, database from pg_prepared_xacts where starts_with(gid, $1) order by gid",
      [`${clusterId}:`],
    );
    return rows;
  });
}

async function rollbackPrepared(rows: readonly PreparedRow[]): Promise<void> {
  for (const r of rows) await dbaRollback(r.database === "verdict_a" ? "pg-a" : "pg-b", r.gid);
}

/**
 * ROLLBACK PREPARED by hand, from a connection of its own, as a DBA would: as the role that
 * prepared it (PostgreSQL lets only that role or a superuser finish it; deploy/local gives
 * its roles one password).
 */
export async function dbaRollback(db: Db, gid: string): Promise<void> {
  const { rows } = await withClient(databases[db], (c) =>
    c.query<{ owner: string }>(
      "select owner::text as owner from pg_prepared_xacts where gid = $1",
      [gid],
    ),
  );
  const owner = rows[0]?.owner ?? services.pgStatementUser;
  await withClient(services.pgUrlAs(databases[db], owner), (c) =>
    c.query(`rollback prepared '${gid.replaceAll("'", "''")}'`),
  );
}

const pollMs = 25;

/**
 * Polls `probe` until it returns something other than undefined; fails with `what` after
 * `timeoutMs` (bounded in time, and so in count).
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await sleep(pollMs);
  }
}

/** Sum of the samples of `name` on the node's /metrics whose labels include `labels`. */
export async function metricValue(
  url: string,
  name: string,
  labels: Readonly<Record<string, string>> = {},
): Promise<number> {
  const text = (await raw(url, "GET", "/metrics")).text;
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z0-9_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const have = (m[2] ?? "").split(",");
    if (wanted.every((w) => have.includes(w))) sum += Number(m[3]);
  }
  return sum;
}

/**
 * The operators' view of a transaction, or undefined when the node answers 404. Verdict's
 * side only, unless `withParticipants`: the participants' live views change with every read
 * (their read time, lock ages), so a "nothing changed" comparison leaves them out.
 */
export async function adminView(
  node: ApiNode,
  xid: string,
  withParticipants = false,
): Promise<AdminTransactionView | undefined> {
  const answer = await raw(node.url, "GET", `/admin/v1/transactions/${xid}`, {
    token: node.adminToken,
  });
  if (answer.status === 404) return undefined;
  assert.equal(answer.status, 200, answer.text);
  const { participants, ...own } = answer.body as AdminTransactionView;
  return withParticipants ? { ...own, ...(participants ? { participants } : {}) } : own;
}

/** Total bytes of the node's decision log (segments and snapshots): grows with every entry. */
export async function logBytes(dataDir: string): Promise<number> {
  const dir = join(dataDir, "log");
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
  return total;
}

/** An `acct_<run>` table in both databases, with direct pools to read it. */
export interface Accounts {
  readonly table: string;
  readonly pools: Readonly<Record<Db, pg.Pool>>;
  balance(db: Db, id: number): Promise<number | undefined>;
  /** Every row of the table in `db`, by id. */
  rows(db: Db): Promise<Map<number, number>>;
  /** Whether the branch's commit marker is there (a rollback leaves a `rolled-back` row). */
  markerExists(db: Db, schema: string, gid: string): Promise<boolean>;
  drop(): Promise<void>;
}

export async function createAccounts(
  initial: Readonly<Record<Db, readonly [id: number, balance: number][]>>,
): Promise<Accounts> {
  const table = `acct_${runId()}`;
  const pools = {
    // A lock held by a stray prepared branch fails a read or the drop instead of hanging.
    "pg-a": new pg.Pool({ connectionString: databases["pg-a"], max: 2, lock_timeout: 5_000 }),
    "pg-b": new pg.Pool({ connectionString: databases["pg-b"], max: 2, lock_timeout: 5_000 }),
  };
  for (const db of Object.keys(pools) as Db[]) {
    await pools[db].query(
      `create table ${table} (id int primary key, balance int not null check (balance >= 0))`,
    );
    for (const [id, balance] of initial[db]) {
      await pools[db].query(`insert into ${table} values ($1, $2)`, [id, balance]);
    }
  }
  return {
    table,
    pools,
    async balance(db, id) {
      const { rows } = await pools[db].query<{ balance: number }>(
        `select balance from ${table} where id = $1`,
        [id],
      );
      return rows[0]?.balance;
    },
    async rows(db) {
      const { rows } = await pools[db].query<{ id: number; balance: number }>(
        `select id, balance from ${table} order by id`,
      );
      return new Map(rows.map((r) => [r.id, r.balance]));
    },
    async markerExists(db, schema, gid) {
      const { rows } = await pools[db].query(
        `select 1 from "${schema}".marker where gid = $1 and kind = 'commit'`,
        [gid],
      );
      return rows.length === 1;
    },
    async drop() {
      for (const db of Object.keys(pools) as Db[]) {
        await pools[db].query(`drop table if exists ${table}`);
        await pools[db].end();
      }
    },
  };
}

/**
 * A transfer of `amount` from row `id` on pg-a to row `id` on pg-b, prepared (phase 1 only):
 * branch 1 on pg-a, branch 2 on pg-b, both voted yes and wait for the decision.
 */
export async function preparedTransfer(
  client: VerdictClient,
  accounts: Accounts,
  id: number,
  amount: number,
  timeoutMs = 60_000,
): Promise<TransactionView> {
  const { xid } = await client.begin({ timeoutMs });
  for (const [db, sign] of [
    ["pg-a", "-"],
    ["pg-b", "+"],
  ] as const) {
    const update = `update ${accounts.table} set balance = balance ${sign} $1 where id = $2`;
    await client.enlist(xid, pgStatements(db, [sql(update, [amount, id], { expectRows: 1 })]));
  }
  const prepared = await client.prepare(xid);
  assert.equal(prepared.state, "prepared");
  return prepared;
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  readonly text: string;
}

export interface RawRequest {
  readonly token?: string;
  /** Sent as JSON unless `rawBody` is given. */
  readonly body?: unknown;
  readonly rawBody?: string;
  readonly headers?: Record<string, string>;
}

/** One HTTP call with no client logic: what the server answers, parsed when it is JSON. */
export async function raw(
  url: string,
  method: string,
  path: string,
  req: RawRequest = {},
): Promise<RawAnswer> {
  const headers: Record<string, string> = { ...req.headers };
  if (req.token !== undefined) headers.authorization = `Bearer ${req.token}`;
  const payload = req.rawBody ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  if (payload !== undefined && headers["content-type"] === undefined) {
    headers["content-type"] = "application/json";
  }
  const response = await fetch(url + path, {
    method,
    headers,
    ...(payload === undefined ? {} : { body: payload }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  let body: unknown;
  try {
    body = text === "" ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: response.status, headers: response.headers, body, text };
}

/** Asserts the API's one error shape with this status and stable code. */
export function assertError(answer: RawAnswer, status: number, code: string, what = ""): void {
  const where = `${what} → ${answer.status} ${answer.text.slice(0, 300)}`;
  assert.equal(answer.status, status, where);
  const body = answer.body as { error?: Record<string, unknown> } | undefined;
  const error = body?.error;
  assert.ok(error && typeof error === "object", `error body expected: ${where}`);
  assert.equal(error.code, code, where);
  assert.equal(typeof error.message, "string", where);
  assert.equal(typeof error.retryable, "boolean", where);
  const allowed = new Set(["code", "message", "retryable", "details"]);
  for (const k of Object.keys(error)) assert.ok(allowed.has(k), `unexpected error field ${k}`);
  if ("details" in error) {
    assert.ok(error.details !== null && typeof error.details === "object", where);
  }
}
