/**
 * Every answered request is timed in verdict_route_seconds, errors included, labelled with its
 * route and status, on a real node: a 404 (an unknown transaction), a 401 (no token), a 503
 * (the report-prepared check hits a `before-prepare=error` failpoint in the driver and answers
 * unavailable) and a 200, each counted once under its own status, in /metrics.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pgServicePrepared, VerdictClient } from "../../../client/index.js";
import { assertError, metricValue, raw, startApiNode, type ApiNode } from "./harness.js";

let node: ApiNode;
let client: VerdictClient;
const unknownXid = "0123456789abcdef0123456789abcdef";

const routeCount = (route: string, status: number) =>
  metricValue(node.url, "verdict_route_seconds_count", { route, status: String(status) });

before(async () => {
  // Read once, at start: the first prepare call of this node fails (here, the check).
  process.env.VERDICT_FAILPOINTS = "before-prepare=error";
  try {
    node = await startApiNode();
  } finally {
    delete process.env.VERDICT_FAILPOINTS;
  }
  client = new VerdictClient({ baseUrl: node.url, token: node.clientToken });
});

after(async () => {
  await node?.stop();
});

describe("verdict_route_seconds", () => {
  test("a 4xx is timed with its status", async () => {
    const path = `/v1/transactions/${unknownXid}`;
    assertError(
      await raw(node.url, "GET", path, { token: node.clientToken }),
      404,
      "transaction-not-found",
    );
    assertError(await raw(node.url, "GET", path), 401, "unauthorized");
    assert.equal(await routeCount("getTransaction", 404), 1);
    assert.equal(await routeCount("getTransaction", 401), 1);
  });

  test("a 5xx is timed with its status, and so is a 200", async () => {
    const txn = await client.begin({ timeoutMs: 10_000 });
    const { branch } = await client.enlist(txn.xid, pgServicePrepared("pg-a"));
    const answer = await raw(
      node.url,
      "POST",
      `/v1/transactions/${txn.xid}/branches/${branch}/prepared`,
      { token: node.clientToken, body: {} },
    );
    assertError(answer, 503, "unavailable", "the failpoint fails the check");
    assert.match(answer.text, /failpoint before-prepare/);
    assert.equal(await routeCount("reportBranchPrepared", 503), 1);
    await client.abort(txn.xid);
    assert.equal(await routeCount("beginTransaction", 201), 1);
    assert.equal(await routeCount("abortTransaction", 200), 1);
    const sum = await metricValue(node.url, "verdict_route_seconds_sum", {
      route: "reportBranchPrepared",
    });
    assert.ok(sum > 0, `latency recorded: ${sum} s`);
  });
});
