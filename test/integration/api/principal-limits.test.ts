/**
 * One principal cannot starve another (issue: 256 empty begins of one client made another's
 * begin answer 429):
 * - a principal over `inFlightTransactionsPerPrincipalMax` gets 429 too-many-transactions with
 *   a numeric Retry-After, while another principal still begins and commits (the row is read
 *   from PostgreSQL), and the first may begin again once one of its own is decided;
 * - the node-wide `inFlightTransactionsMax` 429 carries Retry-After too;
 * - a principal over its request rate (`requestBurstPerPrincipal`, then
 *   `requestsPerSecondPerPrincipal`) gets 429 rate-limited with Retry-After, and another
 *   principal is not slowed down by it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  assertError,
  createAccounts,
  raw,
  startApiNode,
  type Accounts,
  type ApiNode,
  type RawAnswer,
} from "./harness.js";

const begin = (node: ApiNode, token: string): Promise<RawAnswer> =>
  raw(node.url, "POST", "/v1/transactions", { token, body: { timeoutMs: 60_000 } });

const xidOf = (answer: RawAnswer): string => {
  assert.equal(answer.status, 201, answer.text);
  return (answer.body as { xid: string }).xid;
};

/** Retry-After is present and a whole number of seconds, at least 1. */
function assertRetryAfter(answer: RawAnswer): void {
  const value = answer.headers.get("retry-after");
  assert.ok(value !== null, `Retry-After missing on ${answer.status} ${answer.text}`);
  assert.match(value, /^[1-9][0-9]*$/, `Retry-After ${value}`);
}

describe("in-flight quotas per principal", () => {
  let node: ApiNode;
  let accounts: Accounts;

  before(async () => {
    node = await startApiNode({
      limits: { inFlightTransactionsMax: 6, inFlightTransactionsPerPrincipalMax: 4 },
      // What is left active at the end is aborted at once, not waited for.
      protocol: { shutdownGraceMs: 0 },
    });
    accounts = await createAccounts({ "pg-a": [[1, 100]], "pg-b": [] });
  });
  after(async () => {
    await accounts?.drop();
    await node?.stop();
  });

  test("A's quota full: A gets 429 with Retry-After, B begins and commits", async () => {
    const mine: string[] = [];
    for (let i = 0; i < 4; i += 1) mine.push(xidOf(await begin(node, node.clientToken)));
    const refused = await begin(node, node.clientToken);
    assertError(refused, 429, "too-many-transactions", "A over its quota");
    assertRetryAfter(refused);
    const details = (refused.body as { error: { details: Record<string, unknown> } }).error.details;
    assert.equal(details.limit, "inFlightTransactionsPerPrincipalMax");

    const xid = xidOf(await begin(node, node.otherClientToken));
    const enlist = await raw(node.url, "POST", `/v1/transactions/${xid}/branches`, {
      token: node.otherClientToken,
      body: {
        participant: "pg-a",
        statements: [{ sql: `insert into ${accounts.table} values (2, 7)` }],
      },
    });
    assert.equal(enlist.status, 201, enlist.text);
    const commit = await raw(node.url, "POST", `/v1/transactions/${xid}/commit`, {
      token: node.otherClientToken,
    });
    assert.equal(commit.status, 200, commit.text);
    assert.equal(await accounts.balance("pg-a", 2), 7, "B's commit is in PostgreSQL");

    // Once one of A's is decided, A has a slot again.
    const abort = await raw(node.url, "POST", `/v1/transactions/${mine[0]}/abort`, {
      token: node.clientToken,
    });
    assert.equal(abort.status, 200, abort.text);
    mine.push(xidOf(await begin(node, node.clientToken)));

    // The node-wide limit (A's 4 and B's 2) answers 429 with Retry-After as well.
    xidOf(await begin(node, node.otherClientToken));
    xidOf(await begin(node, node.otherClientToken));
    const full = await begin(node, node.otherClientToken);
    assertError(full, 429, "too-many-transactions", "the node is full");
    assertRetryAfter(full);
  });
});

describe("request rate per principal", () => {
  let node: ApiNode;

  before(async () => {
    node = await startApiNode({
      limits: { requestsPerSecondPerPrincipal: 1, requestBurstPerPrincipal: 5 },
      protocol: { shutdownGraceMs: 0 },
    });
  });
  after(async () => node?.stop());

  test("A over its burst gets 429 rate-limited with Retry-After; B is served", async () => {
    const answers: RawAnswer[] = [];
    for (let i = 0; i < 8; i += 1) {
      answers.push(
        await raw(node.url, "GET", "/v1/transactions/nope", { token: node.clientToken }),
      );
    }
    // The burst is served (an unknown xid: 404); then the bucket is empty.
    assert.deepEqual(
      answers.slice(0, 5).map((a) => a.status),
      [404, 404, 404, 404, 404],
    );
    const limited = answers[7];
    assert.ok(limited);
    assertError(limited, 429, "rate-limited", "A over its rate");
    assertRetryAfter(limited);

    xidOf(await begin(node, node.otherClientToken));
  });
});
