/**
 * What a fuzz run must not change when all it sends is refused: the node's transactions as the
 * admin API lists them (xid → state, every page) and this cluster's prepared branches in
 * PostgreSQL (pg_prepared_xacts, by the cluster's gid prefix). Also seeds one transaction in each
 * of the states a caller can leave one in, so that there is something to change.
 */
import assert from "node:assert/strict";
import { pgStatements, sql, VerdictClient } from "../../client/index.js";
import type { AdminTransactionSummary } from "../../coordinator/api/contract/schemas.js";
import { preparedOf, raw, waitFor, type ApiNode } from "../integration/api/harness.js";

export interface NodeState {
  /** xid → state, from /admin/v1/transactions. */
  readonly transactions: Readonly<Record<string, string>>;
  /** State → number of transactions. */
  readonly countsByState: Readonly<Record<string, number>>;
  /** gids of this cluster's prepared branches, any database. */
  readonly preparedGids: readonly string[];
}

/** Pages read at most: far more than a fuzz node holds (its limit is 256 in flight). */
const pagesMax = 100;
const pageSize = 500;

export async function nodeState(node: ApiNode): Promise<NodeState> {
  const transactions: Record<string, string> = {};
  let cursor: string | null = null;
  for (let page = 0; ; page++) {
    assert.ok(page < pagesMax, `more than ${pagesMax} pages of transactions`);
    const query = `?limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const answer = await raw(node.url, "GET", `/admin/v1/transactions${query}`, {
      token: node.adminToken,
    });
    assert.equal(answer.status, 200, answer.text);
    const body = answer.body as {
      transactions: AdminTransactionSummary[];
      nextCursor: string | null;
    };
    for (const t of body.transactions) transactions[t.xid] = t.state;
    cursor = body.nextCursor;
    if (cursor === null) break;
  }
  const countsByState: Record<string, number> = {};
  for (const state of Object.values(transactions)) {
    countsByState[state] = (countsByState[state] ?? 0) + 1;
  }
  const preparedGids = (await preparedOf(node.node.clusterId)).map((r) => r.gid);
  return { transactions, countsByState, preparedGids };
}

/** Transactions in each state a caller leaves one in; `finish` ends the open ones. */
export interface Seeded {
  readonly xids: Readonly<Record<"active" | "prepared" | "committed" | "aborted", string>>;
  finish(): Promise<void>;
}

/** The longest deadline the fuzz node allows: the seeded open ones outlive the run. */
const seedTimeoutMs = 60_000;

export async function seedTransactions(node: ApiNode): Promise<Seeded> {
  const client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  const withBranch = async () => {
    const { xid } = await client.begin({ timeoutMs: seedTimeoutMs });
    await client.enlist(xid, pgStatements("pg-a", [sql("select 1")]));
    return xid;
  };
  const active = (await client.begin({ timeoutMs: seedTimeoutMs })).xid;
  const prepared = await withBranch();
  assert.equal((await client.prepare(prepared)).state, "prepared");
  const committed = await withBranch();
  assert.equal((await client.commit(committed)).state, "committed");
  const aborted = await withBranch();
  assert.equal((await client.abort(aborted)).state, "aborted");
  return {
    xids: { active, prepared, committed, aborted },
    async finish() {
      await client.abort(active);
      await client.abort(prepared);
    },
  };
}

const openStates = new Set(["active", "preparing", "prepared"]);
const settleTimeoutMs = 30_000;

/**
 * Aborts what the fuzzer began and left open (as admin, who may drive any transaction), and
 * waits until every transaction is final, so that the node stops with no prepared branch.
 */
export async function abortOpen(node: ApiNode): Promise<void> {
  const open = Object.entries((await nodeState(node)).transactions).filter(([, s]) =>
    openStates.has(s),
  );
  for (const [xid] of open) {
    const answer = await raw(node.url, "POST", `/v1/transactions/${xid}/abort`, {
      token: node.adminToken,
      body: {},
    });
    // 409: it was decided meanwhile (a deadline, or a commit already under way).
    assert.ok([200, 202, 409].includes(answer.status), `abort ${xid}: ${answer.text}`);
  }
  await waitFor(
    "every transaction final",
    async () => {
      const states = Object.values((await nodeState(node)).transactions);
      return states.every((s) => s === "committed" || s === "aborted") ? true : undefined;
    },
    settleTimeoutMs,
  );
}
