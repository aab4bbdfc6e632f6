/**
 * Idempotency-Key on prepare, commit and abort, through the real API and a restart (issue 9):
 * - a replayed commit (same key, same call) answers as the first and moves the money once;
 *   the same key on abort, or on the commit of another transaction, answers 409
 *   idempotency-key-reused; a replayed abort answers as the first;
 * - a transaction prepared through the prepare endpoint stays prepare-only across a restart:
 *   the client's retried prepare answers `prepared` and commits nothing (both branches stay
 *   prepared in PostgreSQL, balances read directly are unchanged);
 * - keys of the calls the log records survive the restart: the first commit's key on another
 *   transaction is still refused, and a replay of that commit answers the logged outcome.
 * No prepared transaction of this cluster is left at the end (checked by the harness).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pgStatements, sql, VerdictClient } from "../../../client/index.js";
import {
  assertError,
  createAccounts,
  preparedOf,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "./harness.js";

let first: ApiNode;
let node: ApiNode;
let accounts: Accounts;

before(async () => {
  first = await startApiNode();
  node = first;
  accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
});

after(async () => {
  try {
    if (node === first) await first?.stop();
    else {
      // The restarted node shares the first one's data directory and schema.
      await node.stop();
      await first.cleanup();
    }
  } finally {
    await accounts?.drop();
  }
});

/** A transfer of `amount` from pg-a to pg-b, begun and enlisted, not yet committed. */
async function transfer(amount: number): Promise<string> {
  const client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
  const { xid } = await client.begin({ timeoutMs: 60_000 });
  for (const [db, sign] of [
    ["pg-a", "-"],
    ["pg-b", "+"],
  ] as const) {
    const update = `update ${accounts.table} set balance = balance ${sign} $1 where id = 1`;
    await client.enlist(xid, pgStatements(db, [sql(update, [amount], { expectRows: 1 })]));
  }
  return xid;
}

const call = (action: "prepare" | "commit" | "abort", xid: string, key: string) =>
  raw(node.url, "POST", `/v1/transactions/${xid}/${action}`, {
    token: node.clientToken,
    body: {},
    headers: { "idempotency-key": key },
  });

const stateOf = (body: unknown): unknown => (body as { state?: unknown }).state;
const balances = async () => [await accounts.balance("pg-a", 1), await accounts.balance("pg-b", 1)];

describe("Idempotency-Key on prepare, commit and abort", () => {
  let committed: string;
  let prepared: string;
  let gids: string[][];

  test("a replayed commit answers as the first; the key on another call is refused", async () => {
    committed = await transfer(10);
    const other = await transfer(1);
    const firstCommit = await call("commit", committed, "commit-key-1");
    assert.equal(firstCommit.status, 200, firstCommit.text);
    const replay = await call("commit", committed, "commit-key-1");
    assert.equal(replay.status, 200, replay.text);
    assert.deepEqual(replay.body, firstCommit.body);
    assert.deepEqual(await balances(), [990, 10]);

    assertError(await call("abort", committed, "commit-key-1"), 409, "idempotency-key-reused");
    assertError(await call("commit", other, "commit-key-1"), 409, "idempotency-key-reused");

    const abort = await call("abort", other, "abort-key-1");
    const abortAgain = await call("abort", other, "abort-key-1");
    assert.equal(stateOf(abort.body) === "aborted" || stateOf(abort.body) === "aborting", true);
    assert.equal(abortAgain.status < 300, true, abortAgain.text);
    assert.equal(stateOf(abortAgain.body) === "committed", false);
    assert.deepEqual(await balances(), [990, 10]);
  });

  test("prepare-only survives a restart; logged keys survive it too", async () => {
    prepared = await transfer(5);
    const answer = await call("prepare", prepared, "prepare-key-1");
    assert.equal(answer.status, 200, answer.text);
    assert.equal(stateOf(answer.body), "prepared");
    gids = (await preparedOf(first.node.clusterId)).map((r) => [r.gid, r.database]).sort();
    assert.equal(gids.length, 2);

    await first.node.stop();
    node = await startApiNode({ dataDir: first.dataDir, schema: first.schema });

    // The client never heard the first answer and prepares again, with the same key.
    const again = await call("prepare", prepared, "prepare-key-1");
    assert.equal(again.status, 200, again.text);
    assert.equal(stateOf(again.body), "prepared");
    assert.deepEqual(await balances(), [990, 10]);
    const still = (await preparedOf(node.node.clusterId)).map((r) => [r.gid, r.database]);
    assert.deepEqual(still.sort(), gids);

    // The first commit's key is in the log: refused elsewhere, its replay answers the outcome.
    assertError(await call("commit", prepared, "commit-key-1"), 409, "idempotency-key-reused");
    const replay = await call("commit", committed, "commit-key-1");
    assert.equal(replay.status, 200, replay.text);
    assert.equal(stateOf(replay.body), "committed");

    const commit = await call("commit", prepared, "commit-key-2");
    assert.equal(commit.status, 200, commit.text);
    assert.deepEqual(await balances(), [985, 15]);
  });
});
