/**
 * The SDK's `outcome(xid)` on a real node with PostgreSQL participants:
 * - via the event stream: it resolves `committed` soon after another caller commits, without
 *   a single status read (the node's getTransaction counter does not move);
 * - via polling: when the node refuses the stream (the token's streams are all taken: 429),
 *   it still resolves `committed`, by status reads (the counter moves);
 * - `until: "decided"` and an aborted outcome resolve too; an unknown xid throws the API's
 *   404; a transaction that does not finish in time throws OutcomeUnknownError with the last
 *   state seen, within its bound.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import {
  OutcomeUnknownError,
  pgStatements,
  sql,
  VerdictClient,
  VerdictError,
} from "../../../client/index.js";
import { openStream, type OpenStream } from "../api/event-stream.js";
import {
  createAccounts,
  metricValue,
  startApiNode,
  type Accounts,
  type ApiNode,
} from "../api/harness.js";

let node: ApiNode;
let accounts: Accounts;
let client: VerdictClient;
const perTokenMax = 2;

const transfer = (amount: number) => [
  pgStatements("pg-a", [
    sql(`update ${accounts.table} set balance = balance - $1 where id = 1`, [amount], {
      expectRows: 1,
    }),
  ]),
  pgStatements("pg-b", [
    sql(`update ${accounts.table} set balance = balance + $1 where id = 1`, [amount], {
      expectRows: 1,
    }),
  ]),
];

/** Status reads the node answered so far. */
const statusReads = () =>
  metricValue(node.url, "verdict_route_seconds_count", { route: "getTransaction" });

/** A prepared transfer, its commit left to the test. */
async function preparedTransfer(amount: number): Promise<string> {
  const { xid } = await client.begin({ timeoutMs: 60_000 });
  for (const branch of transfer(amount)) await client.enlist(xid, branch);
  await client.prepare(xid);
  return xid;
}

before(async () => {
  node = await startApiNode({ limits: { eventStreamsPerPrincipalMax: perTokenMax } });
  accounts = await createAccounts({ "pg-a": [[1, 1000]], "pg-b": [[1, 0]] });
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
});
after(async () => {
  client?.close();
  await node?.stop();
  await accounts?.drop();
});

describe("VerdictClient.outcome", () => {
  test("via the event stream: committed, with no status read", async () => {
    const xid = await preparedTransfer(10);
    const readsBefore = await statusReads();
    const waiting = client.outcome(xid, { timeoutMs: 20_000 });
    await sleep(300);
    const committer = new VerdictClient({ baseUrl: node.url, token: node.adminToken });
    await committer.commit(xid);
    committer.close();
    const view = await waiting;
    assert.equal(view.state, "committed");
    assert.equal(view.decision, "commit");
    assert.equal(await statusReads(), readsBefore, "outcome() read the status");
    assert.equal(await accounts.balance("pg-b", 1), 10);
  });

  test("via polling when the stream is refused: committed", async () => {
    const xid = await preparedTransfer(5);
    // The token's streams are all taken: the node answers the next one 429.
    const held: OpenStream[] = [];
    for (let i = 0; i < perTokenMax; i++) {
      held.push(await openStream(node.url, `/v1/transactions/${xid}/events`, node.clientToken));
    }
    assert.deepEqual(
      held.map((s) => s.status),
      [200, 200],
    );
    const readsBefore = await statusReads();
    const waiting = client.outcome(xid, { timeoutMs: 20_000 });
    await sleep(300);
    const committer = new VerdictClient({ baseUrl: node.url, token: node.adminToken });
    await committer.commit(xid);
    committer.close();
    const view = await waiting;
    assert.equal(view.state, "committed");
    assert.ok((await statusReads()) > readsBefore, "outcome() never read the status");
    for (const s of held) await s.ended;
    assert.equal(await accounts.balance("pg-b", 1), 15);
  });

  test("until decided, an aborted outcome, an unknown xid, and the time bound", async () => {
    const done = await client.transact(transfer(1));
    assert.equal((await client.outcome(done.xid, { until: "decided" })).state, "committed");

    const { xid: aborted } = await client.begin();
    await client.abort(aborted);
    assert.equal((await client.outcome(aborted)).state, "aborted");

    await assert.rejects(client.outcome("0000000000000-000000000000-none"), (err: unknown) => {
      assert.ok(err instanceof VerdictError);
      assert.equal(err.code, "transaction-not-found");
      return true;
    });

    const { xid: open } = await client.begin({ timeoutMs: 60_000 });
    const startMs = Date.now();
    await assert.rejects(client.outcome(open, { timeoutMs: 800 }), (err: unknown) => {
      assert.ok(err instanceof OutcomeUnknownError, String(err));
      assert.equal(err.lastState, "active");
      return true;
    });
    const tookMs = Date.now() - startMs;
    assert.ok(tookMs >= 700 && tookMs < 3_000, `bounded: ${tookMs} ms`);
    await client.abort(open);
  });
});
